"""The nodes' typed parameter specs (action_config, executor_config, driver_config,
bridge_config, vlm_config): readable
without rclpy or the node modules, one definition of each shared fact, and the config the node
hands its core is the one its parameters describe."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from asyncvla_action_node.action_config import ACTION_NODE_PARAMETERS, ActionNodeConfig
from asyncvla_bridges.bridge_config import (CAMERA_BRIDGE_PARAMETERS, ROBOT_BRIDGE_PARAMETERS,
                                            SENSOR_BRIDGE_PARAMETERS, CameraBridgeConfig)
from asyncvla_bridges.meca500.driver_config import MECA500_DRIVER_PARAMETERS
from asyncvla_common.param_spec import with_values
from asyncvla_executor.executor_config import EXECUTOR_NODE_PARAMETERS, ExecutorNodeConfig
from asyncvla_vlm_node.vlm_config import VLM_NODE_PARAMETERS, VLMNodeConfig


def test_specs_and_the_yaml_check_need_neither_rclpy_nor_the_node_modules():
    """A launch tool, a training machine or a reviewer reads every name, default and range, and
    checks a parameter YAML, with rclpy made unimportable."""
    code = textwrap.dedent("""
        import sys
        for name in ("rclpy", "rcl_interfaces", "launch", "launch_ros"):
            sys.modules[name] = None
        from asyncvla_action_node.action_config import ACTION_NODE_PARAMETERS, OLD_NAMES
        from asyncvla_executor.executor_config import EXECUTOR_NODE_PARAMETERS
        from asyncvla_bridges.meca500.driver_config import MECA500_DRIVER_PARAMETERS
        from asyncvla_bridges.bridge_config import CAMERA_OLD_NAMES
        from asyncvla_vlm_node import vlm_config
        from asyncvla_bringup import param_check
        from asyncvla_bringup.names import default_config_dir
        problems = [p for f in ("action_node.yaml", "executor_node.yaml", "meca500_driver.yaml",
                                "bridges.yaml", "vlm_node.yaml")
                    for p in param_check.check_file(default_config_dir() / f,
                                                    only_overrides=True)]
        assert problems == [], problems
        loaded = [m for m in sys.modules if m.endswith((".action_node", ".executor_node",
                                                        ".driver_node", "_bridge",
                                                        ".bridge_base", ".vlm_node", "torch"))]
        assert loaded == [], loaded
        print(len(ACTION_NODE_PARAMETERS), len(EXECUTOR_NODE_PARAMETERS),
              len(MECA500_DRIVER_PARAMETERS), OLD_NAMES["robot_state_timeout"],
              CAMERA_OLD_NAMES["clock_max_delay"], vlm_config.OLD_NAMES["target_period"])
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    action, executor, driver, merged, clock, period = proc.stdout.split()
    assert (int(action), int(executor), int(driver)) == (
        len(ACTION_NODE_PARAMETERS), len(EXECUTOR_NODE_PARAMETERS),
        len(MECA500_DRIVER_PARAMETERS))
    assert merged == "freshness.robot_state_max_age"
    assert clock == "clock.max_delay" and period == "timing.target_period"


def test_a_fact_several_nodes_declare_has_one_spec():
    """The same dotted name means the same parameter (default, range, description) in every
    node that declares it: the groups and specs are asyncvla_common.node_config's."""
    tables = [{s.name: s for s in t} for t in (ACTION_NODE_PARAMETERS, EXECUTOR_NODE_PARAMETERS,
                                                 MECA500_DRIVER_PARAMETERS,
                                                 CAMERA_BRIDGE_PARAMETERS,
                                                 ROBOT_BRIDGE_PARAMETERS,
                                                 SENSOR_BRIDGE_PARAMETERS,
                                                 VLM_NODE_PARAMETERS)]
    shared = 0
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            for name in set(a) & set(b):
                if name.startswith(("timing.", "topics.setpoint", "wire.")):
                    continue  # per-node rates and endpoints (a camera's TCP port, a sensor's UDP)
                assert a[name] == b[name], name
                shared += 1
    assert shared >= 20  # blending, guard, safety, topics, reporting, joint names, freshness
    # the bridges' clock group is one definition, and the diagnostics period every node's
    bridges = tables[3:6]
    assert all(bridges[0]["clock.max_delay"] == t["clock.max_delay"] for t in bridges[1:])
    assert bridges[1]["reporting.diagnostics_period"] == tables[0]["reporting.diagnostics_period"]


def test_the_core_gets_the_config_its_parameters_describe():
    cfg = with_values(ActionNodeConfig(), {"freshness.robot_state_max_age": 0.25,
                                           "guard.max_jump_linear": 0.002})
    from asyncvla_action_node.action_loop import ActionLoop, PolicyShape

    shape = PolicyShape(2, 4, 8, 3, 4, 7, "ee_delta", 0.1, "m")
    loop = ActionLoop(cfg, shape, lambda *a: None, lambda *a: None, lambda: None,
                      lambda *a: None)
    # one parameter for the age limit and the watchdog of the robot state
    assert loop.core.config.robot_state_max_age == 0.25
    assert {d.name: d.timeout for d in loop.watchdogs.snapshot(0.0)} == {
        "vl_features": 1.5, "sensor": 0.1, "joint_states": 0.25, "ee_pose": 0.25}
    assert loop.guard.limits.max_jump_linear == 0.002
    executor = with_values(ExecutorNodeConfig(), {"timing.rate_hz": 50.0}).core()
    assert executor.period == 0.02 and executor.robot_state_max_age == 0.1
    assert ExecutorNodeConfig().guard.limits().max_jump_joint == 0.0  # the action node's check


def test_a_node_left_at_its_defaults_runs_its_core_at_the_cores_defaults():
    """One place per default: what a node declares is what its core, guard and blender fall
    back to when built without the node (the simulator, benchmarks, tests). The guard's step
    and jump limits once differed (5 mm declared, 10 mm in the core); this fails on such a
    difference."""
    from dataclasses import asdict

    from asyncvla_action_node.action_core import ActionCoreConfig
    from asyncvla_action_node.action_loop import ActionLoop, PolicyShape
    from asyncvla_core.chunk_blending import ChunkBlender
    from asyncvla_core.output_guard import GuardLimits
    from asyncvla_executor.executor_core import ExecutorConfig

    core = ActionCoreConfig()  # the checkpoint gives the shape: here the core's own defaults
    shape = PolicyShape(vl_num_tokens=2, vl_dim=4, sensor_window=8, aline_length=3,
                        horizon=core.horizon, action_dim=core.action_dim,
                        action_space=core.action_space, step_period=core.step_period,
                        vl_model_id="m")
    loop = ActionLoop(ActionNodeConfig(), shape, lambda *a: None, lambda *a: None,
                      lambda: None, lambda *a: None)
    assert loop.core.config == core
    assert loop.guard.limits == GuardLimits()
    assert ExecutorNodeConfig().core() == ExecutorConfig()
    no_jumps = {"max_jump_joint": 0.0, "max_jump_linear": 0.0, "max_jump_angular": 0.0}
    assert asdict(ExecutorNodeConfig().guard.limits()) == {**asdict(GuardLimits()), **no_jumps}
    node_blend, core_blend = loop.core.blender.strategy, ChunkBlender().strategy
    assert type(node_blend) is type(core_blend) and vars(node_blend) == vars(core_blend)


def test_the_bridges_build_their_clock_estimator_and_views_from_the_config():
    """What a bridge hands the wire code is what its parameters say (and a bad source is named
    by its dotted parameter)."""
    import pytest

    cfg = with_values(CameraBridgeConfig(), {"clock.max_drift_ppm": 100.0,
                                             "clock.jump_confirm_samples": 7})
    estimator = cfg.clock.estimator()
    assert estimator.max_drift == pytest.approx(1e-4) and estimator.jump_confirm_samples == 7
    with pytest.raises(ValueError, match="clock.offset_source 'sender'"):
        with_values(cfg, {"clock.offset_source": "sender"}).clock.estimator()
    assert CameraBridgeConfig().raw.views == () and len(CameraBridgeConfig().views.names) == 5


def test_the_vlm_node_takes_the_checkpoints_settings_left_at_their_defaults():
    """policy_checkpoint: the trained VL settings fill the defaults of the typed config; an
    explicit conflicting one is named by its dotted parameter."""
    import pytest

    from asyncvla_core.vl_contract import CheckpointVL
    from asyncvla_vlm_node.vlm_config import with_checkpoint

    ckpt = CheckpointVL("/ckpt", "tiny@1", "", "/models/tiny", "", (112, 96), 8, -1,
                        ("insert",), ())
    cfg, notes = with_checkpoint(VLMNodeConfig(), ckpt)
    assert (cfg.features.num_tokens, cfg.views.resize_width, cfg.views.resize_height,
            cfg.model.path, cfg.prompt) == (8, 112, 96, "/models/tiny", "insert")
    assert cfg.views.names == VLMNodeConfig().views.names and notes == []
    clash = with_values(VLMNodeConfig(), {"features.num_tokens": 16})
    with pytest.raises(ValueError, match=r"features.num_tokens 16 \(trained: 8\)"):
        with_checkpoint(clash, ckpt)
    with pytest.raises(ValueError, match="views.image_transport 'png'"):
        with_values(VLMNodeConfig(), {"views.image_transport": "png"}).check()
