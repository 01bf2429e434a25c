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
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..conventions import ACTION_DIM, ACTION_SPACES, ROBOT_STATE_NAMES
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


def _fps(episodes: Sequence[Episode]) -> int:
    periods = {round(e.step_period, 9) for e in episodes}
    if len(periods) != 1:
        raise ValueError(f"episodes have different step periods {sorted(periods)}")
    fps = 1.0 / periods.pop()
    if abs(fps - round(fps)) > 1e-6:
        raise ValueError(f"LeRobot needs an integer fps; step_period gives {fps}")
    return int(round(fps))


def _image_key(view: str) -> str:
    return f"observation.images.{view}"


def _encoded_frames(episode: Episode, i: int) -> list[bytes]:
    """Original compressed bytes when the loader has them, else a lossless PNG of the RGB frame."""
    loader = episode.load_frames
    if hasattr(loader, "encoded"):
        return [data for data, _fmt in loader.encoded(i)]
    import cv2

    out = []
    for image in loader(i):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"cannot encode a frame of {episode.name} sample {i}")
        out.append(buf.tobytes())
    return out


def lerobot_features(episodes: Sequence[Episode]) -> dict:
    """The ``features`` block of info.json for these episodes."""
    first = episodes[0]
    T, C = first.sensor_windows.shape[1:]
    H = first.actions.shape[1]
    features: dict[str, dict] = {
        "observation.state": {"dtype": "float32", "shape": [len(ROBOT_STATE_NAMES)],
                              "names": list(ROBOT_STATE_NAMES)},
        "observation.sensor_window": {"dtype": "float32", "shape": [int(T), int(C)],
                                      "names": ["sample", "channel"]},
    }
    frames = first.load_frames(0)
    for view, image in zip(first.views, frames):
        h, w = image.shape[:2]
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
    T, C = features["observation.sensor_window"]["shape"]
    H, A = features["action"]["shape"]
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [("observation.state", pa.list_(pa.float32(), len(ROBOT_STATE_NAMES))),
              ("observation.sensor_window", pa.list_(pa.list_(pa.float32(), C), T))]
    fields += [(_image_key(v), image) for v in views]
    fields += [("observation.frame_stamps_ns", pa.list_(pa.int64(), len(views))),
               ("action", pa.list_(pa.list_(pa.float32(), A), H)),
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


def _fixed(pa, array: np.ndarray, inner: int, outer: int | None, value_type):
    flat = pa.array(np.ascontiguousarray(array).reshape(-1), type=value_type)
    out = pa.FixedSizeListArray.from_arrays(flat, inner)
    return pa.FixedSizeListArray.from_arrays(out, outer) if outer is not None else out


class _Stats:
    """Running min/max/sum/sumsq per feature over a chosen reduction (for meta/stats.json)."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}

    def add(self, key: str, values: np.ndarray, axis: tuple[int, ...]) -> None:
        v = np.asarray(values, dtype=np.float64)
        entry = self.data.setdefault(key, {"sum": 0.0, "sumsq": 0.0, "min": None, "max": None,
                                           "count": 0, "n": 0})
        entry["sum"] = entry["sum"] + v.sum(axis=axis, keepdims=True)
        entry["sumsq"] = entry["sumsq"] + np.square(v).sum(axis=axis, keepdims=True)
        mn, mx = v.min(axis=axis, keepdims=True), v.max(axis=axis, keepdims=True)
        entry["min"] = mn if entry["min"] is None else np.minimum(entry["min"], mn)
        entry["max"] = mx if entry["max"] is None else np.maximum(entry["max"], mx)
        entry["n"] += int(np.prod([v.shape[a] for a in axis]))
        entry["count"] += int(v.shape[0])

    def result(self) -> dict:
        out = {}
        for key, e in self.data.items():
            mean = e["sum"] / e["n"]
            std = np.sqrt(np.maximum(e["sumsq"] / e["n"] - np.square(mean), 0.0))
            out[key] = {"mean": mean[0].tolist(), "std": std[0].tolist(), "min": e["min"][0].tolist(),
                        "max": e["max"][0].tolist(), "count": [e["count"]]}
        return out


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


def export_lerobot(episodes: Sequence[Episode], output: str | Path, *, robot_type: str = "asyncvla",
                   overwrite: bool = False, data_file_size_mb: float = 100.0,
                   extra_info: dict | None = None) -> Path:
    """Write ``episodes`` as a LeRobot v3.0 dataset at ``output``; returns the dataset root."""
    pa, pq = _pa()
    episodes = [e for e in episodes if len(e)]
    if not episodes:
        raise ValueError("nothing to export: no episode has samples")
    views = tuple(episodes[0].views)
    for e in episodes:
        if tuple(e.views) != views or e.action_space != episodes[0].action_space:
            raise ValueError(f"episode {e.name} has views {e.views} / {e.action_space}; all "
                             f"episodes must share views {views} and one action space")
    fps = _fps(episodes)
    root = Path(output)
    if root.exists():
        if not overwrite:
            raise FileExistsError(f"{root} exists; pass overwrite=True to replace it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    features = lerobot_features(episodes)
    for key, ft in features.items():  # every episode must match the first one's shapes
        if key == "observation.sensor_window":
            for e in episodes:
                if list(e.sensor_windows.shape[1:]) != ft["shape"]:
                    raise ValueError(f"episode {e.name}: sensor window {e.sensor_windows.shape[1:]}")
        if key == "action":
            for e in episodes:
                if list(e.actions.shape[1:]) != ft["shape"]:
                    raise ValueError(f"episode {e.name}: action chunk {e.actions.shape[1:]}")
    schema = _schema(pa, features, views)
    tasks: list[str] = []
    stats = _Stats()
    episode_rows: dict[str, list] = {k: [] for k in (
        "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
        "dataset_from_index", "dataset_to_index", "meta/episodes/chunk_index",
        "meta/episodes/file_index", "asyncvla/name", "asyncvla/start_time_ns")}
    chunk_index = file_index = 0
    writer = None
    written_bytes = 0
    index = 0
    limit = data_file_size_mb * 1024 * 1024
    T, C = features["observation.sensor_window"]["shape"]
    H, A = features["action"]["shape"]
    try:
        for episode_index, episode in enumerate(episodes):
            if writer is not None and written_bytes >= limit:
                writer.close()
                writer = None
                file_index += 1
                if file_index == CHUNKS_SIZE:
                    chunk_index, file_index = chunk_index + 1, 0
            if writer is None:
                path = root / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, schema)
                written_bytes = 0
            if episode.prompt not in tasks:
                tasks.append(episode.prompt)
            task_index = tasks.index(episode.prompt)
            n = len(episode)
            windows = np.asarray(episode.sensor_windows[:], dtype=np.float32)
            states = np.asarray(episode.states, dtype=np.float32)
            actions = np.asarray(episode.actions, dtype=np.float32)
            images = [_encoded_frames(episode, i) for i in range(n)]
            columns = {
                "observation.state": _fixed(pa, states, states.shape[1], None, pa.float32()),
                "observation.sensor_window": _fixed(pa, windows, C, T, pa.float32()),
                "observation.frame_stamps_ns": _fixed(pa, episode.frame_stamps_ns, len(views),
                                                      None, pa.int64()),
                "action": _fixed(pa, actions, A, H, pa.float32()),
                "time_ns": pa.array(episode.times_ns, type=pa.int64()),
                "timestamp": pa.array(np.arange(n) * episode.step_period, type=pa.float32()),
                "frame_index": pa.array(np.arange(n), type=pa.int64()),
                "episode_index": pa.array(np.full(n, episode_index), type=pa.int64()),
                "index": pa.array(np.arange(index, index + n), type=pa.int64()),
                "task_index": pa.array(np.full(n, task_index), type=pa.int64()),
            }
            for k, view in enumerate(views):
                columns[_image_key(view)] = pa.array(
                    [{"bytes": frames[k], "path": None} for frames in images],
                    type=schema.field(_image_key(view)).type)
            table = pa.table({name: columns[name] for name in schema.names}, schema=schema)
            writer.write_table(table)
            written_bytes += table.nbytes
            # Statistics (LeRobot shapes: vectors per dim; images per channel (3, 1, 1) in [0, 1]).
            stats.add("observation.state", states, (0,))
            stats.add("observation.sensor_window", windows, (0, 1))
            stats.add("action", actions, (0, 1))
            stats.add("observation.frame_stamps_ns", episode.frame_stamps_ns, (0,))
            for key in ("time_ns", "timestamp", "frame_index", "episode_index", "index",
                        "task_index"):
                stats.add(key, np.asarray(columns[key].to_numpy(), dtype=np.float64)[:, None], (0,))
            for k, view in enumerate(views):
                decoded = np.stack([episode.load_frames(i)[k] for i in range(n)]) / 255.0
                stats.add(_image_key(view), decoded.transpose(0, 3, 1, 2), (0, 2, 3))
            for key, value in (("episode_index", episode_index), ("tasks", [episode.prompt]),
                               ("length", n), ("data/chunk_index", chunk_index),
                               ("data/file_index", file_index), ("dataset_from_index", index),
                               ("dataset_to_index", index + n), ("meta/episodes/chunk_index", 0),
                               ("meta/episodes/file_index", 0), ("asyncvla/name", episode.name),
                               ("asyncvla/start_time_ns", int(episode.times_ns[0]))):
                episode_rows[key].append(value)
            index += n
    finally:
        if writer is not None:
            writer.close()
    meta = root / "meta"
    episodes_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: pa.array(v) for k, v in episode_rows.items()}), episodes_path)
    _write_tasks(pa, pq, meta / "tasks.parquet", tasks)
    stats_json = stats.result()
    for key in stats_json:  # image stats are (3, 1, 1) in LeRobot
        if key.startswith("observation.images."):
            for stat in ("mean", "std", "min", "max"):
                stats_json[key][stat] = [[[v]] for v in np.asarray(stats_json[key][stat]).reshape(-1)]
    (meta / "stats.json").write_text(json.dumps(stats_json, indent=2) + "\n")
    first = episodes[0]
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": len(episodes),
        "total_frames": index,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": data_file_size_mb,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features,
        "asyncvla": {"action_space": first.action_space, "step_period": first.step_period,
                     "views": list(views), "horizon": int(H), "sensor_window": int(T),
                     "action_names": list(ACTION_SPACES[first.action_space]),
                     "state_names": list(ROBOT_STATE_NAMES), **(extra_info or {})},
    }
    (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..cli_errors import run_cli
    from .vl_cache import SKIP_HINT

    return run_cli("asyncvla-export-lerobot", lambda: _run(args), hints={BagDataError: SKIP_HINT})


def _run(args: argparse.Namespace) -> int:
    from ..cli_errors import CliError
    from .bag_dataset import dataset_summary, load_episodes
    from .vl_cache import dataset_config_from_args

    if Path(args.output).exists() and not args.overwrite:
        raise CliError(f"{args.output} exists: pass --overwrite to replace it, or choose another "
                       "--output")
    config = dataset_config_from_args(args)
    episodes = load_episodes(args.bags, config, skip_errors=args.skip_errors)
    try:
        root = export_lerobot(episodes, args.output, robot_type=args.robot_type,
                              overwrite=args.overwrite,
                              extra_info={"dataset_config": config.as_dict()})
    except ValueError as exc:  # episodes that cannot share one dataset (views, fps, shapes)
        raise CliError(f"{exc} (export them separately, or align them with the same options)"
                       ) from exc
    print(json.dumps({"output": str(root), **dataset_summary(episodes)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
