"""Policy checkpoints: exact round trip, no pickle, and a clear CheckpointError for each failure."""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_policy.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint_metadata,
    load_policy,
    save_policy,
)
from asyncvla_policy.config import CONFIG_SCHEMA_VERSION  # noqa: E402
from asyncvla_policy.config import tiny_policy_config  # noqa: E402
from asyncvla_policy.policy import ActionPolicy  # noqa: E402


def _policy(fusion: str = "gated") -> ActionPolicy:
    torch.manual_seed(1)
    policy = ActionPolicy(tiny_policy_config(vl_dim=16, vl_num_tokens=3, fusion=fusion))
    with torch.no_grad():  # the age modulation starts at zero: make its weights matter
        policy.action_expert.age.proj.weight.normal_(0.0, 1.0)
    policy.set_normalization(
        action_mean=np.arange(7, dtype=np.float32), action_std=np.full(7, 0.5, dtype=np.float32),
        state_std=np.full(policy.cfg.robot_state_dim, 2.0),
    )
    # Non-trivial BatchNorm running statistics must survive the round trip too.
    policy.train()
    with torch.no_grad():
        run(policy, _inputs(policy, batch=4))
    return policy.eval()


def run(policy: ActionPolicy, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The policy on (vl, window, state, age) inputs."""
    return policy(*inputs[:3], vl_age=inputs[3])


def _inputs(policy: ActionPolicy, batch: int = 2) -> tuple[torch.Tensor, ...]:
    cfg = policy.cfg
    g = torch.Generator().manual_seed(7)
    return (
        torch.randn(batch, cfg.vl_num_tokens, cfg.vl_dim, generator=g),
        torch.randn(batch, cfg.sensor.window, cfg.sensor.in_channels, generator=g),
        torch.randn(batch, cfg.robot_state_dim, generator=g),
        torch.rand(batch, generator=g) * 0.7,
    )


@pytest.mark.parametrize("fusion", ["concat", "cross_attention"])
def test_round_trip_identical_outputs(tmp_path: Path, fusion: str) -> None:
    policy = _policy(fusion)
    save_policy(policy, tmp_path / "ckpt", extra_metadata={"action_space": "ee_delta", "epoch": 3})
    loaded = load_policy(tmp_path / "ckpt", device="auto" if not torch.cuda.is_available() else "cpu")
    assert not loaded.training and loaded.device.type == "cpu"
    assert loaded.cfg == policy.cfg
    inputs = _inputs(policy)
    assert torch.equal(run(loaded, inputs), run(policy, inputs))
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert load_checkpoint_metadata(tmp_path / "ckpt") == {"action_space": "ee_delta", "epoch": 3}


def test_no_pickle_is_written_or_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle-based serialisation used")

    for name in ("save", "load"):
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(pickle, "dump", forbidden)
    monkeypatch.setattr(pickle, "dumps", forbidden)
    save_policy(_policy(), tmp_path)
    load_policy(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + header_len])  # safetensors JSON header
    assert b"\x80\x04" not in raw[:2] and not raw.startswith(b"PK")  # not pickle / zip (.pt)


def test_missing_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        load_policy(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_policy(tmp_path)
    save_policy(_policy(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_policy(tmp_path)


def test_corrupted_json(tmp_path: Path) -> None:
    save_policy(_policy(), tmp_path)
    (tmp_path / "config.json").write_text('{"schema_version": 1, "policy_config": ')
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_policy(tmp_path)


def test_corrupted_weights(tmp_path: Path) -> None:
    save_policy(_policy(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="cannot be read as safetensors"):
        load_policy(tmp_path)


@pytest.mark.parametrize(
    "version, message",
    [(CONFIG_SCHEMA_VERSION + 1, "newer than the supported version"), (0, "unknown schema_version"),
     (None, "must be an integer")],
)
def test_schema_version_mismatch(tmp_path: Path, version: object, message: str) -> None:
    save_policy(_policy(), tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["schema_version"] = version
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=message):
        load_policy(tmp_path)


def test_invalid_policy_config(tmp_path: Path) -> None:
    save_policy(_policy(), tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["policy_config"]["fusion"] = "bogus"
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="invalid policy_config: fusion must be one of"):
        load_policy(tmp_path)


def _rewrite_weights(path: Path, edit) -> None:
    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"))


def test_wrong_shape_tensor(tmp_path: Path) -> None:
    save_policy(_policy(), tmp_path)
    _rewrite_weights(tmp_path, lambda s: s.__setitem__("action_expert.head.weight", torch.zeros(5, 32)))
    with pytest.raises(CheckpointError, match=r"shape mismatch action_expert.head.weight: file \(5, 32\) vs config \(7, 32\)"):
        load_policy(tmp_path)


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    save_policy(_policy(), tmp_path)

    def edit(state: dict) -> None:
        del state["action_mean"]
        state["extra.weight"] = torch.zeros(2)

    _rewrite_weights(tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"missing keys \['action_mean'\].*unexpected keys \['extra.weight'\]"):
        load_policy(tmp_path)


def test_config_weights_mismatch_from_edited_config(tmp_path: Path) -> None:
    """A config edited after training (wider VL input) is caught before weights are loaded."""
    save_policy(_policy(), tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["policy_config"]["vl_dim"] = 32
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_policy(tmp_path)


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_policy(_policy(), tmp_path, extra_metadata={"bad": object()})
    assert not (tmp_path / "model.safetensors").exists()


def test_a_checkpoint_from_before_the_age_input_loads_and_runs_unchanged(tmp_path: Path) -> None:
    """config.json written before ``vl_age_input`` existed has no such key: the policy builds
    without the age modulation, loads its weights strictly and ignores an age it is given."""
    import json

    torch.manual_seed(2)
    old = ActionPolicy(tiny_policy_config(vl_dim=16, vl_num_tokens=3, vl_age_input=False,
                                          vl_token_positions=False)).eval()
    save_policy(old, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["policy_config"]["vl_age_input"]  # as the older code wrote it
    del config["policy_config"]["vl_token_positions"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = load_policy(tmp_path)
    assert loaded.cfg.vl_age_input is False and loaded.action_expert.age is None
    vl, window, state, _ = _inputs(loaded, batch=1)
    want = old.predict(vl[0], window[0], state[0])
    np.testing.assert_array_equal(loaded.predict(vl[0], window[0], state[0]), want)
    np.testing.assert_array_equal(loaded.predict(vl[0], window[0], state[0], 0.45), want)
