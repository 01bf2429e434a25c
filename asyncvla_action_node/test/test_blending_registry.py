"""The blending strategies are one table of classes; the node's parameter names them."""
from __future__ import annotations

import numpy as np
import pytest

from asyncvla_action_node.blending import BLENDINGS, BlendingStrategy
from asyncvla_action_node.chunk import Chunk
from asyncvla_action_node.chunk_blending import ChunkBlender, blending_modes


def chunk(stamp_s: float, value: float) -> Chunk:
    return Chunk(int(stamp_s * 1e9), 0.1, np.zeros(6), np.full((8, 7), value, np.float32))


def test_table_names_its_classes():
    assert blending_modes() == tuple(BLENDINGS) == ("latest_only", "weighted_blend",
                                                   "temporal_ensemble")
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
