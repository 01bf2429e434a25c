"""Joint positions from a JointState's name/position arrays, in a node's own joint order.

Why: a driver may publish joints in any order or with extra joints (a gripper); the nodes that
consume joint states need exactly their six, in the order of their `joint_names` parameter, and
must refuse a message without them rather than guess.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def ordered_joints(names: Sequence[str], positions: Sequence[float],
                   joint_names: Sequence[str]) -> np.ndarray:
    """Positions in `joint_names` order (unnamed messages: the first six, as sent).

    Raises ValueError when a joint is missing or a value is not finite.
    """
    if names and all(n in names for n in joint_names):
        index = {n: i for i, n in enumerate(names)}
        out = np.array([positions[index[n]] for n in joint_names], dtype=np.float64)
    else:
        out = np.asarray(list(positions)[:len(joint_names)], dtype=np.float64)
    if out.size != len(joint_names) or not np.all(np.isfinite(out)):
        raise ValueError(f"{len(joint_names)} finite joint positions needed "
                         f"(got {out.size}: {list(names)[:8]})")
    return out
