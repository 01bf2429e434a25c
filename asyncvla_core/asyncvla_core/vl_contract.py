"""What a policy checkpoint says about its VL features, and who differs from it (no ROS).

A policy only works with features made exactly as in training: the same model (and LoRA adapter),
image size, number of pooled feature tokens and hidden-state layer; the prompt is an input the
policy was trained on too. The checkpoint stores these (metadata ``vl_config``, ``vl_model_id``,
``vl_adapter_id``, ``views``, ``prompts``).
Data and rules only, no torch: reading them from a checkpoint's ``config.json`` is
``read_checkpoint_vl`` in the policy's checkpoint module. Two users:

* the VLM node, given ``policy_checkpoint``, takes its VL settings from it
  (:func:`vlm_settings_from_checkpoint`) and checks the model it loaded (:meth:`CheckpointVL.
  extractor_mismatch`), so ``checkpoint:=`` alone gives a working pair;
* the action node names the setting that differs when it refuses features
  (:meth:`CheckpointVL.features_mismatch`) instead of showing two opaque model ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

#: VLM node parameters (its dotted names, vlm_config.VLMNodeConfig) that define what the
#: features mean: a value other than the parameter's default must equal the checkpoint's, else
#: the node refuses to start (a conflict is loud).
MUST_MATCH = ("features.num_tokens", "features.layer", "views.resize_width",
              "views.resize_height", "views.names")
#: VLM node parameters where an explicit value wins over the checkpoint's: a model's path
#: differs between machines (the loaded model is then checked by its id), and the prompt is a
#: run-time task input (a prompt the policy was not trained on is logged).
EXPLICIT_WINS = ("model.path", "model.adapter_path", "prompt")


@dataclass(frozen=True)
class VLSeen:
    """The identity fields of one VLFeatures message."""

    model_id: str
    adapter_id: str
    num_tokens: int
    feature_layer: int
    prompt: str


@dataclass(frozen=True)
class CheckpointVL:
    """The VL settings a policy checkpoint was trained with."""

    checkpoint: str
    model_id: str
    adapter_id: str
    model_path: str
    adapter_path: str  # absolute ('' = none)
    image_size: tuple[int, int]  # width, height
    num_feature_tokens: int
    feature_layer: int
    prompts: tuple[str, ...]
    views: tuple[str, ...]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], checkpoint: str | Path) -> CheckpointVL | None:
        """None when the metadata has no ``vl_config`` (a checkpoint not written by the trainer)."""
        vl = metadata.get("vl_config")
        if not isinstance(vl, Mapping):
            return None
        adapter = vl.get("adapter_path") or ""
        if adapter and not Path(adapter).is_absolute():
            adapter = str(Path(checkpoint) / adapter)
        prompts = metadata.get("prompts") or ([vl["prompt"]] if vl.get("prompt") else [])
        try:
            return cls(str(checkpoint), str(metadata.get("vl_model_id", "")),
                       str(metadata.get("vl_adapter_id") or ""), str(vl["model_path"]), adapter,
                       (int(vl["image_width"]), int(vl["image_height"])),
                       int(vl["num_feature_tokens"]), int(vl["feature_layer"]),
                       tuple(str(p) for p in prompts), tuple(str(v) for v in metadata.get("views") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{checkpoint}/config.json: metadata.vl_config is incomplete "
                             f"({exc!r})") from None

    # --- the action node's view ----------------------------------------------------------
    def features_mismatch(self, seen: VLSeen) -> str:
        """"" when the features' model id and adapter are the checkpoint's, else which settings
        differ. The model id covers model, image size, token count and layer (vl_extractor), so
        the other fields only explain a refusal; the adapter is not in the id and is checked."""
        if seen.model_id == self.model_id and seen.adapter_id == self.adapter_id:
            return ""
        diffs = []
        if seen.num_tokens != self.num_feature_tokens:
            diffs.append(f"features.num_tokens {seen.num_tokens} (trained: "
                         f"{self.num_feature_tokens})")
        if seen.feature_layer != self.feature_layer:
            diffs.append(f"features.layer {seen.feature_layer} (trained: {self.feature_layer})")
        if seen.adapter_id != self.adapter_id:
            diffs.append(f"adapter {seen.adapter_id or '(none)'!r} (trained: "
                         f"{self.adapter_id or '(none)'!r})")
        if seen.model_id != self.model_id and not diffs:
            w, h = self.image_size
            diffs.append(f"model or image size: VLFeatures does not carry the image size, so "
                         f"check views.resize_width/resize_height (trained: {w}x{h}) and "
                         f"model.path (trained: {self.model_path})")
        if self.prompts and seen.prompt not in self.prompts:
            diffs.append(f"prompt {seen.prompt!r} (trained: {self.prompts[0]!r})")
        return (f"VL features from model {seen.model_id!r} do not match checkpoint "
                f"{self.checkpoint} ({self.model_id!r}): " + "; ".join(diffs)
                + ". Start the VLM node with policy_checkpoint:=<this checkpoint>")

    # --- the VLM node's view -------------------------------------------------------------
    def extractor_mismatch(self, model_id: str, adapter_id: str, model_path: str) -> str:
        """"" when a loaded extractor makes this checkpoint's features, else why not."""
        if model_id != self.model_id:
            return (f"model.path {model_path!r} with these settings gives model id {model_id!r}, "
                    f"but {self.checkpoint} was trained on {self.model_id!r} (from "
                    f"{self.model_path!r}): the model itself (its architecture config) differs")
        if adapter_id != self.adapter_id:
            return (f"adapter {adapter_id or '(none)'!r} loaded, but {self.checkpoint} was "
                    f"trained with {self.adapter_id or '(none)'!r}")
        return ""


def vlm_settings_from_checkpoint(params: Mapping[str, Any], defaults: Mapping[str, Any],
                                 ckpt: CheckpointVL) -> tuple[dict[str, Any], list[str]]:
    """The VLM node's parameters with its VL settings taken from ``ckpt``, and notes to log.

    A parameter still at its declared default takes the checkpoint's value. One of MUST_MATCH
    set to anything else must equal the checkpoint's value: ValueError naming every conflict.
    One of EXPLICIT_WINS set explicitly is kept (a note says so). Setting a parameter to its
    default value explicitly cannot be told from not setting it: the checkpoint's value is used.
    """
    trained: dict[str, Any] = {
        "features.num_tokens": ckpt.num_feature_tokens, "features.layer": ckpt.feature_layer,
        "views.resize_width": ckpt.image_size[0], "views.resize_height": ckpt.image_size[1],
        "views.names": list(ckpt.views), "model.path": ckpt.model_path,
        "model.adapter_path": ckpt.adapter_path,
        "prompt": ckpt.prompts[0] if len(ckpt.prompts) == 1 else None,
    }
    out = dict(params)
    conflicts, notes = [], []
    for name, value in trained.items():
        if value is None or (name == "views.names" and not value):
            continue  # the checkpoint does not say (several prompts; no views recorded)
        current = params[name]
        if current == defaults[name] or current == value:
            out[name] = value
        elif name in MUST_MATCH:
            conflicts.append(f"{name} {current!r} (trained: {value!r})")
        else:
            notes.append(f"{name} {current!r} kept (the checkpoint's: {value!r})")
    if conflicts:
        raise ValueError(f"policy_checkpoint {ckpt.checkpoint} was trained with other VL "
                         f"settings than this node's parameters: {'; '.join(conflicts)}. Remove "
                         "these parameters (the checkpoint's values are then used) or match them")
    if len(ckpt.prompts) > 1 and params["prompt"] not in ckpt.prompts:
        notes.append(f"prompt {params['prompt']!r} is none of the {len(ckpt.prompts)} prompts "
                     "the policy was trained on")
    return out, notes
