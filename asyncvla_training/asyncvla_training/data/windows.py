"""Lazy per-sample views of an episode: sensor windows and camera frames.

Windows of neighbouring samples overlap when the window is longer than the step period (65
samples at 650 Hz is exactly 100 ms, but 650 samples, the original system's earlier setting, is 10x), so an
episode keeps the screened sample stream once and cuts windows on demand.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SensorWindows:
    """(N, T, C) windows over one sample stream, indexable like an ndarray.

    ``windows[i]`` is a fresh (T, C) float32 array (rows ``ends[i] - T .. ends[i] - 1`` of the
    stream); ``windows[a:b]`` / ``windows[[i, j]]`` stack; ``np.asarray(windows)`` materialises.
    """

    def __init__(self, rows: np.ndarray, ends: np.ndarray, window: int) -> None:
        rows = np.asarray(rows, dtype=np.float32)
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        if rows.ndim != 2 or window < 1:
            raise ValueError("rows must be (M, C) and window >= 1")
        if ends.size and (ends.min() < window or ends.max() > rows.shape[0]):
            raise ValueError("every window must lie inside the sample stream")
        self.rows, self.ends, self.window = rows, ends, int(window)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.ends.size), self.window, int(self.rows.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return self.rows.dtype

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return int(self.ends.size)

    def _one(self, i: int) -> np.ndarray:
        end = int(self.ends[i])
        return self.rows[end - self.window:end].copy()

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            n = len(self)
            if not -n <= int(index) < n:
                raise IndexError(f"sample {index} out of range for {n} windows")
            return self._one(int(index) % n)
        if isinstance(index, tuple):  # windows[i, -1] / windows[a:b, :, 0]: samples first
            first, rest = (index[0], index[1:]) if index else (slice(None), ())
            picked = self[first]
            if isinstance(first, (int, np.integer)):
                return picked[rest]
            return picked[(slice(None),) + rest]
        picked = np.arange(len(self))[index]
        if picked.ndim == 0:
            return self._one(int(picked))
        out = np.empty((picked.size, self.window, self.rows.shape[1]), dtype=np.float32)
        for k, i in enumerate(picked.reshape(-1)):
            out[k] = self._one(int(i))
        return out.reshape(picked.shape + out.shape[1:])

    def __iter__(self):
        for i in range(len(self)):
            yield self._one(i)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out.astype(dtype, copy=False) if dtype is not None else out

    def materialize(self) -> np.ndarray:
        return self[:]

    def row_weights(self) -> np.ndarray:
        """(M,) how many windows contain each stream row (for exact statistics without copies)."""
        counts = np.zeros(self.rows.shape[0] + 1, dtype=np.int64)
        np.add.at(counts, self.ends - self.window, 1)
        np.add.at(counts, self.ends, -1)
        return np.cumsum(counts)[:-1]


def decode_image(data: bytes, fmt: str = "jpeg") -> np.ndarray:
    """RGB uint8 (H, W, 3) from compressed bytes, decoded as the VLM node does (cv2, BGR -> RGB)."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise ValueError(f"undecodable image ({fmt!r}, {len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def image_problem(data: bytes) -> str | None:
    """Why ``data`` is not a sound compressed image, or None.

    cv2 decodes a JPEG with damaged entropy-coded data anyway (libjpeg only prints "Corrupt JPEG
    data" on stderr) and hands back a garbled frame; Pillow reports the same condition as an
    error. The JPEG is decoded at 1/8 scale (``draft``): the whole entropy-coded stream is still
    read, which is where damage shows, at about a third of the cost of a full decode.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        return str(exc) or type(exc).__name__
    return None


class FrameLoader:
    """``Episode.load_frames``: frame set index -> list of V RGB frames, decoded on demand.

    ``frame_stamps_ns`` (M, V) are the frame sets in the episode's order (``Episode.frame_sets_ns``);
    the loader holds the encoded bytes of only those frames. ``encoded(s)`` gives the original
    bytes (what the LeRobot export embeds, no re-encoding).
    """

    def __init__(self, views: Sequence[str], frame_stamps_ns: np.ndarray,
                 encoded: dict[str, dict[int, tuple[bytes, str]]]) -> None:
        self.views = tuple(views)
        self.frame_stamps_ns = np.asarray(frame_stamps_ns, dtype=np.int64)
        self._encoded = encoded

    def __len__(self) -> int:
        return int(self.frame_stamps_ns.shape[0])

    def encoded(self, i: int) -> list[tuple[bytes, str]]:
        return [self._encoded[v][int(s)] for v, s in zip(self.views, self.frame_stamps_ns[i])]

    def __call__(self, i: int) -> list[np.ndarray]:
        return [decode_image(data, fmt) for data, fmt in self.encoded(i)]
