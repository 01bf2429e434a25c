"""Stage 1 / stage 2 trainer: episodes in, resumable checkpoints the action node loads as-is.

* **Stage 1** - the VLM is frozen; VL features come from a :class:`FeatureProvider` (the VL
  cache, or an extractor run once per frame set). Trained: sensor encoder (``sensor_lr``) and
  action expert (``lr``).
* **Stage 2** - LoRA on the VLM's language model (``vl_lr``) plus the same heads; features are
  extracted live (``encode_batch`` on the frames of the stale index), gradients flow into LoRA.
  Heads start from a stage-1 checkpoint (``init_from``).

Both stages: loss in the policy's normalised action space (``ActionPolicy.forward_normalized``,
MSE or smooth L1), AdamW, linear warmup + cosine to ``min_lr_ratio``, gradient accumulation,
clipping, VL staleness as time (each sample's VL age drawn in milliseconds, its frame set the one
the VLM would have used that long before, the age given to the expert: ``sampling``), bf16
autocast on CUDA only, DDP
under torchrun (only rank 0 writes). The target chunk never enters the model (``z_chunk`` stays
None, see ``models/action_expert``).

Output directory::

    <out_dir>/train_config.json   the run's TrainConfig
    <out_dir>/log.jsonl           one JSON line per logged step / evaluation (rank 0)
    <out_dir>/latest/             policy checkpoint (model.safetensors + config.json) [+ adapter/]
    <out_dir>/latest/training/    optimizer.safetensors + optimizer.json + state.json (resume)
    <out_dir>/best/               policy checkpoint with the lowest validation loss [+ adapter/]
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..data.episode import Episode
from ..data.stats import compute_normalization
from asyncvla_policy.checkpoint import load_policy, read_checkpoint_config
from asyncvla_policy.config import PolicyConfig, SensorEncoderConfig
from asyncvla_policy.config import tiny_policy_config
from asyncvla_policy.lora import LM_ATTENTION_LORA_TARGET, LM_LORA_TARGET
from asyncvla_policy.policy import ActionPolicy
from .config import TRAIN_CONFIG_NAME, TrainConfig
from .distributed import DistContext, init_distributed
from .features import ExtractorFeatureProvider, FeatureProvider, episode_prompt
from .progress import progress_bar, write_above
from .sampling import BatchPlan, SampleIndex, VLAgeDistribution, reseed_torch
from .schedule import apply_lr
from .checkpointing import ADAPTER_DIR, CheckpointMixin

_VAL_STREAM = 2**31 - 1  # micro-step id of the validation staleness draw (never a training step)



def load_vl_extractor(cfg: TrainConfig, device: torch.device, adapter_path: str | None = None):
    """The frozen VLM feature extractor described by ``cfg`` (offline; see vl_extractor)."""
    from asyncvla_policy.vl_extractor import VLFeatureExtractor

    return VLFeatureExtractor.from_pretrained(
        cfg.vl_model_path,
        adapter_path=adapter_path,
        device=device,
        dtype=None if cfg.vl_dtype == "auto" else cfg.vl_dtype,
        image_size=(cfg.image_width, cfg.image_height),
        max_views=cfg.max_views,
        num_feature_tokens=cfg.num_feature_tokens,
        feature_layer=cfg.feature_layer,
    )


def as_payload_precision(features: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round to the wire dtype in the forward pass, identity in the backward pass.

    At run time the expert sees features rounded by the VLFeatures payload (float16 by
    default); training on the same rounding keeps stage 2 from fitting to digits that never
    reach the robot, while gradients still reach the LoRA weights (straight-through).
    """
    if dtype == torch.float32:
        return features
    return features + (features.to(dtype).to(features.dtype) - features).detach()


class TrainModule(nn.Module):
    """Policy (+ stage-2 extractor) behind one ``forward`` so DDP sees every trainable parameter."""

    def __init__(self, policy: ActionPolicy, extractor: nn.Module | None = None,
                 payload_dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        self.policy = policy
        self.extractor = extractor
        self.payload_dtype = payload_dtype

    def forward(self, vl_input: Any, windows: torch.Tensor, states: torch.Tensor,
                vl_age: torch.Tensor) -> torch.Tensor:
        if self.extractor is not None:
            vl = as_payload_precision(self.extractor.encode_batch(vl_input), self.payload_dtype)
        else:
            vl = vl_input
        return self.policy.forward_normalized(vl, windows, states, vl_age=vl_age)


@dataclass(frozen=True)
class Item:
    """One training sample: sample ``index`` of ``episode`` (its fresh sensor window, state and
    target chunk) with the VL features of ``frame_set``, ``vl_age_ns`` old at the sample's time."""

    episode: Episode
    index: int
    frame_set: int
    vl_age_ns: int


@dataclass
class Batch:
    vl_input: Any  # (B, K, D) tensor (stage 1) or [(views, prompt)] (stage 2)
    windows: torch.Tensor
    states: torch.Tensor
    actions: torch.Tensor
    vl_age: torch.Tensor  # (B,) seconds


def check_episodes(episodes: Sequence[Episode], cfg: TrainConfig, what: str) -> None:
    """Every episode matches the run: step period, action space, consistent shapes."""
    if not episodes:
        raise ValueError(f"no {what} episodes")
    names = [ep.name for ep in episodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} episode names are not unique: {names}")
    first = episodes[0]
    for ep in episodes:
        if not math.isclose(ep.step_period, cfg.step_period, rel_tol=1e-6):
            raise ValueError(
                f"episode {ep.name}: step_period {ep.step_period} s != the run's "
                f"step_period {cfg.step_period} s"
            )
        if ep.action_space != cfg.action_space:
            raise ValueError(
                f"episode {ep.name}: action_space {ep.action_space!r} != the run's {cfg.action_space!r}"
            )
        if len(ep) == 0:
            raise ValueError(f"episode {ep.name} is empty")
        for attr in ("sensor_windows", "states", "actions"):
            if tuple(getattr(ep, attr).shape[1:]) != tuple(getattr(first, attr).shape[1:]):
                raise ValueError(
                    f"episode {ep.name}: {attr} shape {getattr(ep, attr).shape[1:]} != "
                    f"{getattr(first, attr).shape[1:]} of {first.name}"
                )


class Trainer(CheckpointMixin):
    """One training run (stage 1 or 2). ``train()`` runs (or resumes) it to ``total_steps``."""

    def __init__(
        self,
        cfg: TrainConfig,
        train_episodes: Sequence[Episode],
        val_episodes: Sequence[Episode] = (),
        *,
        feature_provider: FeatureProvider | None = None,
        extractor: Any = None,
        dist: DistContext | None = None,
        log: Callable[[str], None] | None = None,
        progress: bool | None = None,
    ) -> None:
        """``progress``: a tqdm bar (loss, ETA) on stderr; None = only when it is a terminal."""
        self.cfg = cfg
        self._progress = progress
        self._bar = None
        self.dist = dist or init_distributed(cfg.device)
        self.device = self.dist.device
        self._log_fn = log or (lambda line: print(line, flush=True))
        self.train_episodes = list(train_episodes)
        self.val_episodes = list(val_episodes)
        check_episodes(self.train_episodes, cfg, "training")
        if self.val_episodes:
            check_episodes(self.val_episodes, cfg, "validation")
            shared = sorted({e.name for e in self.train_episodes} & {e.name for e in self.val_episodes})
            if shared:
                raise ValueError(f"episodes {shared[:5]} are in both the training and validation sets")
        self.out_dir = Path(cfg.out_dir)
        self.use_bf16 = cfg.use_bf16(self.device.type)
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.best_val: float | None = None

        num_tokens, feature_dim = self._setup_vl_side(feature_provider, extractor)
        policy_cfg = self._setup_policy(num_tokens, feature_dim)
        self._setup_optimizer()
        self._setup_model(policy_cfg)
        self.vl_ages = self._vl_age_distribution()
        self.index = SampleIndex(self.train_episodes)
        self.plan = BatchPlan(
            len(self.index), cfg.batch_size, self.dist.world_size, self.dist.rank, cfg.seed
        )
        self._val_items = self._validation_items()

    # ------------------------------------------------------------------ setup
    def _setup_vl_side(self, feature_provider: FeatureProvider | None,
                       extractor: Any) -> tuple[int, int]:
        """Stage 1: a feature provider (frozen VLM or cache); stage 2: the extractor with a fresh
        LoRA. Returns the features' (tokens, dim)."""
        cfg = self.cfg
        self.extractor = None
        self.provider = None
        if cfg.stage == 1:
            if feature_provider is None:
                feature_provider = ExtractorFeatureProvider(
                    extractor if extractor is not None else load_vl_extractor(cfg, self.device), cfg.prompt
                )
            self.provider = feature_provider
            sample = np.asarray(feature_provider(self.train_episodes[0], 0))  # frame set 0
            if sample.ndim != 2:
                raise ValueError(f"feature provider returned shape {sample.shape}, expected (K, D)")
            num_tokens, feature_dim = sample.shape
            self.vl_model_id = feature_provider.model_id
            self.vl_adapter_id = getattr(feature_provider, "adapter_id", "")
        else:
            if extractor is None:
                extractor = load_vl_extractor(cfg, self.device)
            if extractor.has_lora:
                raise ValueError("stage 2 attaches its own LoRA: pass an extractor without an adapter")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 17)
                extractor.attach_lora(
                    r=cfg.lora_r,
                    alpha=cfg.lora_alpha,
                    dropout=cfg.lora_dropout,
                    target=LM_LORA_TARGET if cfg.lora_target == "all" else LM_ATTENTION_LORA_TARGET,
                )
            if cfg.gradient_checkpointing:
                extractor.enable_gradient_checkpointing()
            extractor.to(self.device)
            self.extractor = extractor
            num_tokens, feature_dim = extractor.num_feature_tokens, extractor.feature_dim
            self.vl_model_id = extractor.model_id
            self.vl_adapter_id = extractor.adapter_id
        return num_tokens, feature_dim

    def _setup_policy(self, num_tokens: int, feature_dim: int) -> PolicyConfig:
        """A new policy (normalisation from the training episodes), or one to continue."""
        cfg = self.cfg
        self.init_metadata: dict[str, Any] = {}
        if cfg.init_from:
            policy_cfg, self.init_metadata = read_checkpoint_config(cfg.init_from)
            init_model = self.init_metadata.get("vl_model_id")
            if init_model and init_model != self.vl_model_id:
                raise ValueError(
                    f"init_from {cfg.init_from} was trained on VL features of "
                    f"{init_model!r}, this run uses {self.vl_model_id!r}"
                )
            self.policy = load_policy(cfg.init_from, device="cpu").train()
            init_adapter = Path(cfg.init_from) / ADAPTER_DIR / "adapter_model.safetensors"
            if self.extractor is not None and init_adapter.is_file():
                self._load_adapter_weights(init_adapter)  # continue a stage-2 run's LoRA
        else:
            policy_cfg = self._policy_config(num_tokens, feature_dim)
            torch.manual_seed(cfg.seed)
            self.policy = ActionPolicy(policy_cfg)
            self.policy.load_normalization(compute_normalization(self.train_episodes))
        self._check_shapes(policy_cfg, num_tokens, feature_dim)
        self.policy.to(self.device)
        self.module = TrainModule(self.policy, self.extractor,
                                  getattr(torch, cfg.vl_payload_dtype)).to(self.device)
        return policy_cfg

    def _setup_optimizer(self) -> None:
        """AdamW with one learning rate per part: expert, sensor encoder, LoRA."""
        cfg = self.cfg
        groups = [
            {"name": "expert", "params": list(self.policy.action_expert.parameters()), "base_lr": cfg.lr},
            {
                "name": "sensor",
                "params": list(self.policy.sensor_encoder.parameters()),
                "base_lr": cfg.sensor_lr,
            },
        ]
        if self.extractor is not None:
            groups.append(
                {"name": "lora", "params": self.extractor.trainable_parameters(), "base_lr": cfg.vl_lr}
            )
        for group in groups:
            group["lr"] = group["base_lr"]
        self.trainable = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)

    def _setup_model(self, policy_cfg: PolicyConfig) -> None:
        """The module the loop calls: DDP-wrapped when distributed."""
        self.model: nn.Module = self.module
        if self.dist.distributed:
            if self.extractor is not None:
                frozen = [
                    f"extractor.{n}" for n, p in self.extractor.named_parameters() if not p.requires_grad
                ]
                frozen += [f"extractor.{n}" for n, _ in self.extractor.named_buffers()]
                nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                    self.module, frozen
                )
            self.model = nn.parallel.DistributedDataParallel(
                self.module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self._has_unused_parameters(policy_cfg),
            )

    # ------------------------------------------------------------------ setup helpers
    def _has_unused_parameters(self, policy_cfg: PolicyConfig) -> bool:
        """DDP must look for parameters without gradients: a fusion that ignores the sensor
        leaves the sensor encoder unused; features from a middle LM layer leave the LoRA of the layers above unused."""
        from asyncvla_policy.fusions import FUSIONS

        if not FUSIONS[policy_cfg.fusion].uses_sensor:
            return True
        if self.extractor is None:
            return False
        layers = getattr(self.extractor, "_num_layers", None)
        return self.extractor.feature_layer not in (-1, layers)

    def _load_adapter_weights(self, path: Path) -> None:
        from peft import set_peft_model_state_dict

        weights = load_file(str(path), device="cpu")
        result = set_peft_model_state_dict(self.extractor.model, weights)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
        if unexpected or missing:
            raise ValueError(
                f"{path} does not fit this LoRA (lora_r / lora_target?): "
                f"unexpected keys {unexpected[:3]}, missing LoRA keys {missing[:3]}"
            )

    def _policy_config(self, num_tokens: int, feature_dim: int) -> PolicyConfig:
        cfg, ep = self.cfg, self.train_episodes[0]
        window, channels = ep.sensor_windows.shape[1:]
        horizon, action_dim = ep.actions.shape[1:]
        state_dim = ep.states.shape[1]
        if cfg.policy is not None:
            data = dict(cfg.policy)
            data.setdefault("vl_age_input", cfg.vl_age_input)
            data.update(vl_dim=feature_dim, vl_num_tokens=num_tokens)
            return PolicyConfig.from_dict(data)
        if cfg.policy_size == "tiny":
            return tiny_policy_config(
                vl_dim=feature_dim,
                vl_num_tokens=num_tokens,
                robot_state_dim=state_dim,
                window=window,
                in_channels=channels,
                horizon=horizon,
                action_dim=action_dim,
                vl_age_input=cfg.vl_age_input,
            )
        return PolicyConfig(
            sensor=SensorEncoderConfig(window=window, in_channels=channels, sensor_dim=feature_dim),
            robot_state_dim=state_dim,
            horizon=horizon,
            action_dim=action_dim,
            vl_dim=feature_dim,
            vl_num_tokens=num_tokens,
            vl_age_input=cfg.vl_age_input,
        )

    def _check_shapes(self, pc: PolicyConfig, num_tokens: int, feature_dim: int) -> None:
        ep = self.train_episodes[0]
        expected = {
            "VL features (K, D)": ((pc.vl_num_tokens, pc.vl_dim), (num_tokens, feature_dim)),
            "sensor window (T, C)": (
                (pc.sensor.window, pc.sensor.in_channels),
                tuple(ep.sensor_windows.shape[1:]),
            ),
            "robot state (S,)": ((pc.robot_state_dim,), tuple(ep.states.shape[1:])),
            "action chunk (H, A)": ((pc.horizon, pc.action_dim), tuple(ep.actions.shape[1:])),
        }
        for what, (policy_shape, data_shape) in expected.items():
            if tuple(policy_shape) != tuple(data_shape):
                raise ValueError(
                    f"{what}: the policy expects {tuple(policy_shape)}, the data has {tuple(data_shape)}"
                )

    def _vl_age_distribution(self) -> VLAgeDistribution:
        cfg = self.cfg
        recorded = None
        if cfg.vl_age_source == "recorded":
            ages = [ep.recorded_vl_ages_ns for ep in self.train_episodes
                    if ep.recorded_vl_ages_ns is not None]
            if not ages:
                raise ValueError("vl_age_source 'recorded' needs training bags that recorded the "
                                 "VLM node's VLFeatures topic; none of them did (use vl_age_ms)")
            recorded = np.concatenate(ages)
        return VLAgeDistribution(*cfg.vl_age_ms, recorded_ns=recorded)

    def _validation_items(self) -> list[Item]:
        """Fixed items, evenly thinned to val_max_samples, ages drawn as in training."""
        pairs = [(ep, i) for ep in self.val_episodes for i in range(len(ep))]
        if len(pairs) > self.cfg.val_max_samples:
            keep = np.linspace(0, len(pairs) - 1, self.cfg.val_max_samples).round().astype(int)
            pairs = [pairs[j] for j in keep]
        ages = self.vl_ages.draw(self.cfg.seed, 0, _VAL_STREAM, len(pairs))
        return [self._item(ep, i, int(a)) for (ep, i), a in zip(pairs, ages)]

    @staticmethod
    def _item(episode: Episode, index: int, age_ns: int) -> Item:
        frame_set, actual_ns = episode.stale_frame_set(index, age_ns)
        return Item(episode, index, frame_set, actual_ns)

    def log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        line = json.dumps(record, sort_keys=True)
        with write_above(self._bar):
            self._log_fn(line)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ------------------------------------------------------------------ batches
    def _prompt(self, ep: Episode) -> str:
        return episode_prompt(ep, self.cfg.prompt)

    def make_batch(self, items: Sequence[Item]) -> Batch:
        """Training items -> tensors on the training device."""
        dev = self.device

        def stacked(values: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack([np.asarray(v, dtype=np.float32) for v in values])).to(dev)

        windows = stacked([it.episode.sensor_windows[it.index] for it in items])
        states = stacked([it.episode.states[it.index] for it in items])
        actions = stacked([it.episode.actions[it.index] for it in items])
        if self.cfg.stage == 1:
            vl = stacked([self.provider(it.episode, it.frame_set) for it in items])
        else:
            vl = [(it.episode.load_frames(it.frame_set), self._prompt(it.episode)) for it in items]
        ages = torch.tensor([it.vl_age_ns / 1e9 for it in items], dtype=torch.float32, device=dev)
        return Batch(vl, windows, states, actions, ages)

    def items_for(self, micro_step: int) -> list[Item]:
        pairs = [self.index[j] for j in self.plan.indices(micro_step)]
        ages = self.vl_ages.draw(self.cfg.seed, self.dist.rank, micro_step, len(pairs))
        return [self._item(self.train_episodes[e], i, int(a)) for (e, i), a in zip(pairs, ages)]

    def _loss(self, pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.cfg.loss == "mse":
            return F.mse_loss(pred, target, reduction=reduction)
        return F.smooth_l1_loss(pred, target, beta=self.cfg.smooth_l1_beta, reduction=reduction)

    def _autocast(self):
        if self.use_bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ loop
    def train(self, resume: bool = False, stop_at: int | None = None) -> dict[str, Any]:
        """Train to ``total_steps`` (or ``stop_at``); ``resume`` continues from ``out_dir/latest``."""
        cfg = self.cfg
        if resume:
            self.load_training_state(self.out_dir / "latest")
        elif (self.out_dir / "latest").exists():
            raise FileExistsError(f"{self.out_dir / 'latest'} exists: resume it or use another out_dir")
        elif self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out_dir / TRAIN_CONFIG_NAME)
        end = cfg.total_steps if stop_at is None else min(int(stop_at), cfg.total_steps)
        if self.dist.is_main:
            self._bar = progress_bar(end, f"stage {cfg.stage}", "step", initial=self.step,
                                     enabled=self._progress)
        try:
            return self._train_loop(end)
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _train_loop(self, end: int) -> dict[str, Any]:
        cfg = self.cfg
        self.module.train()
        accum = cfg.grad_accum_steps
        started = time.perf_counter()
        while self.step < end:
            factor = apply_lr(
                self.optimizer, self.step, cfg.warmup_steps, cfg.total_steps, cfg.min_lr_ratio
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss_value = 0.0
            for m in range(accum):
                micro = self.step * accum + m
                batch = self.make_batch(self.items_for(micro))
                with torch.no_grad():
                    target = self.policy.normalize_actions(batch.actions)
                reseed_torch(cfg.seed, self.dist.rank, micro)
                sync = m == accum - 1 or not self.dist.distributed
                with contextlib.nullcontext() if sync else self.model.no_sync():
                    with self._autocast():
                        pred = self.model(batch.vl_input, batch.windows, batch.states,
                                          batch.vl_age)
                    loss = self._loss(pred.float(), target) / accum
                    loss.backward()
                loss_value += float(loss.detach())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, cfg.max_grad_norm))
            self.optimizer.step()
            self.step += 1
            record = {
                "step": self.step,
                "loss": loss_value,
                "grad_norm": grad_norm,
                "lr_factor": factor,
                "epoch": self.plan.epoch_of(self.step * accum - 1),
            }
            self.history.append(record)
            if self._bar is not None:  # this rank's loss: no collective for a display
                self._bar.set_postfix(loss=f"{loss_value:.4g}", best_val=self.best_val, refresh=False)
                self._bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == end:
                mean_loss = self.dist.all_reduce_sum([loss_value])[0] / self.dist.world_size
                self.log(
                    {
                        "event": "train",
                        **record,
                        "loss": mean_loss,
                        "lr": {g["name"]: g["lr"] for g in self.optimizer.param_groups},
                        "elapsed_s": round(time.perf_counter() - started, 3),
                    }
                )
            if (
                self._val_items
                and cfg.eval_every
                and (self.step % cfg.eval_every == 0 or self.step == cfg.total_steps)
            ):
                self._validate_and_keep_best()
            if (cfg.save_every and self.step % cfg.save_every == 0) or self.step == end:
                self.sync_buffers()
                self.save_checkpoint("latest", training_state=True)
        self.sync_buffers()
        final_loss = None
        if self.history:  # the last step's loss, averaged over ranks (as logged)
            final_loss = self.dist.all_reduce_sum([self.history[-1]["loss"]])[0] / self.dist.world_size
        self.dist.barrier()
        return {
            "step": self.step,
            "final_loss": final_loss,
            "best_val_loss": self.best_val,
            "latest": str(self.out_dir / "latest"),
            "best": str(self.out_dir / "best") if self.best_val is not None else None,
        }

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def sync_buffers(self) -> None:
        """Give every rank rank 0's policy buffers (BatchNorm running statistics).

        DDP broadcasts buffers at the start of each forward, so after the last forward every rank
        holds statistics updated with its own batch; validation and the saved model use rank 0's.
        """
        self.dist.broadcast_(list(self.policy.buffers()))

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean loss (normalised space) over the fixed validation items, sharded over ranks."""
        self.sync_buffers()
        items = self._val_items[self.dist.rank :: self.dist.world_size]
        self.module.eval()
        total = count = 0.0
        try:
            chunk = max(1, self.cfg.batch_size * 4)
            for start in range(0, len(items), chunk):
                batch = self.make_batch(items[start : start + chunk])
                with self._autocast():
                    pred = self.module(batch.vl_input, batch.windows, batch.states, batch.vl_age)
                target = self.policy.normalize_actions(batch.actions)
                per_sample = self._loss(pred.float(), target, reduction="none").flatten(1).mean(1)
                total += float(per_sample.sum())
                count += per_sample.numel()
        finally:
            self.module.train()
        total, count = self.dist.all_reduce_sum([total, count])
        return total / max(count, 1.0)

    def _validate_and_keep_best(self) -> None:
        val = self.validation_loss()
        improved = self.best_val is None or val < self.best_val
        if improved:
            self.best_val = val
            self.save_checkpoint("best", training_state=False, extra={"val_loss": val})
        self.log(
            {
                "event": "val",
                "step": self.step,
                "val_loss": val,
                "best_val_loss": self.best_val,
                "improved": improved,
            }
        )
