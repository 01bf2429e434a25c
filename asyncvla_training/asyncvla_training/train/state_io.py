"""Optimiser state to safetensors + JSON (never pickle / torch.save).

``optimizer.state_dict()`` is a nest of per-parameter tensors (AdamW: ``exp_avg``, ``exp_avg_sq``,
``step``) and plain values (param groups, hyper-parameters). Tensors go to
``optimizer.safetensors`` under ``state.<param index>.<name>``; everything else to
``optimizer.json``, with the tensor names recorded so loading rebuilds the identical dict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return (
            {"__tuple__": [_jsonable(v, where) for v in value]}
            if isinstance(value, tuple)
            else [_jsonable(v, where) for v in value]
        )
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise TypeError(f"{where}: cannot store {type(value).__name__} in JSON")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_optimizer_state(optimizer: torch.optim.Optimizer, directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        plain: dict[str, Any] = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                key = f"state.{index}.{name}"
                tensors[key] = value.detach().cpu().contiguous()
                plain[name] = {"__tensor__": key}
            else:
                plain[name] = _jsonable(value, f"optimizer state {index}.{name}")
        plain_state[str(index)] = plain
    document = {
        "format": "asyncvla_optimizer",
        "type": type(optimizer).__name__,
        "state": plain_state,
        "param_groups": _jsonable(state_dict["param_groups"], "optimizer param_groups"),
    }
    save_file(tensors, str(directory / OPTIMIZER_TENSORS))
    (directory / OPTIMIZER_JSON).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def load_optimizer_state(optimizer: torch.optim.Optimizer, directory: str | Path) -> None:
    directory = Path(directory)
    document = json.loads((directory / OPTIMIZER_JSON).read_text())
    if document.get("format") != "asyncvla_optimizer":
        raise ValueError(f"{directory / OPTIMIZER_JSON} is not an asyncvla optimizer state")
    if document.get("type") != type(optimizer).__name__:
        raise ValueError(f"optimizer state is for {document.get('type')}, not {type(optimizer).__name__}")
    tensors = load_file(str(directory / OPTIMIZER_TENSORS), device="cpu")
    state: dict[int, dict[str, Any]] = {}
    for index, entry in document["state"].items():
        rebuilt: dict[str, Any] = {}
        for name, value in entry.items():
            if isinstance(value, dict) and set(value) == {"__tensor__"}:
                rebuilt[name] = tensors[value["__tensor__"]]
            else:
                rebuilt[name] = _from_json(value)
        state[int(index)] = rebuilt
    groups = _from_json(document["param_groups"])
    if len(groups) != len(optimizer.param_groups):
        raise ValueError(
            f"optimizer state has {len(groups)} parameter groups, the model {len(optimizer.param_groups)}"
        )
    for saved, current in zip(groups, optimizer.param_groups):
        if len(saved["params"]) != len(current["params"]):
            raise ValueError(
                f"parameter group {saved.get('name')!r}: {len(saved['params'])} saved "
                f"parameters, {len(current['params'])} in the model"
            )
    optimizer.load_state_dict({"state": state, "param_groups": groups})
