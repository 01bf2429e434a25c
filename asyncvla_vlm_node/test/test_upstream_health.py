"""UpstreamHealth: the camera bridge's own report explains a silent camera (ROS-free)."""
from __future__ import annotations

from asyncvla_vlm_node.upstream_health import UpstreamHealth


def test_explains_only_the_watched_node_while_it_is_not_ok():
    health = UpstreamHealth("camera_bridge", max_age=5.0)
    assert health.explain(0.0) == ""
    health.report("robot_bridge: bridge", 2, "dropping 100% of input", 1.0)
    assert health.explain(1.0) == ""
    health.report("camera_bridge: bridge", 2, "dropping 100% of input (mostly clock_suspect)",
                  2.0)
    assert health.explain(3.0) == (" (camera_bridge: bridge reports ERROR: dropping 100% of "
                                   "input (mostly clock_suspect))")
    assert health.explain(7.5) == ""  # too old to explain anything
    health.report("camera_bridge: bridge", 0, "receiving 150/s", 8.0)
    assert health.explain(8.0) == ""


def test_namespaced_bridge_and_disabled_watch():
    health = UpstreamHealth("camera_bridge")
    health.report("/lab/camera_bridge: bridge", 1, "waiting for data on tcp://0.0.0.0:5555", 0.0)
    assert "WARN: waiting for data" in health.explain(0.1)
    health.report("camera_bridge_2: bridge", 2, "other", 0.2)
    assert "waiting for data" in health.explain(0.3)
    off = UpstreamHealth("")
    off.report("camera_bridge: bridge", 2, "x", 0.0)
    assert off.explain(0.0) == ""
