"""A synthetic insertion task whose correct motion needs the camera and the prompt (learning benchmark).

Why: a policy that scores well on recordings whose motion is a fixed function of time has not
shown that it reads its VL features. This task family is built so that it cannot do well without
them, and so that the VL features go stale in a way a reuse-trained expert can learn to expect.
The recordings are written by the project's bag writer (``synthetic_bag.write_synthetic_bag``),
with the prompt in the bag's custom data (``asyncvla.prompt``), exactly as a lab records one.

The scene (one episode, ``InsertionEpisode``):

* Two identical markers lie on the tissue, one to the left (+y, REP-103 base frame) and one to
  the right (-y) of the needle's start, each 3-8 mm away laterally and up to +-3 mm along x.
* The prompt names the side: "Insert the needle into the left marker" or "... right marker".
* A camera on the tool looks down along the needle (eye-in-hand): the picture is centred on the
  needle tip and shows both markers at their offsets from the tip, 4 px per mm.
* The recorded expert servoes the tip towards the named marker, first order with gain
  ``SERVO_GAIN`` (1/s): the remaining offset is ``e(t) = e0 exp(-g t)`` in x and y. Meanwhile it
  descends at 1 mm/s until the tip touches the tissue, then at 0.3 mm/s until it is 0.8 mm deep.
* The force/OCT probe responds to contact: force 0.5 N/mm of depth; the A-line shows the tissue
  surface as a peak whose index grows with the tip-surface distance (at the top of the line once
  in contact) and a deeper layer peak 120 samples below it.

What each input can tell the policy:

* lateral direction (y sign): only the prompt (left/right);
* lateral and forward amounts (|e_y|, e_x): only the camera (the marker offsets in the picture);
* vertical motion: only the force/OCT window (contact, depth, distance to the surface);
* robot state: the absolute tip position, from which the answer cannot be read: the named
  marker's absolute position is uniform over +-20 mm around a nominal point, so the start
  position (marker minus e0) does not reveal the side except near the edges of that range.

Why VL staleness is learnable: the camera shows the *remaining* offset e(t), which shrinks by
the factor exp(-g dt) every action period. Features that are k periods old show e(t - k dt) =
e(t) exp(g k dt), an overestimate by a known factor (35 % at 300 ms for g = 1/s). A policy trained
on fresh features (reuse 1) passes it on in full; a policy trained with features 0..reuse-1
periods old sees that mix of ages and learns the mean correction, so at run-time ages its error
is smaller, while at age 0 it pays a little for that mean correction. Nothing else in the scene
changes with the VL age: the vertical motion comes from the fresh sensor window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .synthetic_bag import SyntheticBagSpec, SyntheticContent, SyntheticMotion, write_synthetic_bag

PROMPTS = {
    +1: "Insert the needle into the left marker",
    -1: "Insert the needle into the right marker",
}
SERVO_GAIN = 1.0  # 1/s: the expert's lateral/forward servo (remaining offset decays as exp(-g t))
FREE_SPEED = 1.0e-3  # m/s descent before contact
TISSUE_SPEED = 0.3e-3  # m/s descent in tissue
INSERTION_DEPTH = 0.8e-3  # m below the surface, then the expert holds
FORCE_PER_DEPTH = 500.0  # N/m (0.5 N/mm)
PIXELS_PER_METRE = 4000.0  # 4 px per mm in the tool camera
MARKER_RADIUS_PX = 7
NOMINAL_POSITION = (0.40, -0.05, 0.30)  # m, base frame
TARGET_SPREAD = 0.020  # m: the named marker's absolute x/y is uniform in +-this around nominal
TOOL_DOWN_XYZW = (1.0, 0.0, 0.0, 0.0)  # tool pointing straight down (the insertion pose)
_SURFACE_INDEX0 = 100  # A-line index of the surface at contact
_SURFACE_INDEX_PER_M = 100_000.0  # 100 samples per mm of tip-surface distance
_LAYER_BELOW = 120  # samples between the surface and the deeper layer
# A fixed "inverse kinematics" for the joint states: joints are a linear function of the absolute
# tip position, so they carry no information the pose does not.
_JOINT_GAIN = np.array([[2.0, 0.5, -0.3], [-0.4, 1.5, 0.8], [0.3, -0.7, 2.2],
                        [1.1, 0.2, 0.4], [-0.6, 0.9, -1.2], [0.5, -1.0, 0.7]])
_JOINT_NOMINAL = np.array([0.1, -0.3, 0.5, 0.0, 0.6, -0.2])


@dataclass(frozen=True)
class InsertionEpisode:
    """One episode's scene, drawn by :func:`draw_episode`; lengths in metres, base frame."""

    side: int  # +1 = the prompt names the left marker, -1 = the right one
    start: tuple[float, float, float]  # tip position at t = 0
    left_offset: tuple[float, float]  # (x, y) of the left marker minus the start tip position
    right_offset: tuple[float, float]
    surface_distance: float  # tissue surface below the tip at t = 0

    @property
    def prompt(self) -> str:
        return PROMPTS[self.side]

    @property
    def target_offset(self) -> tuple[float, float]:
        """(x, y) of the named marker minus the start tip position (e0)."""
        return self.left_offset if self.side > 0 else self.right_offset


def draw_episode(rng: np.random.Generator) -> InsertionEpisode:
    """A random scene: side, marker offsets, absolute placement, surface distance."""
    side = int(rng.choice([-1, 1]))
    left = (float(rng.uniform(-3e-3, 3e-3)), float(rng.uniform(3e-3, 8e-3)))
    right = (float(rng.uniform(-3e-3, 3e-3)), -float(rng.uniform(3e-3, 8e-3)))
    target = left if side > 0 else right
    # The named marker's absolute position is drawn, the start follows from it: the start
    # position alone says little about which side the target is on.
    absolute = [NOMINAL_POSITION[a] + float(rng.uniform(-TARGET_SPREAD, TARGET_SPREAD)) for a in (0, 1)]
    start = (absolute[0] - target[0], absolute[1] - target[1],
             NOMINAL_POSITION[2] + float(rng.uniform(-5e-3, 5e-3)))
    return InsertionEpisode(side=side, start=start, left_offset=left, right_offset=right,
                            surface_distance=float(rng.uniform(0.5e-3, 2.0e-3)))


def descent(t: np.ndarray, surface_distance: float) -> np.ndarray:
    """Metres the tip has descended by time ``t``: free, then in tissue, then holding."""
    t = np.asarray(t, dtype=np.float64)
    contact = surface_distance / FREE_SPEED
    inside = np.clip((t - contact) * TISSUE_SPEED, 0.0, INSERTION_DEPTH)
    return np.where(t < contact, t * FREE_SPEED, surface_distance + inside)


class InsertionMotion(SyntheticMotion):
    """The expert's tip motion: first-order servo to the named marker in x/y, descent in z."""

    def __init__(self, episode: InsertionEpisode) -> None:
        super().__init__(base_quaternion=TOOL_DOWN_XYZW)
        object.__setattr__(self, "episode", episode)

    def position(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        ep = self.episode
        done = 1.0 - np.exp(-SERVO_GAIN * t)
        x = ep.start[0] + ep.target_offset[0] * done
        y = ep.start[1] + ep.target_offset[1] * done
        z = ep.start[2] - descent(t, ep.surface_distance)
        return np.stack([x, y, z], axis=-1)

    def joints(self, t: np.ndarray) -> np.ndarray:
        delta = self.position(t) - np.asarray(NOMINAL_POSITION)
        return _JOINT_NOMINAL + delta @ _JOINT_GAIN.T * 10.0

    def theta(self, t: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(t, dtype=np.float64))  # the tool keeps pointing down


def _pseudo_noise(*indices: np.ndarray) -> np.ndarray:
    """Deterministic noise in [-1, 1) from integer indices (broadcast), without an RNG state."""
    x = np.zeros(np.broadcast_shapes(*(np.shape(i) for i in indices)), dtype=np.float64)
    for n, i in enumerate(indices):
        x = x + np.asarray(i, dtype=np.float64) * (12.9898 + 78.233 * n)
    return 2.0 * (np.modf(np.abs(np.sin(x) * 43758.5453))[0]) - 1.0


class InsertionContent(SyntheticContent):
    """Contact-dependent force/OCT and the tool camera's picture of the markers."""

    def __init__(self, episode: InsertionEpisode, motion: InsertionMotion) -> None:
        self.episode = episode
        self.motion = motion

    def _tip_below_surface(self, t: np.ndarray) -> np.ndarray:
        """Metres the tip is below the tissue surface (negative: above it)."""
        return descent(t, self.episode.surface_distance) - self.episode.surface_distance

    def sensor_rows(self, k: np.ndarray, t: np.ndarray, aline_length: int) -> np.ndarray:
        k = np.asarray(k, dtype=np.int64)
        depth = self._tip_below_surface(t)
        rows = np.empty((k.size, 1 + aline_length), dtype=np.float32)
        rows[:, 0] = FORCE_PER_DEPTH * np.maximum(depth, 0.0) + 0.01 * _pseudo_noise(k)
        surface = _SURFACE_INDEX0 + _SURFACE_INDEX_PER_M * np.maximum(-depth, 0.0)
        j = np.arange(aline_length, dtype=np.float64)[None, :]
        peak = np.exp(-0.5 * ((j - surface[:, None]) / 8.0) ** 2)
        layer = 0.5 * np.exp(-0.5 * ((j - surface[:, None] - _LAYER_BELOW) / 8.0) ** 2)
        rows[:, 1:] = peak + layer + 0.05 * _pseudo_noise(k[:, None], j)
        return rows

    def jpeg(self, view_index: int, frame: int, t: float, width: int, height: int) -> bytes:
        import cv2

        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:] = (150, 110, 100)  # tissue
        tip = self.motion.position(np.array([t]))[0]
        start = self.episode.start
        centre = (width / 2.0, height / 2.0)
        for offset in (self.episode.left_offset, self.episode.right_offset):
            # marker minus tip; image right = -y (the robot's right), image down = -x
            dx = start[0] + offset[0] - tip[0]
            dy = start[1] + offset[1] - tip[1]
            u = centre[0] - dy * PIXELS_PER_METRE
            v = centre[1] - dx * PIXELS_PER_METRE
            cv2.circle(image, (int(round(u)), int(round(v))), MARKER_RADIUS_PX, (30, 200, 60), -1)
        c = (int(centre[0]), int(centre[1]))
        cv2.drawMarker(image, c, (255, 255, 255), cv2.MARKER_CROSS, 9, 1)  # the needle tip
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError("cv2 could not encode a JPEG")
        return buf.tobytes()


def episode_spec(episode: InsertionEpisode, duration: float, views: tuple[str, ...],
                 image_size: tuple[int, int], start_ns: int) -> SyntheticBagSpec:
    """The writer's spec of one episode (prompt in custom data, as the recorder stores it)."""
    motion = InsertionMotion(episode)
    return SyntheticBagSpec(duration=duration, views=views, image_size=image_size,
                            prompt=episode.prompt, start_ns=start_ns, motion=motion,
                            content=InsertionContent(episode, motion))


def write_insertion_bags(directory: str | Path, count: int, seed: int, duration: float = 4.0,
                         views: tuple[str, ...] = ("tool",), image_size: tuple[int, int] = (112, 112),
                         prefix: str = "insertion") -> list[tuple[Path, InsertionEpisode]]:
    """Write ``count`` recordings ``<prefix>_000``... (mcap) under ``directory``; returns them with
    their scenes. Sides alternate so every set is balanced; everything else is drawn from ``seed``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for n in range(count):
        episode = draw_episode(rng)
        if episode.side != (1 if n % 2 == 0 else -1):
            episode = mirrored(episode)
        start_ns = 1_700_000_000_000_000_000 + int(rng.integers(0, 10**9)) + n * 10**11
        path = directory / f"{prefix}_{n:03d}"
        write_synthetic_bag(path, "mcap", episode_spec(episode, duration, tuple(views),
                                                       tuple(image_size), start_ns))
        written.append((path, episode))
    return written


def mirrored(episode: InsertionEpisode) -> InsertionEpisode:
    """The same scene with the prompt naming the other marker (start re-derived from the
    named marker's absolute position, so the absolute-position statistics do not change)."""
    side = -episode.side
    old, new = episode.target_offset, (episode.left_offset if side > 0 else episode.right_offset)
    absolute = (episode.start[0] + old[0], episode.start[1] + old[1])
    start = (absolute[0] - new[0], absolute[1] - new[1], episode.start[2])
    return InsertionEpisode(side=side, start=start, left_offset=episode.left_offset,
                            right_offset=episode.right_offset,
                            surface_distance=episode.surface_distance)


def lateral_staleness_factor(age_s: float) -> float:
    """How much k-periods-old pictures overstate the remaining offset: exp(g * age)."""
    return math.exp(SERVO_GAIN * age_s)
