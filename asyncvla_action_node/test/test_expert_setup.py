"""The action node's expert runtime parameters: the choices its description lists are the
registry's, ``auto`` (the default) builds the runtime it chose and reports the choice, the
removed ``expert_dtype`` (like every replaced parameter name) stops a real node process with one
line naming its successor, and so does a named runtime whose package is missing (naming the pip
package)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from asyncvla_action_node.action_config import (ACTION_NODE_PARAMETERS, OLD_NAMES,
                                                ExpertConfig)
from asyncvla_action_node.expert_setup import build_expert, cache_dir, expert_report
from asyncvla_policy.expert_runtimes import RUNTIMES
from asyncvla_policy.expert_runtimes.auto import AUTO

SPECS = {s.name: s for s in ACTION_NODE_PARAMETERS}
NODE = ("import sys\nfor name in sys.argv[1].split(','):\n    sys.modules[name] = None\n"
        "from asyncvla_action_node.action_node import main\nsys.exit(main(sys.argv[2:]))")


def test_the_parameter_description_lists_every_registered_runtime():
    text = SPECS["expert.runtime"].description
    listed = [name for name in RUNTIMES if f" {name}" in text]
    assert listed == list(RUNTIMES)
    assert SPECS["expert.runtime"].default == AUTO and AUTO not in RUNTIMES
    assert f"{AUTO} (default)" in text
    # what replaced each old expert_dtype value, named in the description, is a runtime
    assert "float32 -> torch_float32" in text and "bfloat16 -> torch_bf16_autocast" in text
    assert OLD_NAMES["expert_dtype"] == "expert.runtime"


def _params(**overrides) -> ExpertConfig:
    return ExpertConfig(**{"cache_dir": "", **overrides})


def test_auto_builds_the_runtime_it_chose_and_reports_the_choice(tmp_path):
    from asyncvla_policy.config import tiny_policy_config
    from asyncvla_policy.policy import ActionPolicy

    policy = ActionPolicy(tiny_policy_config(vl_dim=8)).eval()
    runtime = build_expert(policy, _params(threads=1, cache_dir=str(tmp_path),
                                           max_runtime_error=1e-3))
    choice = runtime.auto_choice
    assert choice is not None and runtime.name == choice.name
    chosen = choice.candidate(choice.name)
    assert chosen.status == "chosen" and chosen.max_error <= 1e-3  # the parameter is the bound
    assert list(tmp_path.glob("auto-*.json"))  # expert.cache_dir holds the choice
    report = expert_report(runtime)
    assert report.values["expert_runtime"] == runtime.name
    assert report.values["max_runtime_error"] == 1e-3
    assert f"{runtime.name} chosen by auto" in report.message and "ms p50" in report.message
    named = build_expert(policy, _params(runtime="torch_float32"))
    assert named.auto_choice is None
    assert expert_report(named).values == {"expert_runtime": "torch_float32",
                                           "chosen_by": "parameter"}


def test_the_cache_directory_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir(ExpertConfig(cache_dir="~/x")) == str(tmp_path / "x")
    assert cache_dir(ExpertConfig(cache_dir="")) is None


def test_unknown_runtime_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="expert_runtime must be one of"):
        build_expert(object(), _params(runtime="tensorrt"))


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
    ({"expert.runtime": "openvino_int8"}, "nncf",
     "asyncvla_action_node: expert_runtime 'openvino_int8' needs nncf: pip install nncf"),
    ({"expert_dtype": "bfloat16"}, "",
     "asyncvla_action_node: parameter 'expert_dtype' was replaced by 'expert.runtime': remove "
     "expert_dtype from the YAML or launch file and set expert.runtime"),
    # an old name of the flat parameters (and the merged robot state age) stops the node too
    ({"robot_state_timeout": 0.2}, "",
     "asyncvla_action_node: parameter 'robot_state_timeout' was replaced by "
     "'freshness.robot_state_max_age'"),
])
def test_node_start_refusal_is_one_line(ros_env, tmp_path, params, blocked, expected):
    proc = _start_node(ros_env, blocked, checkpoint=_tiny_checkpoint(tmp_path), **params)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("asyncvla_action_node:")]
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr[-3000:]
