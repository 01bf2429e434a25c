"""Shared pytest fixtures: isolated DDS domains and managed node processes.

Why here: every package's integration tests start real ROS processes over real DDS. They must stay
on loopback, never see each other (one ROS_DOMAIN_ID per test), and never leak processes.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "tools"))

from asyncvla_testing.processes import ProcessGroup, reserve_domain_id  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# ROS contexts created in this process without an explicit domain (e.g. parameter tests) get a
# reserved domain of the session's own, not the one tools/env.sh derived from the shell's pid.
_SESSION_DOMAIN = reserve_domain_id()
os.environ["ROS_DOMAIN_ID"] = str(_SESSION_DOMAIN.domain_id)


@pytest.fixture
def ros_env():
    """Environment for child processes: loopback-only discovery and a domain of this test's own,
    reserved machine-wide (asyncvla_testing.processes.reserve_domain_id) until teardown."""
    with reserve_domain_id() as lease:
        env = dict(os.environ)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        env["ROS_DOMAIN_ID"] = str(lease.domain_id)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("ROS_STATIC_PEERS", None)
        yield env


@pytest.fixture
def processes(ros_env):
    """Start node processes that are always killed at teardown, with their output kept for asserts."""
    group = ProcessGroup(ros_env)
    yield group
    group.stop_all()


@pytest.fixture
def one_thread(processes):
    """`processes` whose children use one OpenMP thread each (2-core machines: no oversubscription)."""
    processes.env["OMP_NUM_THREADS"] = "1"
    return processes


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """The embedded default (tiny Qwen2.5-VL + random policy), built once per test session."""
    from asyncvla_testing.assets import build_demo_assets

    return build_demo_assets(str(tmp_path_factory.mktemp("demo_assets")))
