"""Encode VL features into the bytes of asyncvla_msgs/VLFeatures and back, without ROS.

Why not float32 always: 64 tokens x 2048 dims is 512 KiB as float32 but 256 KiB as float16, and
DDS latency from Python grows steeply past a few hundred KiB (see README, Measured).
bfloat16 is supported for models that produce it; numpy has no bfloat16, so it is stored as the
upper 16 bits of float32 (round to nearest even).
"""
from __future__ import annotations

import numpy as np

# Must equal asyncvla_msgs/VLFeatures DTYPE_* constants.
DTYPE_FLOAT32 = 0
DTYPE_FLOAT16 = 1
DTYPE_BFLOAT16 = 2
DTYPE_CODES = {"float32": DTYPE_FLOAT32, "float16": DTYPE_FLOAT16, "bfloat16": DTYPE_BFLOAT16}
ITEM_SIZE = {DTYPE_FLOAT32: 4, DTYPE_FLOAT16: 2, DTYPE_BFLOAT16: 2}
MAX_PAYLOAD_BYTES = 1048576


def encode_features(features: np.ndarray, dtype: str = "float16") -> tuple[bytes, int]:
    """(K, D) float array -> (payload bytes, dtype code). Rejects non-finite values and oversize."""
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"VL features must be a non-empty (tokens, dim) array, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("VL features contain NaN or inf")
    if dtype not in DTYPE_CODES:
        raise ValueError(f"unknown payload dtype {dtype!r}; expected one of {sorted(DTYPE_CODES)}")
    code = DTYPE_CODES[dtype]
    if code == DTYPE_FLOAT32:
        data = array.astype("<f4").tobytes()
    elif code == DTYPE_FLOAT16:
        half = array.astype("<f2")
        if not np.all(np.isfinite(half)):
            raise ValueError("VL features overflow float16; use float32 or bfloat16 payloads")
        data = half.tobytes()
    else:
        bits = array.astype("<f4").view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        data = rounded.astype("<u2").tobytes()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"VL payload of {len(data)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte "
                         f"budget; reduce features.num_tokens or use a 2-byte dtype")
    return data, code


def decode_features(data: bytes, num_tokens: int, feature_dim: int, dtype_code: int) -> np.ndarray:
    """Payload bytes -> (num_tokens, feature_dim) float32; ValueError on any inconsistency."""
    if dtype_code not in ITEM_SIZE:
        raise ValueError(f"unknown VL payload dtype code {dtype_code}")
    expected = num_tokens * feature_dim * ITEM_SIZE[dtype_code]
    if num_tokens <= 0 or feature_dim <= 0 or len(data) != expected:
        raise ValueError(f"VL payload has {len(data)} bytes; {num_tokens} x {feature_dim} of dtype "
                         f"code {dtype_code} needs {expected}")
    raw = bytes(data)
    if dtype_code == DTYPE_FLOAT32:
        array = np.frombuffer(raw, dtype="<f4")
    elif dtype_code == DTYPE_FLOAT16:
        array = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    else:
        array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    array = array.reshape(num_tokens, feature_dim).astype(np.float32, copy=True)
    if not np.all(np.isfinite(array)):
        raise ValueError("VL payload contains NaN or inf")
    return array
