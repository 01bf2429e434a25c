"""Stage 2 trains on features rounded like the VLFeatures payload, with gradients passing through."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_core.vl_payload import decode_features, encode_features  # noqa: E402
from asyncvla_training.train.config import TrainConfig  # noqa: E402
from asyncvla_training.train.trainer import as_payload_precision  # noqa: E402


def test_rounding_equals_the_wire_and_gradients_pass_through() -> None:
    torch.manual_seed(0)
    features = (torch.randn(2, 4, 8) * 3).requires_grad_(True)
    rounded = as_payload_precision(features, torch.float16)
    data, code = encode_features(features[0].detach().numpy(), "float16")
    on_the_wire = decode_features(data, 4, 8, code)
    np.testing.assert_array_equal(rounded[0].detach().numpy(), on_the_wire)
    assert not torch.equal(rounded, features)  # it did round
    (rounded * torch.arange(8.0)).sum().backward()
    np.testing.assert_array_equal(features.grad.numpy(), np.broadcast_to(np.arange(8.0),
                                                                         (2, 4, 8)))
    assert as_payload_precision(features, torch.float32) is features


def test_payload_dtype_is_validated() -> None:
    assert TrainConfig().vl_payload_dtype == "float16"
    with pytest.raises(ValueError, match="vl_payload_dtype"):
        TrainConfig(vl_payload_dtype="int8")
