"""A moving-target task on which staleness costs something and only the VL age can repair it.

Why: the claim of the asynchronous design is that an expert acting on VL features hundreds of
milliseconds old still acts well. That can only be shown on a task where an old picture is wrong
in a way that (a) matters to the action, (b) no other input repairs, and (c) knowing the age
does repair. And a task must not leak elapsed time, or a policy can replay a recording instead of
reading its inputs (the earlier insertion task drew its sensor noise from the sample index, the
same in every recording: a perfect clock).

The scene (one episode, :class:`TrackingScene`), REP-103 base frame, lengths in metres:

* A target in the tissue (a vessel, say) drifts along y at its own constant velocity ``v``,
  3-10 mm/s either way in the dynamic variant, 0 in the static one; it does not depend on the
  robot. Its start is drawn so that it stays in view.
* A world-fixed camera (10 frames/s) looks down on the tissue (80 x 80 mm in a 140 x 140
  picture, 1.75 px/mm) and shows the target as a blob (8 mm radius) whose colour codes its
  velocity, as colour Doppler imaging does (red moving to +y, blue to -y, grey at rest). The
  needle is out of the picture. Where the target is at the first action time is uniform over
  +-12 mm in x and y whatever its velocity (so the tip's position, which follows it, says
  nothing about the velocity); the field of view holds its whole drift.
* The recorded expert servoes the needle tip towards the target's *current* position with a
  first-order law, gain ``SERVO_GAIN``: ``tip' = g (target - tip)`` in x and y, starting from a
  random offset of 3-10 mm in each axis, so the remaining offset is
  ``e(t) = v/g + (e0 - v/g) exp(-g t)``. The approach starts 0-0.3 s (random) before the first
  action time and the cameras record ``LEAD_IN`` before it (the force/OCT stream starts later),
  so every sample has frames up to 700 ms old and the approach is under way in every sample: its
  remaining offset is not a function of the velocity alone, and only the picture tells it.
* Vertically the tissue surface breathes (amplitude 0.2-0.6 mm, period 2.5-4 s, random phase)
  and the expert holds the tip 1 mm above it, servoing on the OCT distance (gain 5/s). The OCT
  A-line (``ALINE_LENGTH`` samples, shorter than the lab's 1025 to keep the recordings small:
  the path through bag, reader and policy is the same) shows the surface as a peak whose index
  grows with the tip-surface distance, and a deeper layer below it. The tip never touches the
  tissue, so the force channel is noise.
* Every episode draws its own sensor noise (``noise_seed``): no two recordings share a sample.

What each input can tell the policy:

* where the target is (x, y): only the picture; how fast it moves: only its colour;
* how far it moved since the picture was taken: only the age of the picture, times the velocity
  the picture showed: ``target(now) = target(picture) + v * age``;
  (a blob of 14 px radius: a linear read-out of the tiny random VLM's features places it within
  about 0.5 px; one of 7 px within 2.3 px, which hid the staleness in a first version);
* the vertical motion: only the force/OCT window;
* the tip's own position: the robot state, which says nothing about the target's velocity nor
  about elapsed time: the breathing has a random phase, the drift a random sign and the
  approach a random start.

Why staleness costs and is repairable: at age ``a`` the picture shows the target ``v a`` behind
where it is; the recorded chunk moves the tip by ``e (1 - exp(-g tau))`` plus the drift's share,
so an expert trained on fresh pictures under-corrects by ``v a (1 - exp(-g tau))`` at horizon
``tau``: on the lateral axis that is about 0.13 of the chunk's variance at 300 ms, 0.5 at
600 ms for a perfect reader (``oracle_lateral_nmse``). Trained on ages drawn from a range, an
expert without the age can only apply the mean correction; told the age, it can apply the exact
one. In the static variant a stale picture is still right: the negative control.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asyncvla_testing.synthetic_bag import SyntheticBagSpec, SyntheticContent, SyntheticMotion, write_synthetic_bag

PROMPT = "Insert the needle into the target"
SERVO_GAIN = 2.0  # 1/s: lateral/forward servo on the target's current position
Z_GAIN = 5.0  # 1/s: vertical servo on the OCT distance
STANDOFF = 1.0e-3  # m above the breathing surface
SPEED_RANGE = (3.0e-3, 10.0e-3)  # m/s, either sign, dynamic variant
OFFSET_RANGE = (3.0e-3, 10.0e-3)  # m, either sign, in x and in y, at the start of the approach
PHASE_MAX = 0.3  # s: the approach starts up to this long before the first action time
LEAD_IN = 0.7  # s: cameras (and the robot, holding) record this long before the force/OCT stream
FIRST_SAMPLE_DELAY = 0.1  # s: the first action time follows the force/OCT start by one window
BREATH_AMPLITUDE = (0.2e-3, 0.6e-3)  # m
BREATH_PERIOD = (2.5, 4.0)  # s
NOMINAL_POSITION = (0.40, -0.05, 0.30)  # m, base frame: the camera's centre
FIELD_OF_VIEW = 0.080  # m, square, centred on the nominal position
TARGET_SPREAD = 0.012  # m: at the first action time the target is uniform in +-this (x and y)
TARGET_SIGMA = 8.0e-3  # m: the blob's Gaussian radius
CAMERA_FPS = 10.0
ALINE_LENGTH = 128
TOOL_DOWN_XYZW = (1.0, 0.0, 0.0, 0.0)
_SURFACE_INDEX0 = 16  # A-line index of the surface at zero distance
_SURFACE_INDEX_PER_M = 40_000.0  # 40 samples per mm of tip-surface distance
_LAYER_BELOW = 24
_PEAK_WIDTH = 3.0
_JOINT_GAIN = np.array([[2.0, 0.5, -0.3], [-0.4, 1.5, 0.8], [0.3, -0.7, 2.2],
                        [1.1, 0.2, 0.4], [-0.6, 0.9, -1.2], [0.5, -1.0, 0.7]])
_JOINT_NOMINAL = np.array([0.1, -0.3, 0.5, 0.0, 0.6, -0.2])


def joints_at(position: np.ndarray) -> np.ndarray:
    """(..., 6) joint angles (rad) of the tip at ``position`` (..., 3): a fixed linear 'inverse
    kinematics', so the joints carry nothing the pose does not (recordings and closed loops)."""
    delta = np.asarray(position, dtype=np.float64) - np.asarray(NOMINAL_POSITION)
    return _JOINT_NOMINAL + delta @ _JOINT_GAIN.T * 10.0


@dataclass(frozen=True)
class TrackingScene:
    """One episode's scene, drawn by :func:`draw_scene`; metres, seconds, base frame."""

    velocity: float  # m/s of the target along y (0: static variant)
    target_start: tuple[float, float]  # (x, y) of the target at the start of the approach
    offset_start: tuple[float, float]  # target minus tip, (x, y), at the start of the approach
    phase: float  # s: the approach starts this long before the first action time
    surface: float  # m: mean height of the tissue surface (z)
    breath_amplitude: float
    breath_period: float
    breath_phase: float  # rad
    noise_seed: int
    #: The expert also moves at the target's velocity (``tip' = g (target - tip) + v``), so it
    #: closes on the target instead of trailing it by ``v / g``: the closed-loop variant, where
    #: success is reaching the target. The staleness benchmark's expert has none.
    feedforward: bool = False

    def approach_time(self, t: np.ndarray) -> np.ndarray:
        """Seconds since the approach started (negative before: the robot holds)."""
        return np.asarray(t, dtype=np.float64) - (LEAD_IN + FIRST_SAMPLE_DELAY) + self.phase

    def target(self, t: np.ndarray) -> np.ndarray:
        """(..., 2) target (x, y) at recording time ``t`` (it drifts from the start)."""
        return self._target_at(self.approach_time(t))

    def tip(self, t: np.ndarray) -> np.ndarray:
        """(..., 2) tip (x, y): the target minus the remaining offset; before the approach the
        robot holds where it starts."""
        ta = np.maximum(self.approach_time(t), 0.0)
        return self._target_at(ta) - self._offset_at(ta)

    def _target_at(self, ta: np.ndarray) -> np.ndarray:
        x = np.full_like(ta, self.target_start[0])
        return np.stack([x, self.target_start[1] + self.velocity * ta], axis=-1)

    def _offset_at(self, ta: np.ndarray) -> np.ndarray:
        decay = np.exp(-SERVO_GAIN * ta)
        vg = 0.0 if self.feedforward else self.velocity / SERVO_GAIN
        return np.stack([self.offset_start[0] * decay, vg + (self.offset_start[1] - vg) * decay],
                        axis=-1)


    def surface_height(self, t: np.ndarray) -> np.ndarray:
        w = 2.0 * math.pi / self.breath_period
        return self.surface + self.breath_amplitude * np.sin(w * np.asarray(t) + self.breath_phase)

    def tip_height(self, t: np.ndarray) -> np.ndarray:
        """Steady-state response of ``z' = Z_GAIN (surface + STANDOFF - z)`` to the breathing."""
        w = 2.0 * math.pi / self.breath_period
        gain = Z_GAIN / math.hypot(Z_GAIN, w)
        lag = math.atan2(w, Z_GAIN)
        return (self.surface + STANDOFF + self.breath_amplitude * gain
                * np.sin(w * np.asarray(t) + self.breath_phase - lag))


def draw_scene(rng: np.random.Generator, dynamic: bool = True, duration: float = 3.0,
               feedforward: bool = False) -> TrackingScene:
    """A random scene. ``dynamic`` False: the same scene family with a target at rest;
    ``feedforward``: the closed-loop variant's expert (``TrackingScene.feedforward``)."""
    sign = float(rng.choice([-1.0, 1.0]))
    velocity = sign * float(rng.uniform(*SPEED_RANGE)) if dynamic else 0.0
    phase = float(rng.uniform(0.0, PHASE_MAX))
    first = (float(rng.uniform(-TARGET_SPREAD, TARGET_SPREAD)),
             float(rng.uniform(-TARGET_SPREAD, TARGET_SPREAD)))  # at the first action time
    # The blob's centre stays in view over the whole recording, lead-in included.
    lead = LEAD_IN + FIRST_SAMPLE_DELAY
    reach = max(abs(velocity) * lead, abs(velocity) * (duration - lead)) + abs(first[1])
    if reach > FIELD_OF_VIEW / 2:
        raise ValueError(f"a {duration} s episode drifts the target out of view")
    target = (NOMINAL_POSITION[0] + first[0],
              NOMINAL_POSITION[1] + first[1] - velocity * phase)  # at the approach start
    offset = tuple(float(rng.choice([-1.0, 1.0]) * rng.uniform(*OFFSET_RANGE)) for _ in range(2))
    return TrackingScene(
        velocity=velocity, target_start=target, offset_start=offset, phase=phase,
        surface=NOMINAL_POSITION[2] - 0.01 + float(rng.uniform(-2e-3, 2e-3)),
        breath_amplitude=float(rng.uniform(*BREATH_AMPLITUDE)),
        breath_period=float(rng.uniform(*BREATH_PERIOD)),
        breath_phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        noise_seed=int(rng.integers(0, 2**31 - 1)), feedforward=feedforward)


class TrackingMotion(SyntheticMotion):
    """The recorded expert's tip: the target minus the remaining offset in x/y, the breathing
    standoff in z; the tool keeps pointing down."""

    def __init__(self, scene: TrackingScene) -> None:
        super().__init__(base_quaternion=TOOL_DOWN_XYZW)
        object.__setattr__(self, "scene", scene)

    def position(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        xy = self.scene.tip(t)
        return np.concatenate([xy, self.scene.tip_height(t)[..., None]], axis=-1)

    def joints(self, t: np.ndarray) -> np.ndarray:
        return joints_at(self.position(t))

    def theta(self, t: np.ndarray) -> np.ndarray:
        return np.zeros_like(np.asarray(t, dtype=np.float64))


class TrackingContent(SyntheticContent):
    """The OCT's view of the breathing surface and the world camera's colour-Doppler picture."""

    def __init__(self, scene: TrackingScene, motion: TrackingMotion) -> None:
        self.scene = scene
        self.motion = motion
        self._noise = np.zeros((0, 0), dtype=np.float32)

    def _noise_rows(self, k: np.ndarray, width: int) -> np.ndarray:
        """This episode's own noise of samples ``k`` (drawn once from its seed, in sample order,
        so a sample's noise does not depend on how the writer batches them)."""
        need = int(k.max()) + 1 if k.size else 0
        if self._noise.shape[0] < need or self._noise.shape[1] != width:
            rng = np.random.default_rng(self.scene.noise_seed)
            size = max(need, 4096)
            self._noise = rng.standard_normal((size, width)).astype(np.float32)
        return self._noise[k]

    def sensor_rows(self, k: np.ndarray, t: np.ndarray, aline_length: int) -> np.ndarray:
        distance = self.scene.tip_height(t) - self.scene.surface_height(t)
        return self.rows_at(k, distance, aline_length)

    def rows_at(self, k: np.ndarray, distance: np.ndarray, aline_length: int = ALINE_LENGTH
                ) -> np.ndarray:
        """(n, 1 + aline_length) force/OCT rows of samples ``k`` with the tip ``distance`` (m)
        above the surface: the recorded motion's, or a closed loop's robot."""
        k = np.asarray(k, dtype=np.int64)
        distance = np.asarray(distance, dtype=np.float64).reshape(-1)
        noise = self._noise_rows(k, 1 + aline_length)
        rows = np.empty((k.size, 1 + aline_length), dtype=np.float32)
        rows[:, 0] = 0.01 * noise[:, 0]  # no contact: the force sensor reads its noise
        surface = _SURFACE_INDEX0 + _SURFACE_INDEX_PER_M * np.maximum(distance, 0.0)
        j = np.arange(aline_length, dtype=np.float64)[None, :]
        peak = np.exp(-0.5 * ((j - surface[:, None]) / _PEAK_WIDTH) ** 2)
        layer = 0.5 * np.exp(-0.5 * ((j - surface[:, None] - _LAYER_BELOW) / _PEAK_WIDTH) ** 2)
        rows[:, 1:] = peak + layer + 0.05 * noise[:, 1:]
        return rows

    def jpeg(self, view_index: int, frame: int, t: float, width: int, height: int) -> bytes:
        import cv2

        image = np.zeros((height, width, 3), dtype=np.float32)
        image[:] = (40, 50, 90)  # tissue (BGR)
        tx, ty = self.scene.target(np.array([t]))[0]
        scale_u, scale_v = width / FIELD_OF_VIEW, height / FIELD_OF_VIEW
        # image right = -y (the robot's right, looking down), image down = -x
        u = width / 2.0 - (ty - NOMINAL_POSITION[1]) * scale_u
        v = height / 2.0 - (tx - NOMINAL_POSITION[0]) * scale_v
        uu, vv = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        blob = np.exp(-0.5 * (((uu - u) / (TARGET_SIGMA * scale_u)) ** 2
                              + ((vv - v) / (TARGET_SIGMA * scale_v)) ** 2))
        image += blob[..., None] * (np.asarray(doppler_colour(self.scene.velocity)) - image)
        ok, buf = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError("cv2 could not encode a JPEG")
        return buf.tobytes()


def doppler_colour(velocity: float) -> tuple[float, float, float]:
    """BGR of a target moving at ``velocity`` (m/s along y): red towards +y, blue towards -y,
    saturation growing with the speed; grey at rest."""
    s = float(np.clip(velocity / SPEED_RANGE[1], -1.0, 1.0))
    return (200.0 - 200.0 * max(s, 0.0) + 55.0 * max(-s, 0.0),
            200.0 - 150.0 * abs(s),
            200.0 + 55.0 * max(s, 0.0) - 200.0 * max(-s, 0.0))


def episode_spec(scene: TrackingScene, duration: float, image_size: tuple[int, int],
                 start_ns: int, views: tuple[str, ...] = ("world",)) -> SyntheticBagSpec:
    """The writer's spec of one episode (prompt in the bag's custom data); the force/OCT stream
    starts ``LEAD_IN`` after the cameras, so the first action time has that much picture history."""
    motion = TrackingMotion(scene)
    return SyntheticBagSpec(duration=duration, views=views, image_size=image_size, prompt=PROMPT,
                            start_ns=start_ns, motion=motion, aline_length=ALINE_LENGTH,
                            content=TrackingContent(scene, motion), camera_fps=CAMERA_FPS,
                            sensor_holes=((0.0, LEAD_IN),))


def write_tracking_bags(directory: str | Path, count: int, seed: int, dynamic: bool = True,
                        duration: float = 3.0, image_size: tuple[int, int] = (140, 140),
                        prefix: str = "tracking", feedforward: bool = False,
                        reuse: bool = False) -> list[tuple[Path, TrackingScene]]:
    """Write ``count`` recordings ``<prefix>_000``... (mcap) under ``directory``.

    ``reuse``: keep the recordings a previous call with the same arguments completed there (a
    ``<prefix>.complete.json`` records them; the scenes are drawn again from ``seed``, the same),
    and rewrite them when the arguments differ or that call did not finish."""
    import json
    import shutil

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / f"{prefix}.complete.json"
    key = {"count": count, "seed": seed, "dynamic": dynamic, "duration": duration,
           "image_size": list(image_size), "feedforward": feedforward, "version": 1}
    keep = reuse and marker.is_file() and json.loads(marker.read_text()) == key
    if reuse and not keep:
        marker.unlink(missing_ok=True)
        for old in directory.glob(f"{prefix}_[0-9][0-9][0-9]"):
            shutil.rmtree(old)
    rng = np.random.default_rng(seed)
    written = []
    for n in range(count):
        scene = draw_scene(rng, dynamic, duration, feedforward)
        start_ns = 1_700_000_000_000_000_000 + int(rng.integers(0, 10**9)) + n * 10**11
        path = directory / f"{prefix}_{n:03d}"
        if not keep:
            write_synthetic_bag(path, "mcap", episode_spec(scene, duration, tuple(image_size),
                                                           start_ns))
        written.append((path, scene))
    if reuse and not keep:
        marker.write_text(json.dumps(key) + "\n")
    return written


def oracle_lateral_nmse(age_s: float, trained_mean_age_s: float | None = None,
                        scenes: int = 2000, seed: int = 0, duration: float = 3.0,
                        step: float = 0.1, horizon: int = 8) -> float:
    """The lateral error (normalised MSE, all horizon steps) of a perfect reader of the picture
    that assumes the picture is ``trained_mean_age_s`` old (None: fresh) when it is ``age_s``
    old, on the dynamic task. What staleness costs before any learning error."""
    rng = np.random.default_rng(seed)
    chunks, errors = [], []
    tau = step * np.arange(1, horizon + 1)
    f = 1.0 - np.exp(-SERVO_GAIN * tau)
    assumed = trained_mean_age_s or 0.0
    for _ in range(scenes):
        scene = draw_scene(rng, True, duration)
        t = np.arange(LEAD_IN + FIRST_SAMPLE_DELAY, duration - horizon * step, step)
        tip = TrackingMotion(scene).position(t[:, None] + np.concatenate([[0.0], tau]))[..., 1]
        chunks.append(tip[:, 1:] - tip[:, :1])
        errors.append(np.broadcast_to(scene.velocity * (age_s - assumed) * f, chunks[-1].shape))
    chunk = np.concatenate(chunks)
    return float(np.mean((np.concatenate(errors) / chunk.std()) ** 2))
