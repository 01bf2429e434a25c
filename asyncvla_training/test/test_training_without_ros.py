"""asyncvla_training works on a GPU server without ROS: nothing in it imports ROS.

A child Python process gets only the sources of asyncvla_training and the two packages it needs
(asyncvla_policy, asyncvla_core) on its path and an import hook that makes every ROS module
(rclpy, rosidl_*, *_msgs, the ROS packages of this project) unimportable, as on a machine where
ROS is not installed. In it, every module of the three is imported, and a bag written by
the data module is turned into a stage-1 training run through the `asyncvla-train` entry point,
ending with a checkpoint that loads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SOURCES = [os.path.join(os.path.dirname(PACKAGE_DIR), name)
           for name in ("asyncvla_training", "asyncvla_policy", "asyncvla_core")]

CHILD = textwrap.dedent(r'''
    import importlib, importlib.abc, json, os, pkgutil, sys

    ROS_PREFIXES = ("rclpy", "rosidl", "rcl_", "rmw", "launch", "ament_index_python",
                    "asyncvla_action_node", "asyncvla_vlm_node", "asyncvla_msgs",
                    "asyncvla_common", "asyncvla_bridges", "asyncvla_executor",
                    "asyncvla_bringup")

    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top.startswith(ROS_PREFIXES) or top.endswith("_msgs") or top.endswith("_interfaces"):
                raise ModuleNotFoundError(f"No module named {name!r} (ROS is not installed)")
            return None

    sys.meta_path.insert(0, NoRos())
    names = []
    for package in ("asyncvla_training", "asyncvla_policy", "asyncvla_core"):
        module = importlib.import_module(package)
        assert module.__file__.startswith(os.path.dirname(sys.argv[1])), module.__file__
        names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
    for name in names:
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0].startswith(ROS_PREFIXES))
    assert not leaked, leaked

    from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag
    from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl
    from asyncvla_training.train.train_cli import main
    work = sys.argv[2]
    write_synthetic_bag(os.path.join(work, "bag_a"), "mcap", SyntheticBagSpec())
    write_synthetic_bag(os.path.join(work, "bag_b"), "sqlite3", SyntheticBagSpec(duration=2.0))
    ensure_tiny_qwen_vl(os.path.join(work, "vl"))
    code = main(["--stage", "1", "--bag", os.path.join(work, "bag_a"),
                 "--val-bag", os.path.join(work, "bag_b"), "--vl-model", os.path.join(work, "vl"),
                 "--out", os.path.join(work, "run"),
                 "--set", "policy_size=tiny", "--set", "image_width=56",
                 "--set", "image_height=56", "--set", "num_feature_tokens=4",
                 "--set", "total_steps=4", "--set", "warmup_steps=1",
                 "--set", "batch_size=4", "--set", "grad_accum_steps=1"])
    from asyncvla_policy.checkpoint import load_policy, read_checkpoint_config
    cfg, meta = read_checkpoint_config(os.path.join(work, "run", "latest"))
    load_policy(os.path.join(work, "run", "latest"))
    print("RESULT " + json.dumps({"code": code, "modules": len(names),
                                  "metadata": sorted(meta)}))
''')


def test_package_imports_and_trains_without_ros(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROS_", "AMENT_", "COLCON_", "RMW_"))}
    # not the colcon install space nor ROS wheels; tools/ for the test's own bag writer and tiny
    # model (asyncvla_testing, not part of the package under test)
    env["PYTHONPATH"] = os.pathsep.join([*SOURCES, os.path.join(os.path.dirname(PACKAGE_DIR), "tools")])
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-c", CHILD, PACKAGE_DIR, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result["code"] == 0
    assert result["modules"] >= 60
    assert {"action_space", "step_period", "vl_model_id"} <= set(result["metadata"])
