"""The policy runtime imports and runs without the training packages.

What a robot PC runs (the VLM and action nodes) needs the models, checkpoint loading and the
conventions: asyncvla_policy and asyncvla_core, with torch, transformers, peft, safetensors,
numpy and OpenCV (image decode and resize). A child Python process that sees only those two
packages' sources makes asyncvla_training and the training-only packages (rosbags, PyYAML,
matplotlib, tqdm, pyarrow, lerobot, datasets, PIL) unimportable, imports every module the nodes
use, and runs a tiny policy end to end through a checkpoint. The package metadata must say the
same: none of those packages among asyncvla_policy's requirements.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CORE_DIR = os.path.join(os.path.dirname(PACKAGE_DIR), "asyncvla_core")
TRAINING_ONLY = ("asyncvla_training", "rosbags", "yaml", "matplotlib", "tqdm", "pyarrow",
                 "lerobot", "datasets", "PIL")
RUNTIME_MODULES = ("asyncvla_core.conventions", "asyncvla_core.vl_payload",
                   "asyncvla_policy.checkpoint", "asyncvla_policy.vl_extractor",
                   "asyncvla_policy.policy", "asyncvla_policy.expert_runtimes",
                   "asyncvla_policy.expert_runtimes.auto")
#: Backends of optional expert runtimes: imported only when such a runtime is built.
OPTIONAL_BACKENDS = ("onnxruntime", "onnx", "onnxscript", "openvino", "nncf", "torchao")

CHILD = textwrap.dedent(r'''
    import importlib, importlib.abc, json, sys, tempfile
    BLOCKED = tuple(sys.argv[2].split(","))

    class NoTrainingExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (training extra)")
            return None

    sys.meta_path.insert(0, NoTrainingExtras())
    for name in sys.argv[1].split(","):
        importlib.import_module(name)
    import torch
    import asyncvla_policy
    assert asyncvla_policy.__file__.startswith(sys.argv[4]), asyncvla_policy.__file__
    from asyncvla_policy.checkpoint import load_policy, save_policy
    from asyncvla_policy.policy import ActionPolicy
    from asyncvla_policy.config import tiny_policy_config
    policy = ActionPolicy(tiny_policy_config(vl_dim=32))
    with tempfile.TemporaryDirectory() as out:
        save_policy(policy, out)
        loaded = load_policy(out)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    backends = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))
    print("RESULT " + json.dumps({"leaked": leaked, "backends": backends, "params": sum(
        p.numel() for p in loaded.parameters())}))
''')


def test_runtime_imports_and_runs_without_training_extras():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((PACKAGE_DIR, CORE_DIR)), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", CHILD, ",".join(RUNTIME_MODULES),
                          ",".join(TRAINING_ONLY), ",".join(OPTIONAL_BACKENDS), PACKAGE_DIR],
                         env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert result["leaked"] == [] and result["params"] > 0
    assert result["backends"] == []  # optional runtimes import their backend lazily


def test_training_only_packages_are_not_policy_requirements():
    tree = ast.parse(open(os.path.join(PACKAGE_DIR, "setup.py")).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords
              if k.arg in ("install_requires", "extras_require")}
    names = lambda reqs: {r.split(">")[0].split("=")[0].split("[")[0].lower()  # noqa: E731
                          for r in reqs}
    required = names(kwargs["install_requires"])
    extras = set().union(*(names(v) for v in kwargs["extras_require"].values()))
    assert not (required | extras) & {"rosbags", "pyyaml", "matplotlib", "tqdm", "pyarrow",
                                      "pillow"}, required | extras
    assert {"torch", "transformers", "peft", "safetensors", "numpy"} <= required
