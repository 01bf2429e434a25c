"""Generated in-memory episodes with a learnable input -> action relation (``--synthetic N``).

Why: the trainers must be testable (and a pipeline smoke-runnable) without recordings. The
episodes follow the :class:`~asyncvla_training.data.episode.Episode` contract exactly - units,
shapes, frame stamps, lazy frames - and the target chunk is a fixed function of what the policy
sees at run time:

* the force channel of the sensor window (mean over the window),
* the robot state (joint 1, position z),
* a per-episode cue shown in the camera images (brightness), which only the VL features carry.

So a trained policy can drive the loss well below the variance of the targets, and a policy that
ignored its inputs could not.
"""

from __future__ import annotations

import numpy as np

from asyncvla_core.conventions import DEFAULT_PROMPT, ACTION_DIM, DEFAULT_HORIZON, DEFAULT_SENSOR_WINDOW, SENSOR_CHANNELS
from .episode import Episode



def _velocity(force: np.ndarray, cue: float, q1: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(N, 6) per-step offsets: metres per step for xyz, radians per step for the rotation."""
    v = np.zeros((force.shape[0], 6), dtype=np.float64)
    v[:, 0] = 2e-3 * force + 1e-3 * cue
    v[:, 1] = 1e-3 * np.tanh(q1)
    v[:, 2] = -1e-3 * (z - 0.3) * 10.0 + 5e-4 * force
    v[:, 3] = 1e-3 * cue
    v[:, 4] = 5e-4 * force
    v[:, 5] = 0.0
    return v


def make_synthetic_episode(
    name: str,
    length: int = 40,
    seed: int = 0,
    views: tuple[str, ...] = ("top",),
    image_size: tuple[int, int] = (56, 56),
    window: int = DEFAULT_SENSOR_WINDOW,
    channels: int = SENSOR_CHANNELS,
    horizon: int = DEFAULT_HORIZON,
    step_period: float = 0.1,
    action_space: str = "ee_delta",
    prompt: str = DEFAULT_PROMPT,
) -> Episode:
    """One episode of ``length`` action ticks; ``image_size`` is (width, height)."""
    rng = np.random.default_rng(seed)
    n = int(length)
    cue = float(rng.uniform(-1.0, 1.0))
    t0 = 1_700_000_000_000_000_000 + int(rng.integers(0, 10**9))
    period_ns = int(round(step_period * 1e9))
    times = t0 + np.arange(n, dtype=np.int64) * period_ns
    phase = rng.uniform(0, 2 * np.pi)
    force = np.sin(0.35 * np.arange(n) + phase) + 0.2 * rng.standard_normal(n)
    joints = np.stack([0.5 * np.sin(0.1 * np.arange(n) + phase + j) for j in range(6)], axis=1)
    position = np.stack(
        [
            0.4 + 0.02 * np.sin(0.05 * np.arange(n) + phase),
            0.02 * np.cos(0.07 * np.arange(n)),
            0.3 + 0.01 * np.sin(0.09 * np.arange(n) + 2 * phase),
        ],
        axis=1,
    )
    quat = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    quat[:, 0] = 0.05 * np.sin(0.03 * np.arange(n))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    states = np.concatenate([joints, position, quat], axis=1).astype(np.float32)

    velocity = _velocity(force, cue, joints[:, 0], position[:, 2])
    steps = np.arange(1, horizon + 1, dtype=np.float64)[None, :, None]
    actions = np.empty((n, horizon, ACTION_DIM), dtype=np.float32)
    actions[:, :, :6] = steps * velocity[:, None, :]
    actions[:, :, 6] = 1.0
    if action_space == "joint_delta":
        actions[:, :, :6] *= 10.0  # radians: larger than metres, same structure

    windows = np.empty((n, window, channels), dtype=np.float32)
    ramp = np.linspace(-0.05, 0.0, window, dtype=np.float32)
    windows[:, :, 0] = force[:, None].astype(np.float32) + ramp[None, :]
    aline = rng.standard_normal((n, window, channels - 1)).astype(np.float32) * 0.1
    aline += np.exp(-0.5 * ((np.arange(channels - 1) - 300.0) / 20.0) ** 2).astype(np.float32)
    windows[:, :, 1:] = aline

    # Frames: each view's newest frame is 30 ms older than the tick (one distinct frame per tick).
    frame_stamps = np.stack([times - 30_000_000 - 1_000_000 * v for v in range(len(views))], axis=1)
    width, height = image_size
    base = int(np.clip(128 + 100 * cue, 0, 255))

    def load_frames(i: int) -> list[np.ndarray]:  # frame set i = sample i (one set per tick)
        if not 0 <= i < n:
            raise IndexError(f"frame index {i} out of range 0..{n - 1}")
        frames = []
        for v in range(len(views)):
            img = np.full((height, width, 3), base, dtype=np.uint8)
            col = (3 * i + 7 * v) % width
            img[:, col : col + 3, v % 3] = 255  # a moving bar: frames differ per tick
            frames.append(img)
        return frames

    return Episode(
        name=name,
        step_period=float(step_period),
        times_ns=times,
        views=tuple(views),
        frame_stamps_ns=frame_stamps.astype(np.int64),
        sensor_windows=windows,
        states=states,
        actions=actions,
        action_space=action_space,
        prompt=prompt,
        load_frames=load_frames,
    )


def make_synthetic_episodes(count: int, length: int = 40, seed: int = 0, **kwargs) -> list[Episode]:
    """``count`` episodes named ``synthetic_000``...; different cue, phase and noise each."""
    return [
        make_synthetic_episode(f"synthetic_{e:03d}", length=length, seed=seed * 1000 + e, **kwargs)
        for e in range(count)
    ]
