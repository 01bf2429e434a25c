"""Recording (topic list, QoS overrides, the `record` helper) and monitoring (rqt perspective,
aggregator analyzers): what a dataset holds and what the operator sees."""
from __future__ import annotations

import ast
import inspect
import json
import shlex
from pathlib import Path

import pytest
import yaml

from asyncvla_bringup import catalog, record

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
PERSPECTIVE = ROOT / "rqt" / "asyncvla.perspective"
LATCHED_TOPICS = {"/asyncvla/vl_features", "/asyncvla/enable", "/asyncvla/estop",
                  "/asyncvla_action_node/safety_status", "/asyncvla_vlm_node/safety_status"}
#: rqt_plot topics each node publishes under ~/ (std_msgs/Float64).
PLOT_TOPICS = {"asyncvla_action_node": ("vl_age", "inference_time_ms", "vl_reuse_count",
                                        "sensor_fill", "chunk_rate_hz"),
               "asyncvla_vlm_node": ("compute_time_ms", "update_rate_hz")}


@pytest.fixture(scope="module")
def config():
    return record.load_config(CONFIG / record.RECORD_CONFIG)


def test_dataset_has_everything_training_reads(config):
    """Every topic the training bag reader requires (and the optional VL features) is recorded,
    for the original system's 5 views."""
    from asyncvla_training.data.bag_reader import BagTopics

    wanted = BagTopics()
    recorded = set(record.topics(config))
    assert config.views == tuple(f"view{i}" for i in range(1, 6))
    for view in config.views:
        assert wanted.camera_topic.format(view=view) in recorded
    for topic in (wanted.joint_state_topic, wanted.pose_topic, wanted.sensor_topic,
                  wanted.vl_features_topic):
        assert topic in recorded
    # The training inputs are what replay plays back; the outputs are not.
    inputs = set(record.replay_topics(config))
    assert wanted.sensor_topic in inputs and wanted.vl_features_topic not in inputs


def test_recorded_topics_match_what_the_nodes_publish(config):
    """Outputs and monitoring topics are the nodes' real names (defaults of their tables)."""
    action = catalog.NODES["action"].spec_map()
    vlm = catalog.NODES["vlm"].spec_map()
    recorded = set(record.topics(config))
    for spec in (action["topics.action"], action["topics.trajectory"], action["topics.enable"],
                 action["topics.estop"], vlm["topics.vl_features"]):
        assert spec.default in recorded, spec.name
    for node, fields in PLOT_TOPICS.items():
        for name in fields:
            assert f"/{node}/{name}" in recorded
    assert {"/diagnostics", "/rosout"} <= recorded
    assert LATCHED_TOPICS <= recorded


def test_qos_overrides_record_the_latched_topics_as_latched():
    """Each override parses the way ros2 bag does and equals the publisher's QoS (LATCHED)."""
    from rclpy.qos import (QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile,
                           QoSReliabilityPolicy)

    from asyncvla_common import qos

    policies = {"history": QoSHistoryPolicy, "reliability": QoSReliabilityPolicy,
                "durability": QoSDurabilityPolicy}
    overrides = record.load_qos_overrides(CONFIG / record.QOS_OVERRIDES)
    assert set(overrides) == LATCHED_TOPICS
    for topic, profile in overrides.items():
        assert set(profile) <= {"history", "depth", "reliability", "durability"}, topic
        kwargs = {k: policies[k].get_from_short_key(v) if k in policies else v
                  for k, v in profile.items()}
        parsed = QoSProfile(**kwargs)
        assert (parsed.history, parsed.depth, parsed.reliability, parsed.durability) == \
            (qos.LATCHED.history, qos.LATCHED.depth, qos.LATCHED.reliability,
             qos.LATCHED.durability), topic
    assert set(record.load_qos_overrides(CONFIG / record.QOS_OVERRIDES, "/arm1")) == \
        {"/arm1" + t for t in LATCHED_TOPICS}


def test_record_command(config, capsys):
    assert record.main(["-o", "/bags/run01", "--dry-run", "--config-dir", str(CONFIG)]) == 0
    cmd = shlex.split(capsys.readouterr().out)
    assert cmd[:3] == ["ros2", "bag", "record"]
    assert cmd[cmd.index("-o") + 1] == "/bags/run01" and cmd[cmd.index("-s") + 1] == "mcap"
    assert cmd[cmd.index("--qos-profile-overrides-path") + 1] == \
        str(CONFIG / record.QOS_OVERRIDES)
    topics = cmd[cmd.index("--topics") + 1:]
    assert topics == record.topics(config)
    assert len(topics) == len(set(topics)) == 5 + 5 + 5 + 2 + 2 + 7
    # Namespace, fewer groups, other views, extra ros2 bag arguments before --topics.
    assert record.main(["--dry-run", "--config-dir", str(CONFIG), "--namespace", "arm1",
                        "--no-outputs", "--no-monitoring", "--views", "left,right", "--",
                        "--max-bag-duration", "600"]) == 0
    cmd = shlex.split(capsys.readouterr().out)
    assert "-o" not in cmd
    assert cmd[cmd.index("--max-bag-duration") + 1] == "600"
    assert cmd.index("--max-bag-duration") < cmd.index("--topics")
    topics = cmd[cmd.index("--topics") + 1:]
    assert topics == ["/arm1/camera/left/image_raw/compressed",
                      "/arm1/camera/right/image_raw/compressed", "/arm1/robot/joint_states",
                      "/arm1/robot/ee_pose", "/arm1/robot/force", "/arm1/sensor/force_oct",
                      "/arm1/sensor/wrench"]
    qos_file = cmd[cmd.index("--qos-profile-overrides-path") + 1]
    assert "/arm1/asyncvla/vl_features" in yaml.safe_load(Path(qos_file).read_text())
    Path(qos_file).unlink()
    assert record.main(["--dry-run", "--config-dir", str(CONFIG), "--namespace", "a b"]) == 2


def test_record_config_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "record.yaml"
    bad.write_text("views: [view1]\ninput: [robot/joint_states]\n")
    with pytest.raises(ValueError, match="unknown keys"):
        record.load_config(bad)


def _perspective_values(node, path=()):
    for key, value in node.get("keys", {}).items():
        yield path + (key,), value
    for name, group in node.get("groups", {}).items():
        yield from _perspective_values(group, path + (name,))


def test_rqt_perspective():
    """Loads as rqt does (JSON, values eval'ed from repr), starts its plugins, and plots only
    topics the nodes publish."""
    doc = json.loads(PERSPECTIVE.read_text())
    values = {}
    for path, value in _perspective_values(doc):
        assert value["type"] == "repr", path
        values[path] = ast.literal_eval(value["repr"])
    manager = doc["groups"]["pluginmanager"]["groups"]
    running = values[("pluginmanager", "running-plugins")]
    assert set(running) == {"rqt_plot/Plot", "rqt_robot_monitor/RobotMonitor",
                            "rqt_topic/TopicPlugin"}
    instances = {f"plugin__{p.replace('/', '__')}__{i}" for p, ids in running.items()
                 for i in ids}
    assert instances == set(manager)
    plotted = [t for path, v in values.items() if path[-1] == "topics" for t in v]
    assert len(running["rqt_plot/Plot"]) == 4 and len(plotted) == 7
    for topic in plotted:
        node, name, field = topic.strip("/").split("/")
        assert field == "data" and name in PLOT_TOPICS[node], topic
    # ... and they are really published by the nodes' code (std_msgs/Float64 on ~/<name>).
    from asyncvla_action_node import action_loop
    from asyncvla_vlm_node import vlm_node

    # The action node publishes every name its loop's plot_values() produces.
    sources = {"asyncvla_action_node": inspect.getsource(action_loop.ActionLoop.plot_values),
               "asyncvla_vlm_node": inspect.getsource(vlm_node)}
    for node, fields in PLOT_TOPICS.items():
        for name in fields:
            assert f'"{name}"' in sources[node], (node, name)
    assert {f"/{n}/{f}/data" for n, fs in PLOT_TOPICS.items() for f in fs} == set(plotted)


def test_diagnostic_analyzers_cover_every_node():
    data = yaml.safe_load((CONFIG / "diagnostic_aggregator.yaml").read_text())
    params = data["analyzers"]["ros__parameters"]
    prefixes = []
    for name, analyzer in params.items():
        if isinstance(analyzer, dict):
            assert analyzer["type"] == "diagnostic_aggregator/GenericAnalyzer"
            assert analyzer["path"] and analyzer["timeout"] > 0
            prefixes += analyzer["startswith"]
    # Status names are "<node name>: <status>" (common/diagnostics.py).
    from asyncvla_common import diagnostics

    assert 'name=f"{prefix}: {name}"' in inspect.getsource(diagnostics)
    assert sorted(prefixes) == sorted(k.node_name for k in catalog.NODES.values())
