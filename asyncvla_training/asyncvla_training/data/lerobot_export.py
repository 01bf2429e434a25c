"""Export aligned episodes as a LeRobot dataset, format v3.0 (``codebase_version: "v3.0"``).

Layout written (LeRobot v3: many episodes per file, relational episode metadata)::

    meta/info.json                              codebase_version, fps, features, path templates
    meta/stats.json                             per feature: mean, std, min, max, count
    meta/tasks.parquet                          task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet    one row per episode: length, tasks, data file and
                                                dataset_from_index / dataset_to_index
    data/chunk-000/file-000.parquet             one row per sample (a new file once a file passes
                                                ``data_file_size_mb``; 1000 files per chunk)

One dataset frame = one action time of an ``Episode`` (fps = 1 / step_period). Features:

- ``observation.state`` float32 (13,): conventions.ROBOT_STATE_NAMES
- ``observation.sensor_window`` float32 (T, 1026): the force/OCT window ending at the frame
- ``observation.images.<view>`` image (H, W, 3): the recorded JPEG bytes, embedded as the
  Hugging Face ``Image`` struct {bytes, path}; no re-encoding, no video codec needed
- ``observation.frame_stamps_ns`` int64 (V,): the camera stamps of those images (ROS time)
- ``action`` float32 (H, 7): the whole target chunk of the frame (offsets from the frame's state,
  conventions.ACTION_SPACES) - a chunk per frame, so do not rebuild chunks with delta_timestamps
- ``time_ns`` int64 (1,): the action time (ROS time); plus LeRobot's timestamp, frame_index,
  episode_index, index, task_index.

Extra keys under ``info.json["asyncvla"]`` carry the action space, step period and views.

Storage: 2-D features (sensor window, action) are plain nested lists ``list<list<float>>``, what
the ``datasets`` library's ``Array2D`` stores; nested *fixed-size* lists made pyarrow's filtered
scan (``LeRobotDataset(..., episodes=[...])``) crash. 1-D features are fixed-size lists, as
``datasets`` writes ``Sequence(length=n)``.

Streaming: episodes may come from a generator (``iter_episodes``: one bag in memory at a time);
rows are built and written ``batch_size`` samples at a time and statistics are running sums, so
memory does not grow with the dataset. Image statistics are computed as LeRobot computes them: on
evenly spaced sample frames of each episode (``max(100, n ** 0.75)``, at most n), each subsampled
to about 150 px on its long side. The dataset is written to a staging directory next to
``output`` and renamed into place at the end, so an interrupted or refused export leaves nothing
(and ``overwrite`` replaces the old dataset only once the new one is complete).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from asyncvla_core.conventions import ACTION_DIM, ACTION_SPACES, ROBOT_STATE_NAMES
from .episode import Episode

LOG = logging.getLogger(__name__)
CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the LeRobot export needs pyarrow: pip install 'asyncvla_training[lerobot]'"
                          ) from exc
    return pa, pq


def _fps(step_period: float) -> int:
    fps = 1.0 / step_period
    if abs(fps - round(fps)) > 1e-6:
        raise ValueError(f"LeRobot needs an integer fps; step_period gives {fps}")
    return int(round(fps))


def _image_key(view: str) -> str:
    return f"observation.images.{view}"


def _encoded_frames(episode: Episode, i: int) -> list[bytes]:
    """Original compressed bytes of sample ``i``'s frames when the loader has them, else a
    lossless PNG of the RGB frame."""
    loader, s = episode.load_frames, int(episode.sample_frame_sets[i])
    if hasattr(loader, "encoded"):
        return [data for data, _fmt in loader.encoded(s)]
    import cv2

    out = []
    for image in loader(s):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"cannot encode a frame of {episode.name} sample {i}")
        out.append(buf.tobytes())
    return out


def _decoded_frame(episode: Episode, i: int, k: int) -> np.ndarray:
    """RGB frame of view ``k`` at sample ``i`` (one view decoded, not all of them)."""
    loader, s = episode.load_frames, int(episode.sample_frame_sets[i])
    if hasattr(loader, "encoded"):
        from .windows import decode_image

        data, fmt = loader.encoded(s)[k]
        return decode_image(data, fmt)
    return np.asarray(loader(s)[k])


def lerobot_features(first: Episode) -> dict:
    """The ``features`` block of info.json for episodes shaped like ``first``."""
    T, C = first.sensor_windows.shape[1:]
    H = first.actions.shape[1]
    features: dict[str, dict] = {
        "observation.state": {"dtype": "float32", "shape": [len(ROBOT_STATE_NAMES)],
                              "names": list(ROBOT_STATE_NAMES)},
        "observation.sensor_window": {"dtype": "float32", "shape": [int(T), int(C)],
                                      "names": ["sample", "channel"]},
    }
    for k, view in enumerate(first.views):
        h, w = _decoded_frame(first, 0, k).shape[:2]
        features[_image_key(view)] = {"dtype": "image", "shape": [int(h), int(w), 3],
                                      "names": ["height", "width", "channels"]}
    features["observation.frame_stamps_ns"] = {"dtype": "int64", "shape": [len(first.views)],
                                               "names": list(first.views)}
    features["action"] = {"dtype": "float32", "shape": [int(H), ACTION_DIM],
                          "names": ["step", list(ACTION_SPACES[first.action_space])]}
    features["time_ns"] = {"dtype": "int64", "shape": [1], "names": None}
    for key, dtype in (("timestamp", "float32"), ("frame_index", "int64"),
                       ("episode_index", "int64"), ("index", "int64"), ("task_index", "int64")):
        features[key] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _schema(pa, features: dict, views: Sequence[str]):
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [("observation.state", pa.list_(pa.float32(), len(ROBOT_STATE_NAMES))),
              ("observation.sensor_window", pa.list_(pa.list_(pa.float32())))]
    fields += [(_image_key(v), image) for v in views]
    fields += [("observation.frame_stamps_ns", pa.list_(pa.int64(), len(views))),
               ("action", pa.list_(pa.list_(pa.float32()))),
               ("time_ns", pa.int64()), ("timestamp", pa.float32()), ("frame_index", pa.int64()),
               ("episode_index", pa.int64()), ("index", pa.int64()), ("task_index", pa.int64())]
    hf_features = {}
    for name, _ in fields:
        ft = features[name]
        if ft["dtype"] == "image":
            hf_features[name] = {"_type": "Image"}
        elif ft["shape"] == [1]:
            hf_features[name] = {"dtype": ft["dtype"], "_type": "Value"}
        elif len(ft["shape"]) == 1:
            hf_features[name] = {"feature": {"dtype": ft["dtype"], "_type": "Value"},
                                 "length": ft["shape"][0], "_type": "Sequence"}
        else:
            hf_features[name] = {"shape": ft["shape"], "dtype": ft["dtype"], "_type": "Array2D"}
    meta = {b"huggingface": json.dumps({"info": {"features": hf_features}}).encode()}
    return pa.schema(fields, metadata=meta)


def _fixed_list(pa, array: np.ndarray, value_type):
    """(N, n) -> fixed_size_list<n> (zero-copy from the flat buffer)."""
    array = np.ascontiguousarray(array)
    return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1), type=value_type),
                                             array.shape[1])


def _nested_list(pa, array: np.ndarray, value_type):
    """(N, R, C) -> list<list<value>>: plain (variable-size) lists, as datasets' Array2D stores."""
    n, rows, cols = array.shape
    values = pa.array(np.ascontiguousarray(array).reshape(-1), type=value_type)
    inner = pa.ListArray.from_arrays(pa.array(np.arange(0, n * rows * cols + 1, cols, dtype=np.int32)),
                                     values)
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * rows + 1, rows, dtype=np.int32)), inner)


class _Stats:
    """Running min/max/sum/sumsq per feature over a chosen reduction (for meta/stats.json)."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}

    def add(self, key: str, values: np.ndarray, axis: tuple[int, ...], frames: int | None = None) -> None:
        """``frames``: how many dataset frames ``values`` stand for (``count``); default: rows."""
        v = np.asarray(values, dtype=np.float64)
        entry = self.data.setdefault(key, {"sum": 0.0, "sumsq": 0.0, "min": None, "max": None,
                                           "count": 0, "n": 0})
        entry["sum"] = entry["sum"] + v.sum(axis=axis, keepdims=True)
        entry["sumsq"] = entry["sumsq"] + np.square(v).sum(axis=axis, keepdims=True)
        mn, mx = v.min(axis=axis, keepdims=True), v.max(axis=axis, keepdims=True)
        entry["min"] = mn if entry["min"] is None else np.minimum(entry["min"], mn)
        entry["max"] = mx if entry["max"] is None else np.maximum(entry["max"], mx)
        entry["n"] += int(np.prod([v.shape[a] for a in axis]))
        entry["count"] += int(v.shape[0] if frames is None else frames)

    def result(self) -> dict:
        out = {}
        for key, e in self.data.items():
            mean = e["sum"] / e["n"]
            std = np.sqrt(np.maximum(e["sumsq"] / e["n"] - np.square(mean), 0.0))
            out[key] = {"mean": mean[0].tolist(), "std": std[0].tolist(), "min": e["min"][0].tolist(),
                        "max": e["max"][0].tolist(), "count": [e["count"]]}
        return out


def image_stat_indices(n: int) -> np.ndarray:
    """Frames of an n-frame episode used for image statistics (LeRobot's ``sample_indices``:
    evenly spaced, ``max(100, n ** 0.75)`` of them, at most n)."""
    count = min(n, max(100, int(n ** 0.75)))
    return np.round(np.linspace(0, n - 1, count)).astype(int)


def _stat_subsample(image: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    """LeRobot's ``auto_downsample_height_width``: every k-th pixel so the long side is ~150."""
    h, w = image.shape[:2]
    if max(h, w) < threshold:
        return image
    k = int(max(h, w) / target)
    return image[::k, ::k]


def _write_tasks(pa, pq, path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as LeRobot writes it from pandas: index = task string, column task_index."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema([("task_index", pa.int64()), ("__index_level_0__", pa.string())],
                       metadata={b"pandas": json.dumps(pandas_meta).encode()})
    table = pa.table({"task_index": pa.array(range(len(tasks)), type=pa.int64()),
                      "__index_level_0__": pa.array(tasks, type=pa.string())}, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


class _DatasetWriter:
    """Writes one LeRobot v3.0 dataset under ``root``, a batch of samples at a time."""

    def __init__(self, root: Path, robot_type: str, data_file_size_mb: float, batch_size: int,
                 progress) -> None:
        self.pa, self.pq = _pa()
        self.root, self.robot_type = root, robot_type
        self.data_file_size_mb, self.batch_size, self.progress = data_file_size_mb, batch_size, progress
        self.first: Episode | None = None
        self.features: dict = {}
        self.schema = None
        self.tasks: list[str] = []
        self.stats = _Stats()
        self.episode_rows: dict[str, list] = {k: [] for k in (
            "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
            "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index",
            "meta/episodes/file_index", "asyncvla/name", "asyncvla/start_time_ns")}
        self.chunk_index = self.file_index = 0
        self.writer = None
        self.written_bytes = 0
        self.index = 0

    def _check(self, episode: Episode) -> None:
        first = self.first
        if first is None:
            self.first = episode
            self.fps = _fps(episode.step_period)
            self.views = tuple(episode.views)
            self.features = lerobot_features(episode)
            self.schema = _schema(self.pa, self.features, self.views)
            return
        if tuple(episode.views) != self.views or episode.action_space != first.action_space:
            raise ValueError(f"episode {episode.name} has views {episode.views} / "
                             f"{episode.action_space}; all episodes must share views {self.views} "
                             f"and the action space {first.action_space}")
        if round(episode.step_period, 9) != round(first.step_period, 9):
            raise ValueError(f"episode {episode.name} has step period {episode.step_period}, "
                             f"{first.name} {first.step_period}")
        for attr, key in (("sensor_windows", "observation.sensor_window"), ("actions", "action")):
            if list(getattr(episode, attr).shape[1:]) != self.features[key]["shape"]:
                raise ValueError(f"episode {episode.name}: {attr} {getattr(episode, attr).shape[1:]}"
                                 f" differs from {self.features[key]['shape']}")

    def _open_file(self) -> None:
        if self.writer is not None and self.written_bytes >= self.data_file_size_mb * 1024 * 1024:
            self.writer.close()
            self.writer = None
            self.file_index += 1
            if self.file_index == CHUNKS_SIZE:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
        if self.writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk_index,
                                                file_index=self.file_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = self.pq.ParquetWriter(path, self.schema)
            self.written_bytes = 0

    def add(self, episode: Episode) -> None:
        n = len(episode)
        if n == 0:
            return
        self._check(episode)
        pa = self.pa
        self._open_file()
        episode_index = len(self.episode_rows["episode_index"])
        if episode.prompt not in self.tasks:
            self.tasks.append(episode.prompt)
        task_index = self.tasks.index(episode.prompt)
        start_index = self.index
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            b = stop - start
            windows = np.asarray(episode.sensor_windows[start:stop], dtype=np.float32)
            states = np.asarray(episode.states[start:stop], dtype=np.float32)
            actions = np.asarray(episode.actions[start:stop], dtype=np.float32)
            stamps = np.asarray(episode.frame_stamps_ns[start:stop], dtype=np.int64)
            scalars = {
                "time_ns": np.asarray(episode.times_ns[start:stop], dtype=np.int64),
                "timestamp": (np.arange(start, stop) * episode.step_period).astype(np.float32),
                "frame_index": np.arange(start, stop, dtype=np.int64),
                "episode_index": np.full(b, episode_index, dtype=np.int64),
                "index": np.arange(self.index, self.index + b, dtype=np.int64),
                "task_index": np.full(b, task_index, dtype=np.int64),
            }
            columns = {
                "observation.state": _fixed_list(pa, states, pa.float32()),
                "observation.sensor_window": _nested_list(pa, windows, pa.float32()),
                "observation.frame_stamps_ns": _fixed_list(pa, stamps, pa.int64()),
                "action": _nested_list(pa, actions, pa.float32()),
            }
            columns.update({k: pa.array(v) for k, v in scalars.items()})
            encoded = [_encoded_frames(episode, i) for i in range(start, stop)]
            for k, view in enumerate(self.views):
                columns[_image_key(view)] = pa.StructArray.from_arrays(
                    [pa.array([frames[k] for frames in encoded], type=pa.binary()),
                     pa.nulls(b, type=pa.string())], names=["bytes", "path"])
            batch = pa.record_batch([columns[name] for name in self.schema.names], schema=self.schema)
            self.writer.write_batch(batch)
            self.written_bytes += batch.nbytes
            self.stats.add("observation.state", states, (0,))
            self.stats.add("observation.sensor_window", windows, (0, 1), frames=b)
            self.stats.add("action", actions, (0, 1), frames=b)
            self.stats.add("observation.frame_stamps_ns", stamps, (0,))
            for key, values in scalars.items():
                self.stats.add(key, values.astype(np.float64)[:, None], (0,))
            self.index += b
            if self.progress is not None:
                self.progress.update(b)
        # Image statistics (LeRobot shapes: per channel (3, 1, 1) in [0, 1]) on sample frames.
        picked = image_stat_indices(n)
        for k, view in enumerate(self.views):
            pixels = np.stack([_stat_subsample(_decoded_frame(episode, int(i), k)) for i in picked])
            self.stats.add(_image_key(view), pixels.transpose(0, 3, 1, 2) / 255.0, (0, 2, 3), frames=n)
        for key, value in (("episode_index", episode_index), ("tasks", [episode.prompt]),
                           ("length", n), ("data/chunk_index", self.chunk_index),
                           ("data/file_index", self.file_index), ("dataset_from_index", start_index),
                           ("dataset_to_index", self.index), ("meta/episodes/chunk_index", 0),
                           ("meta/episodes/file_index", 0), ("asyncvla/name", episode.name),
                           ("asyncvla/start_time_ns", int(episode.times_ns[0]))):
            self.episode_rows[key].append(value)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finish(self, extra_info: dict | None) -> dict:
        """Write the metadata; returns info.json's content."""
        self.close()
        pa, pq = self.pa, self.pq
        if self.first is None:
            raise ValueError("nothing to export: no episode has samples")
        meta = self.root / "meta"
        episodes_path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({k: pa.array(v) for k, v in self.episode_rows.items()}),
                       episodes_path)
        _write_tasks(pa, pq, meta / "tasks.parquet", self.tasks)
        stats_json = self.stats.result()
        for key in stats_json:  # image stats are (3, 1, 1) in LeRobot
            if key.startswith("observation.images."):
                for stat in ("mean", "std", "min", "max"):
                    stats_json[key][stat] = [[[v]] for v in
                                             np.asarray(stats_json[key][stat]).reshape(-1)]
        (meta / "stats.json").write_text(json.dumps(stats_json, indent=2) + "\n")
        first = self.first
        T = self.features["observation.sensor_window"]["shape"][0]
        H = self.features["action"]["shape"][0]
        episodes = len(self.episode_rows["episode_index"])
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": episodes,
            "total_frames": self.index,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": self.data_file_size_mb,
            "video_files_size_in_mb": 500,
            "fps": self.fps,
            "splits": {"train": f"0:{episodes}"},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": self.features,
            "asyncvla": {"action_space": first.action_space, "step_period": first.step_period,
                         "views": list(self.views), "horizon": int(H), "sensor_window": int(T),
                         "action_names": list(ACTION_SPACES[first.action_space]),
                         "state_names": list(ROBOT_STATE_NAMES), **(extra_info or {})},
        }
        (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
        return info


def export_lerobot(episodes: Iterable[Episode], output: str | Path, *, robot_type: str = "asyncvla",
                   overwrite: bool = False, data_file_size_mb: float = 100.0,
                   extra_info: dict | None = None, batch_size: int = 32,
                   progress: bool = False) -> Path:
    """Write ``episodes`` (a list or a generator) as a LeRobot v3.0 dataset at ``output``.

    Returns the dataset root. ``progress``: a tqdm bar over the samples on stderr. Nothing is
    left at ``output`` (or changed there) unless the whole export succeeds.
    """
    _pa()
    root = Path(output)
    if root.exists() and not overwrite:
        raise FileExistsError(f"{root} exists; pass overwrite=True (--overwrite) to replace it")
    staging = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(len(e) for e in episodes) if isinstance(episodes, Sequence) else None
        bar = tqdm(total=total, desc="LeRobot export", unit="sample", file=sys.stderr)
    writer = _DatasetWriter(staging, robot_type, data_file_size_mb, batch_size, bar)
    try:
        for episode in episodes:
            writer.add(episode)
        writer.finish(extra_info)
    except BaseException:
        writer.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        root.rename(old)
        staging.rename(root)
        shutil.rmtree(old)
    else:
        staging.rename(root)
    return root


def main(argv: list[str] | None = None) -> int:
    from .errors import BagDataError
    from .vl_cache import add_dataset_arguments

    parser = argparse.ArgumentParser(
        prog="asyncvla-export-lerobot",
        description="Align rosbag2 recordings and write them as a LeRobot v3.0 dataset.")
    add_dataset_arguments(parser)
    parser.add_argument("--output", required=True, help="dataset root to create")
    parser.add_argument("--robot-type", default="asyncvla")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..cli_errors import run_cli
    from .vl_cache import SKIP_HINT

    return run_cli("asyncvla-export-lerobot", lambda: _run(args), hints={BagDataError: SKIP_HINT})


def _run(args: argparse.Namespace) -> int:
    from ..cli_errors import CliError
    from .bag_dataset import iter_episodes
    from .vl_cache import dataset_config_from_args

    if Path(args.output).exists() and not args.overwrite:
        raise CliError(f"{args.output} exists: pass --overwrite to replace it, or choose another "
                       "--output")
    config = dataset_config_from_args(args)
    episodes = iter_episodes(args.bags, config, skip_errors=args.skip_errors)  # one bag at a time
    try:
        root = export_lerobot(episodes, args.output, robot_type=args.robot_type,
                              overwrite=args.overwrite, progress=not args.no_progress,
                              extra_info={"dataset_config": config.as_dict()})
    except ValueError as exc:  # episodes that cannot share one dataset (views, fps, shapes)
        raise CliError(f"{exc} (export them separately, or align them with the same options)"
                       ) from exc
    info = json.loads((root / "meta" / "info.json").read_text())
    print(json.dumps({"output": str(root), "episodes": info["total_episodes"],
                      "samples": info["total_frames"],
                      "seconds": info["total_frames"] / info["fps"],
                      "views": info["asyncvla"]["views"],
                      "action_space": info["asyncvla"]["action_space"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
