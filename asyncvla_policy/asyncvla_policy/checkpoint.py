"""Policy checkpoints: ``model.safetensors`` + ``config.json``, never pickle.

Why: the original system saved pickled ``.pt`` files, which execute code on load and break whenever a class
moves. A checkpoint here is a directory with

* ``model.safetensors`` - every parameter and buffer (normalisation statistics included);
* ``config.json`` - ``{"schema_version", "format", "policy_config", "metadata"}``.

``load_policy`` checks everything it can before building the model and raises
:class:`CheckpointError` with the file and the problem, so the ROS node's log says what is wrong.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from asyncvla_core.vl_contract import CheckpointVL

from .config import CONFIG_SCHEMA_VERSION, PolicyConfig, check_schema_version
from .devices import resolve_device
from .policy import ActionPolicy

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CHECKPOINT_FORMAT = "asyncvla_policy"


class CheckpointError(Exception):
    """A policy checkpoint is missing, unreadable or does not match its config."""


def _atomic_write(path: Path, write: Any) -> None:
    """Write via a temp file + rename so a crash never leaves a half-written checkpoint file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_policy(
    policy: ActionPolicy, directory: str | Path, extra_metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``policy`` to ``directory`` (created if needed); returns the directory path.

    ``extra_metadata`` must be JSON-serialisable (e.g. VLConfig dict, dataset ids, action
    convention, git commit); it is stored under ``"metadata"`` in ``config.json``.
    """
    directory = Path(directory)
    metadata = dict(extra_metadata or {})
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"extra_metadata must be JSON-serialisable: {exc}") from exc
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    document = {
        "schema_version": CONFIG_SCHEMA_VERSION,
        "format": CHECKPOINT_FORMAT,
        "policy_config": policy.cfg.to_dict(),
        "metadata": metadata,
        "torch_version": torch.__version__,
    }
    header = {"format": "pt", "schema_version": str(CONFIG_SCHEMA_VERSION)}
    _atomic_write(
        directory / WEIGHTS_NAME,
        lambda p: save_file(state, p, metadata=header),
    )
    _atomic_write(
        directory / CONFIG_NAME,
        lambda p: Path(p).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n"),
    )
    return directory


def read_checkpoint_config(directory: str | Path) -> tuple[PolicyConfig, dict[str, Any]]:
    """(PolicyConfig, metadata) from ``config.json`` without touching the weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"{config_path} is missing (not a policy checkpoint directory?)")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object, got {type(document).__name__}")
    if "schema_version" not in document:
        raise CheckpointError(f"{config_path}: no schema_version (not an asyncvla_policy checkpoint)")
    try:
        check_schema_version(document["schema_version"], str(config_path))
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    if document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{config_path}: format is {document.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    try:
        cfg = PolicyConfig.from_dict(document.get("policy_config"))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: invalid policy_config: {exc}") from exc
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{config_path}: metadata must be a JSON object")
    return cfg, metadata


def _check_state(state: dict[str, torch.Tensor], policy: ActionPolicy, path: Path) -> None:
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if mismatched:
        problems.append("shape mismatch " + "; ".join(mismatched[:10]))
    if problems:
        raise CheckpointError(f"{path} does not match config.json: " + " | ".join(problems))


def load_policy(directory: str | Path, device: str | torch.device = "cpu") -> ActionPolicy:
    """Rebuild the policy from ``directory``; returned in eval mode on ``device`` ("auto" ok)."""
    dev = resolve_device(device)
    directory = Path(directory)
    cfg, _ = read_checkpoint_config(directory)
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path} is missing")
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path} cannot be read as safetensors: {exc}") from exc
    policy = ActionPolicy(cfg)
    _check_state(state, policy, weights_path)
    policy.load_state_dict(state, strict=True)
    return policy.to(dev).eval()


def load_checkpoint_metadata(directory: str | Path) -> dict[str, Any]:
    """The ``metadata`` dict saved with ``save_policy(extra_metadata=...)``."""
    return read_checkpoint_config(directory)[1]


def read_checkpoint_vl(directory: str | Path) -> CheckpointVL:
    """The checkpoint's VL settings; CheckpointError (the file, the problem) when it has none."""
    _, metadata = read_checkpoint_config(directory)
    found = CheckpointVL.from_metadata(metadata, directory)
    if found is None:
        raise CheckpointError(f"{Path(directory) / 'config.json'}: no metadata.vl_config (not "
                              "written by asyncvla-train?): set the VL parameters instead of "
                              "policy_checkpoint")
    return found
