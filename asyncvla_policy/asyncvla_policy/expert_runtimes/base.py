"""The common interface of the action expert's runtimes (how ``ActionPolicy.infer`` is executed).

Why runtimes at all: at batch 1 the expert reads each weight once per tick, so on a CPU its time is
set by the bytes it streams (118.7 M parameters: 475 MB in float32). A runtime changes how the
weights are stored and multiplied (bfloat16, int8 weight-only, a compiled graph) without changing
the checkpoint (safetensors + JSON stays the only format): conversion happens at load.

Every runtime validates its input with ``ActionPolicy.validated_inputs`` (the very checks of
``ActionPolicy.predict``), so a bad input raises the same ValueError whatever runs it.

Every runtime executes the policy's :class:`~..inference_plan.InferencePlan`: the VL context is
computed (in torch) once per distinct VL tokens, and the runtime runs the per-tick part
(``run``). That removes a third of the arithmetic of a tick without changing the function.
"""
from __future__ import annotations

import hashlib
import importlib.util
import weakref
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from ..inference_plan import InferencePlan, VLContextCache
from ..policy import ActionPolicy


def graph_source_digest() -> bytes:
    """A hash of the code that defines the converted graph (the models package's sources, this
    package's sources) and of torch's version: part of the conversion cache key, so a cached
    model from other code is never loaded for this code's graph."""
    digest = hashlib.sha256(torch.__version__.encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.digest()


_TENSOR_DIGESTS: "weakref.WeakKeyDictionary[ActionPolicy, tuple[tuple, bytes]]" = \
    weakref.WeakKeyDictionary()


def policy_digest(policy: ActionPolicy) -> str:
    """A hash of the graph's code, the policy's config and every tensor (24 hex digits): the key
    of converted models and of ``expert_runtime: auto``'s choice.

    Hashing the full-size expert's 475 MB of tensors takes about a second, so that part is kept
    per policy object while none of its tensors changed (their storage and in-place version
    counters); the code and the config are hashed at every call."""
    digest = hashlib.sha256(graph_source_digest() + policy.cfg.to_json().encode())
    digest.update(_tensor_digest(policy))
    return digest.hexdigest()[:24]


def _tensor_digest(policy: ActionPolicy) -> bytes:
    state = policy.state_dict()
    versions = tuple((key, t.data_ptr(), t._version) for key, t in state.items())
    known = _TENSOR_DIGESTS.get(policy)
    if known is not None and known[0] == versions:
        return known[1]
    digest = hashlib.sha256()
    for key, tensor in sorted(state.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    _TENSOR_DIGESTS[policy] = (versions, digest.digest())
    return digest.digest()


class BackendUnavailable(RuntimeError):
    """A runtime's Python package is not installed; the message names the pip package."""


class ExpertRuntime(ABC):
    """Build from a loaded :class:`ActionPolicy`; ``predict`` like ``ActionPolicy.predict``.

    Class attributes describe the runtime for the node's parameter description and the tests:
    ``tolerance`` is the documented bound on ``|predict - float32|`` in normalised action units.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    tolerance: ClassVar[float]
    #: (importable module, pip requirement) pairs the runtime needs beyond torch.
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: How ``expert_runtime: auto`` chose this runtime (its ``AutoChoice``; None when named).
    auto_choice: object | None = None

    def __init__(self, policy: ActionPolicy, threads: int = 0,
                 cache_dir: str | Path | None = None) -> None:
        """``threads`` > 0 sets the runtime's intra-op threads (0: the library's default);
        ``cache_dir`` (optional) keeps converted models keyed by the weights' hash."""
        self.check_available()
        if threads < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self.policy = policy.eval()
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir else None
        #: What the runtime converts; torch runtimes may replace it with a converted copy.
        self.plan = InferencePlan(self.policy)
        self.vl_cache = VLContextCache()
        self.prepare()

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailable` naming the pip package of any missing module."""
        missing = [pkg for module, pkg in cls.requires if not _importable(module)]
        if missing:
            raise BackendUnavailable(
                f"expert_runtime {cls.name!r} needs {' and '.join(missing)}: "
                f"pip install {' '.join(missing)} (pinned in tools/requirements-ml.txt)")

    @abstractmethod
    def prepare(self) -> None:
        """Convert the policy (called once from ``__init__``)."""

    @abstractmethod
    def run(self, *inputs: torch.Tensor) -> np.ndarray:
        """The tick's inputs -> physical (1,H,A): the VL context and validated (1,T,C), (1,S)
        float32 tensors, and the (1,) VL age in seconds when the plan ``takes_age``."""

    @torch.no_grad()
    def vl_context(self, vl: torch.Tensor) -> torch.Tensor:
        """The plan's VL context of validated (1,K,D) tokens (run once per distinct tokens)."""
        return self.plan.vl_context(vl)

    def predict(self, vl_tokens: object, sensor_window: object, robot_state: object,
                vl_age: object = None) -> np.ndarray:
        """(K,D), (T,C), (S,) physical [, VL age in s] -> float32 (H,A) physical, as
        ``ActionPolicy.predict`` (which checks the age the same way)."""
        vl, window, state = self.policy.validated_inputs(vl_tokens, sensor_window, robot_state)
        age = self.policy.validated_age(vl_age)
        inputs = (self.vl_cache.get(vl, self.vl_context), window, state)
        out = self.run(*inputs, *(() if age is None else (age,)))
        return np.asarray(out[0], dtype=np.float32)

    @property
    def takes_age(self) -> bool:
        """Whether the expert reads the VL features' age (``PolicyConfig.vl_age_input``)."""
        return self.plan.takes_age

    def weight_bytes(self) -> int | None:
        """Bytes of weights the runtime streams per tick (None if it cannot tell)."""
        return None

    # ------------------------------------------------------------------ helpers for subclasses
    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Batch-1 inputs of ``run`` (the VL context of zero tokens, zero window and state, and
        an age of 0.3 s when the plan takes one), for tracing and export."""
        cfg = self.policy.cfg
        inputs = (self.vl_context(torch.zeros(1, cfg.vl_num_tokens, cfg.vl_dim)),
                  torch.zeros(1, cfg.sensor.window, cfg.sensor.in_channels),
                  torch.zeros(1, cfg.robot_state_dim))
        return inputs + ((torch.full((1,), 0.3),) if self.plan.takes_age else ())

    def cache_path(self, suffix: str, runtime: str | None = None) -> Path | None:
        """``cache_dir/<runtime>-<hash of the graph's code, config and every tensor>.<suffix>``
        (None: no cache).

        ``runtime`` (default: this one) lets a runtime reuse another's conversion, e.g. the
        int8 ONNX model starts from the float32 export."""
        if self.cache_dir is None:
            return None
        if getattr(self, "_digest", None) is None:
            self._digest = policy_digest(self.policy)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir / f"{runtime or self.name}-{self._digest}.{suffix}"


def _importable(module: str) -> bool:
    """Whether ``import module`` can find it (without importing it: backends load lazily)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def tensor_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters as stored."""
    return sum(p.numel() * p.element_size() for p in module.parameters())


def tick_bytes(plan: InferencePlan, bytes_of: Callable[[torch.nn.Module], int] = tensor_bytes
               ) -> int:
    """Bytes of the weights a tick reads: the plan's tick networks (not its VL part)."""
    return sum(bytes_of(module) for module in plan.tick_networks())
