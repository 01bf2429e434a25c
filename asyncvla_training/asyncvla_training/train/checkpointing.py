"""Checkpoints of a training run: the policy (and LoRA adapter) the action node loads, plus the
optimiser and step state a resumed run needs; written to a staging directory and swapped in.

A mixin of the Trainer: it reads the run's config, episodes, policy, extractor and optimiser.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from asyncvla_core.conventions import ACTION_SPACES
from asyncvla_policy.checkpoint import save_policy
from asyncvla_policy.config import VLConfig
from .config import TrainConfig
from .state_io import load_optimizer_state, save_optimizer_state

ADAPTER_DIR = "adapter"
TRAINING_DIR = "training"
STATE_NAME = "state.json"
# TrainConfig keys that may differ between a run and its resumption (bookkeeping only).
RESUME_MUTABLE_KEYS = frozenset(
    {"eval_every", "save_every", "log_every", "out_dir", "device", "val_max_samples"}
)


def adapter_id_of(directory: str | Path) -> str:
    """The ``adapter_id`` ``VLFeatureExtractor.load_adapter(directory)`` will report."""
    path = Path(directory)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and p.name.startswith("adapter_")):
        digest.update(file.read_bytes())
    return f"{path.name}@{digest.hexdigest()[:10]}"


class ResumeError(ValueError):
    """``latest/`` cannot be continued by this run (other config, other number of processes)."""


class CheckpointMixin:
    """save_checkpoint / load_training_state and the metadata the action node relies on."""

    def vl_config(self, with_adapter: bool) -> VLConfig:
        cfg = self.cfg
        prompts = sorted({self._prompt(ep) for ep in self.train_episodes})
        return VLConfig(
            model_path=cfg.vl_model_path,
            adapter_path=ADAPTER_DIR if with_adapter else None,
            image_width=cfg.image_width,
            image_height=cfg.image_height,
            max_views=cfg.max_views,
            num_feature_tokens=cfg.num_feature_tokens,
            feature_layer=cfg.feature_layer,
            prompt=prompts[0],
        )

    def metadata(self, adapter_id: str) -> dict[str, Any]:
        cfg = self.cfg
        ep = self.train_episodes[0]
        prompts = sorted({self._prompt(e) for e in self.train_episodes})
        return {
            "action_space": cfg.action_space,
            "action_names": list(ACTION_SPACES[cfg.action_space]),
            "step_period": cfg.step_period,
            "vl_model_id": self.vl_model_id,
            "vl_adapter_id": adapter_id,
            "vl_adapter_path": ADAPTER_DIR if self.extractor is not None else None,
            "vl_config": self.vl_config(self.extractor is not None).to_dict(),
            "prompt": prompts[0] if len(prompts) == 1 else None,
            "prompts": prompts,
            "views": list(ep.views),
            "stage": cfg.stage,
            "step": self.step,
            "vl_age_training": self.vl_ages.describe(),
            "datasets": {
                "train": [e.name for e in self.train_episodes],
                "val": [e.name for e in self.val_episodes],
            },
            "init_from": cfg.init_from,
            "train_config": cfg.to_dict(),
            "normalization": "train episodes (asyncvla_training.data.stats.compute_normalization)"
            if not cfg.init_from
            else f"from {cfg.init_from}",
        }

    def save_checkpoint(
        self, name: str, training_state: bool, extra: dict[str, Any] | None = None
    ) -> Path | None:
        """Write ``out_dir/name`` (rank 0 only): policy + adapter [+ training state], swapped in."""
        if not self.dist.is_main:
            return None
        final = self.out_dir / name
        staging = self.out_dir / f".{name}.staging"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        adapter_id = self.vl_adapter_id
        if self.extractor is not None:
            self.extractor.save_adapter(staging / ADAPTER_DIR)
            adapter_id = adapter_id_of(staging / ADAPTER_DIR)
        metadata = self.metadata(adapter_id)
        metadata.update(extra or {})
        was_training = self.policy.training
        save_policy(self.policy, staging, extra_metadata=metadata)
        self.policy.train(was_training)
        if training_state:
            tdir = staging / TRAINING_DIR
            save_optimizer_state(self.optimizer, tdir)
            state = {
                "format": "asyncvla_train_state",
                "step": self.step,
                "schedule": {
                    "type": "warmup_cosine",
                    "step": self.step,
                    "warmup_steps": self.cfg.warmup_steps,
                    "total_steps": self.cfg.total_steps,
                    "min_lr_ratio": self.cfg.min_lr_ratio,
                },
                "rng": {
                    "seed": self.cfg.seed,
                    "scheme": "torch reseeded per (seed, rank, micro-step); data order and "
                    "staleness are functions of (seed, epoch, rank, micro-step)",
                },
                "best_val_loss": self.best_val,
                "world_size": self.dist.world_size,
                "train_config": self.cfg.to_dict(),
                "history_tail": self.history[-50:],
            }
            (tdir / STATE_NAME).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        old = self.out_dir / f".{name}.old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        if old.exists():
            shutil.rmtree(old)
        return final

    def load_training_state(self, directory: str | Path) -> None:
        """Restore weights (policy, LoRA), optimiser, step and best validation loss from ``latest``."""
        directory = Path(directory)
        tdir = directory / TRAINING_DIR
        if not (tdir / STATE_NAME).is_file():
            raise FileNotFoundError(f"{directory} has no {TRAINING_DIR}/{STATE_NAME}: nothing to resume")
        state = json.loads((tdir / STATE_NAME).read_text())
        saved = TrainConfig.from_dict(state["train_config"]).to_dict()
        current = self.cfg.to_dict()
        changed = sorted(k for k in current if current[k] != saved.get(k) and k not in RESUME_MUTABLE_KEYS)
        if changed:
            raise ResumeError(
                f"cannot resume {directory}: the TrainConfig differs in {changed} "
                "(only bookkeeping keys may change)"
            )
        if state["world_size"] != self.dist.world_size:
            raise ResumeError(
                f"cannot resume {directory} with {self.dist.world_size} process(es): it was "
                f"trained with {state['world_size']} (the data order depends on it)"
            )
        weights = load_file(str(directory / "model.safetensors"), device="cpu")
        self.policy.load_state_dict(weights, strict=True)
        if self.extractor is not None:
            self._load_adapter_weights(directory / ADAPTER_DIR / "adapter_model.safetensors")
        load_optimizer_state(self.optimizer, tdir)
        self.step = int(state["step"])
        self.best_val = state.get("best_val_loss")
        self.history = list(state.get("history_tail", []))
        self.log({"event": "resume", "step": self.step, "from": str(directory)})
