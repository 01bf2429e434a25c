"""The action node's expert runtime parameters: the choices its description lists are the
registry's, ``auto`` (the default) builds the runtime it chose and reports the choice, the
removed ``expert_dtype`` stops the node with the migration, and a named runtime whose package is
missing stops a real node process with one line naming the pip package."""
from __future__ import annotations

import subprocess
import sys

import pytest

from asyncvla_action_node.action_params import ACTION_NODE_PARAMETERS
from asyncvla_action_node.expert_setup import (LEGACY_EXPERT_DTYPES, build_expert,
                                               check_legacy_dtype, expert_report)
from asyncvla_policy.expert_runtimes import RUNTIMES
from asyncvla_policy.expert_runtimes.auto import AUTO

SPECS = {s.name: s for s in ACTION_NODE_PARAMETERS}
NODE = ("import sys\nfor name in sys.argv[1].split(','):\n    sys.modules[name] = None\n"
        "from asyncvla_action_node.action_node import main\nsys.exit(main(sys.argv[2:]))")


def test_the_parameter_description_lists_every_registered_runtime():
    text = SPECS["expert_runtime"].description
    listed = [name for name in RUNTIMES if f" {name}" in text]
    assert listed == list(RUNTIMES)
    assert SPECS["expert_runtime"].default == AUTO and AUTO not in RUNTIMES
    assert f"{AUTO} (default)" in text
    assert set(LEGACY_EXPERT_DTYPES.values()) <= set(RUNTIMES)


def _params(**overrides):
    params = {s.name: s.default for s in ACTION_NODE_PARAMETERS}
    params.update({"expert_cache_dir": "", **overrides})
    return params


def test_auto_builds_the_runtime_it_chose_and_reports_the_choice(tmp_path):
    from asyncvla_policy.config import tiny_policy_config
    from asyncvla_policy.policy import ActionPolicy

    policy = ActionPolicy(tiny_policy_config(vl_dim=8)).eval()
    runtime = build_expert(policy, _params(expert_threads=1, expert_cache_dir=str(tmp_path),
                                           max_runtime_error=1e-3))
    choice = runtime.auto_choice
    assert choice is not None and runtime.name == choice.name
    chosen = choice.candidate(choice.name)
    assert chosen.status == "chosen" and chosen.max_error <= 1e-3  # the parameter is the bound
    assert list(tmp_path.glob("auto-*.json"))  # expert_cache_dir holds the choice
    report = expert_report(runtime)
    assert report.values["expert_runtime"] == runtime.name
    assert report.values["max_runtime_error"] == 1e-3
    assert f"{runtime.name} chosen by auto" in report.message and "ms p50" in report.message
    named = build_expert(policy, _params(expert_runtime="torch_float32"))
    assert named.auto_choice is None
    assert expert_report(named).values == {"expert_runtime": "torch_float32",
                                           "chosen_by": "parameter"}


def test_the_cache_directory_expands_home(monkeypatch, tmp_path):
    from asyncvla_action_node.expert_setup import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir({"expert_cache_dir": "~/x"}) == str(tmp_path / "x")
    assert cache_dir({"expert_cache_dir": ""}) is None


@pytest.mark.parametrize("value,fix", [("bfloat16", "expert_runtime: torch_bf16_autocast"),
                                       ("float32", "expert_runtime: torch_float32"),
                                       ("int8", "expert_runtime (see its description)")])
def test_expert_dtype_is_a_migration_error_naming_the_new_parameter(value, fix):
    with pytest.raises(ValueError) as err:
        check_legacy_dtype(value)
    assert str(err.value).startswith("expert_dtype was replaced by expert_runtime")
    assert fix in str(err.value)
    check_legacy_dtype("")  # unset: fine


def test_unknown_runtime_is_refused_with_the_choices():
    params = {"expert_runtime": "tensorrt", "expert_threads": 0, "expert_cache_dir": "",
              "expert_dtype": ""}
    with pytest.raises(ValueError, match="expert_runtime must be one of"):
        build_expert(object(), params)


def _tiny_checkpoint(tmp_path) -> str:
    from asyncvla_policy.checkpoint import save_policy
    from asyncvla_policy.config import tiny_policy_config
    from asyncvla_policy.policy import ActionPolicy

    save_policy(ActionPolicy(tiny_policy_config(vl_dim=8)), str(tmp_path))
    return str(tmp_path)


def _start_node(ros_env, blocked: str, **params) -> subprocess.CompletedProcess:
    args = ["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    return subprocess.run([sys.executable, "-c", NODE, blocked, *args], capture_output=True,
                          text=True, timeout=120, env=dict(ros_env, OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("params,blocked,expected", [
    ({"expert_runtime": "openvino_int8"}, "nncf",
     "asyncvla_action_node: expert_runtime 'openvino_int8' needs nncf: pip install nncf"),
    ({"expert_dtype": "bfloat16"}, "",
     "asyncvla_action_node: expert_dtype was replaced by expert_runtime: remove expert_dtype: "
     "bfloat16 and set expert_runtime: torch_bf16_autocast"),
])
def test_node_start_refusal_is_one_line(ros_env, tmp_path, params, blocked, expected):
    proc = _start_node(ros_env, blocked, checkpoint=_tiny_checkpoint(tmp_path), **params)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("asyncvla_action_node:")]
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr[-3000:]
