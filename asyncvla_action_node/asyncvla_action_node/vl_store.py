"""Holds the newest VL features and answers: may the action expert use them now?

The action node must keep acting while the VLM is busy, know exactly how stale its features are,
and refuse features that are too old, from another model, of the wrong shape, not finite, or
stamped in the future (input_checks: such features must never become the reference that later,
correct ones are compared with).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from asyncvla_core import freshness
from asyncvla_core.input_checks import NS_PER_S, future_stamp_reason
from asyncvla_core.vl_contract import CheckpointVL, VLSeen


@dataclass(frozen=True)
class VLSnapshot:
    features: np.ndarray  # (num_tokens, feature_dim) float32
    sequence: int
    stamp_ns: int  # camera stamp of the newest frame the features were computed from
    model_id: str
    reuse_count: int  # chunks already computed from these features before this one
    age: float  # seconds from stamp to the time asked about


class VLFeatureStore:
    """Thread-safe newest-features holder with validation and reuse counting."""

    def __init__(self, num_tokens: int, feature_dim: int, expected_model_id: str = "",
                 max_future: float = freshness.MAX_FUTURE_STAMP_S,
                 contract: CheckpointVL | None = None) -> None:
        """`contract`: the checkpoint's VL settings; with it, features whose model id or
        adapter differs are refused with the settings that differ named."""
        self.num_tokens = num_tokens
        self.max_future = max_future
        self.feature_dim = feature_dim
        self.expected_model_id = expected_model_id
        self.contract = contract
        self._lock = threading.Lock()
        self._features: np.ndarray | None = None
        self._sequence = 0
        self._stamp_ns = 0
        self._model_id = ""
        self._uses = 0
        self.received = 0
        self.rejected: dict[str, int] = {}
        self.last_reject_reason = ""

    def _reject(self, reason: str, key: str) -> str:
        self.rejected[key] = self.rejected.get(key, 0) + 1
        self.last_reject_reason = reason
        return reason

    def update(self, features: np.ndarray, sequence: int, stamp_ns: int, model_id: str,
               now_ns: int, seen: VLSeen | None = None) -> str:
        """Store new features; returns "" when accepted, else why they were rejected.

        Features held from before a clock step back (now further in the future than
        `max_future`) are dropped rather than compared with, so the store recovers by itself.
        """
        with self._lock:
            self.received += 1
            if self.contract is not None and seen is not None:
                mismatch = self.contract.features_mismatch(seen)
                if mismatch:
                    return self._reject(mismatch, "model_id")
            if self.expected_model_id and model_id != self.expected_model_id:
                return self._reject(f"VL features from model {model_id!r}, expected "
                                    f"{self.expected_model_id!r}", "model_id")
            if features.shape != (self.num_tokens, self.feature_dim):
                return self._reject(f"VL features of shape {tuple(features.shape)}, expected "
                                    f"({self.num_tokens}, {self.feature_dim})", "shape")
            if not np.all(np.isfinite(features)):
                return self._reject("VL features contain NaN or inf", "non_finite")
            future = future_stamp_reason(stamp_ns, now_ns, self.max_future)
            if future:
                return self._reject(f"VL features {future}", "future")
            if self._features is not None \
                    and self._stamp_ns - now_ns > self.max_future * NS_PER_S:
                self._features = None
            if self._features is not None and stamp_ns < self._stamp_ns:
                return self._reject("VL features older than the ones held", "older")
            self._features = features
            self._sequence = sequence
            self._stamp_ns = stamp_ns
            self._model_id = model_id
            self._uses = 0
            return ""

    def snapshot(self, now_ns: int) -> VLSnapshot | None:
        with self._lock:
            if self._features is None:
                return None
            return VLSnapshot(self._features, self._sequence, self._stamp_ns, self._model_id,
                              self._uses, (now_ns - self._stamp_ns) / 1e9)

    def mark_used(self, sequence: int) -> None:
        """Count one published chunk against the features of `sequence` (if still held)."""
        with self._lock:
            if self._features is not None and self._sequence == sequence:
                self._uses += 1
