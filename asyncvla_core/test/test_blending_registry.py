"""The blending strategies are one table of classes; the node's parameter names them."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_core.blending import BLENDINGS, BlendingStrategy
from asyncvla_core.chunk import Chunk
from asyncvla_core.chunk_blending import ChunkBlender, blending_modes


def chunk(stamp_s: float, value: float) -> Chunk:
    return Chunk(int(stamp_s * 1e9), 0.1, np.zeros(6), np.full((8, 7), value, np.float32))


def test_table_names_its_classes():
    assert blending_modes() == tuple(BLENDINGS) == ("latest_only", "weighted_blend",
                                                   "temporal_ensemble", "rtc_soft_mask")
    for name, cls in BLENDINGS.items():
        assert issubclass(cls, BlendingStrategy) and cls.name == name


@pytest.mark.parametrize("mode", list(BLENDINGS))
def test_every_strategy_blends_resets_and_never_crosses_a_reset(mode):
    blender = ChunkBlender(mode, old_weight=0.3, ensemble_decay=0.1)
    first = blender.blend(chunk(0.0, 1.0))
    np.testing.assert_array_equal(first.actions, 1.0)  # nothing to blend with yet
    second = blender.blend(chunk(0.1, 0.0))
    if mode == "latest_only":
        np.testing.assert_array_equal(second.actions, 0.0)
    else:  # the overlap (all but the last step) is pulled towards the first chunk
        assert np.all(second.actions[:-1] > 0.0) and np.all(second.actions[-1] == 0.0)
    blender.reset()
    np.testing.assert_array_equal(blender.blend(chunk(0.2, 0.0)).actions, 0.0)


def test_unknown_strategy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="latest_only"):
        ChunkBlender("average_everything")


def test_rtc_soft_mask_follows_the_papers_weights():
    """Black et al. 2025, Eq. 5 with H = 8, d = 1, s = 1: the first step frozen to the previous
    chunk, weights decaying as c (e^c - 1) / (e - 1), none from step H - s on."""
    import math

    from asyncvla_core.blending.rtc_soft_mask import soft_mask

    w = soft_mask(8)
    c = [(7 - i) / 7 for i in range(1, 7)]
    np.testing.assert_allclose(w, [1.0, *(x * (math.exp(x) - 1) / (math.e - 1) for x in c), 0.0])
    assert np.all(np.diff(w) < 0)
    blender = ChunkBlender("rtc_soft_mask")
    blender.blend(chunk(0.0, 1.0))
    second = blender.blend(chunk(0.1, 0.0)).actions[:, 0]
    # The previous chunk covers the new one's steps 0..6 (its own steps 1..7).
    np.testing.assert_allclose(second, np.r_[w[:7], 0.0], rtol=1e-6)
