"""LeRobot v3.0 export of synthetic bags, read back with pyarrow and compared with the Episodes."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Run from a plain checkout: put the package dir first; pytest's importlib mode may have registered
# the ROS package *directory* as a namespace package "asyncvla_training" - drop it for the real one.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from asyncvla_core.conventions import ROBOT_STATE_NAMES  # noqa: E402
from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_training.data import Episode, load_episodes  # noqa: E402
from asyncvla_training.data import lerobot_export  # noqa: E402
from asyncvla_training.data.lerobot_export import export_lerobot  # noqa: E402
from asyncvla_training.data.windows import decode_image  # noqa: E402


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export_bags")
    write_synthetic_bag(root / "first", "mcap", SyntheticBagSpec(duration=1.6))
    write_synthetic_bag(root / "second", "sqlite3", SyntheticBagSpec(
        duration=1.9, prompt="Retract the needle", start_ns=1_700_000_050_000_000_000))
    return root


@pytest.fixture(scope="module")
def episodes(bags: Path) -> list[Episode]:
    return load_episodes(bags)


def _array(column, shape) -> np.ndarray:
    return np.asarray(column.combine_chunks().flatten().flatten().to_numpy()
                      if len(shape) == 3 else column.combine_chunks().flatten().to_numpy()).reshape(shape)


def test_export_round_trip(tmp_path: Path, episodes: list[Episode]) -> None:
    root = export_lerobot(episodes, tmp_path / "ds")
    info = json.loads((root / "meta" / "info.json").read_text())
    n = sum(len(e) for e in episodes)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["total_episodes"] == 2 and info["total_frames"] == n and info["total_tasks"] == 2
    features = info["features"]
    assert features["observation.state"]["shape"] == [13]
    assert features["observation.state"]["names"] == list(ROBOT_STATE_NAMES)
    assert features["observation.sensor_window"]["shape"] == [65, 1026]
    assert features["action"]["shape"] == [8, 7]
    assert features["observation.images.view1"] == {"dtype": "image", "shape": [56, 56, 3],
                                                    "names": ["height", "width", "channels"]}
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]
    assert info["data_path"].format(chunk_index=0, file_index=0) == "data/chunk-000/file-000.parquet"

    table = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    assert table.num_rows == n and set(table.column_names) == set(features)
    states = _array(table["observation.state"], (n, 13))
    windows = _array(table["observation.sensor_window"], (n, 65, 1026))
    actions = _array(table["action"], (n, 8, 7))
    stamps = _array(table["observation.frame_stamps_ns"], (n, 2))
    np.testing.assert_array_equal(states, np.concatenate([e.states for e in episodes]))
    np.testing.assert_array_equal(windows, np.concatenate([np.asarray(e.sensor_windows) for e in episodes]))
    np.testing.assert_array_equal(actions, np.concatenate([e.actions for e in episodes]))
    np.testing.assert_array_equal(stamps, np.concatenate([e.frame_stamps_ns for e in episodes]))
    np.testing.assert_array_equal(table["time_ns"].to_numpy(),
                                  np.concatenate([e.times_ns for e in episodes]))
    np.testing.assert_array_equal(table["index"].to_numpy(), np.arange(n))
    first = len(episodes[0])
    np.testing.assert_allclose(table["timestamp"].to_numpy()[first:first + 3], [0.0, 0.1, 0.2], atol=1e-6)
    assert table["episode_index"].to_numpy()[first] == 1 and table["frame_index"].to_numpy()[first] == 0
    image = table["observation.images.view2"][first + 2].as_py()
    np.testing.assert_array_equal(decode_image(image["bytes"]), episodes[1].load_frames(int(episodes[1].sample_frame_sets[2]))[1])

    meta = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [m["length"] for m in meta] == [len(e) for e in episodes]
    assert [(m["dataset_from_index"], m["dataset_to_index"]) for m in meta] == [(0, first), (first, n)]
    assert meta[1]["tasks"] == ["Retract the needle"] and meta[1]["asyncvla/name"] == "second"
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert tasks["__index_level_0__"].to_pylist() == [episodes[0].prompt, "Retract the needle"]
    assert tasks["task_index"].to_pylist() == [0, 1]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    np.testing.assert_array_equal(table["task_index"].to_numpy()[[0, first]], [0, 1])

    stats = json.loads((root / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(stats["observation.state"]["mean"],
                               states.astype(np.float64).mean(axis=0), rtol=1e-6)
    # Per action dim over every step, shaped (1, 7) to broadcast over the (8, 7) chunk.
    np.testing.assert_allclose(stats["action"]["std"], actions.reshape(-1, 7).std(axis=0)[None],
                               rtol=1e-4, atol=1e-9)
    assert np.asarray(stats["observation.sensor_window"]["mean"]).shape == (1, 1026)
    assert np.asarray(stats["observation.images.view1"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.state"]["count"] == [n]


def test_export_splits_data_files_and_refuses_overwrite(tmp_path: Path, episodes: list[Episode]) -> None:
    root = export_lerobot(episodes, tmp_path / "small", data_file_size_mb=0.001)
    meta = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [m["data/file_index"] for m in meta] == [0, 1]
    second = pq.read_table(root / "data" / "chunk-000" / "file-001.parquet")
    assert second.num_rows == len(episodes[1]) and second["episode_index"].to_numpy()[0] == 1
    with pytest.raises(FileExistsError):
        export_lerobot(episodes, root)
    export_lerobot(episodes[:1], root, overwrite=True)
    assert json.loads((root / "meta" / "info.json").read_text())["total_episodes"] == 1
    assert not (root / "data" / "chunk-000" / "file-001.parquet").exists()


def test_cli(tmp_path: Path, bags: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert lerobot_export.main([str(bags), "--output", str(out), "--views", "view2",
                                "--action-space", "joint_delta", "--horizon", "4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    info = json.loads((out / "meta" / "info.json").read_text())
    assert summary["episodes"] == 2 and info["total_frames"] == summary["samples"]
    assert info["features"]["action"]["shape"] == [4, 7]
    assert info["asyncvla"]["action_space"] == "joint_delta" and info["asyncvla"]["views"] == ["view2"]
    assert "observation.images.view1" not in info["features"]
    assert lerobot_export.main([str(bags), "--output", str(out)]) == 2  # exists
    assert "exists" in capsys.readouterr().err


FILTERED_SCAN = """
import json, sys
import numpy as np
import pyarrow.dataset as pa_ds
root, wanted = sys.argv[1], json.loads(sys.argv[2])
paths = sorted(str(p) for p in __import__("pathlib").Path(root, "data").glob("*/*.parquet"))
table = pa_ds.dataset(paths, format="parquet").to_table(
    filter=pa_ds.field("episode_index").isin(wanted))
windows = table["observation.sensor_window"].combine_chunks().flatten().flatten().to_numpy()
print(json.dumps({"rows": table.num_rows,
                  "episodes": sorted(set(table["episode_index"].to_pylist())),
                  "index": table["index"].to_pylist(),
                  "window_sum": float(np.asarray(windows, dtype=np.float64).sum())}))
"""


def test_filtered_scan_of_an_episode_subset(tmp_path: Path, episodes: list[Episode]) -> None:
    """What LeRobotDataset(..., episodes=[...]) does: a pyarrow dataset scan filtered on
    episode_index, run in a child process (a nested fixed-size list crashed it with SIGSEGV)."""
    import subprocess

    root = export_lerobot(episodes, tmp_path / "ds", data_file_size_mb=0.001)  # two data files
    result = subprocess.run([sys.executable, "-c", FILTERED_SCAN, str(root), "[1]"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = json.loads(result.stdout)
    first = len(episodes[0])
    assert scan["rows"] == len(episodes[1]) and scan["episodes"] == [1]
    assert scan["index"] == list(range(first, first + len(episodes[1])))
    expected = float(np.asarray(episodes[1].sensor_windows, dtype=np.float64).sum())
    assert scan["window_sum"] == pytest.approx(expected, rel=1e-9)
    schema = pq.read_schema(root / "data" / "chunk-000" / "file-000.parquet")
    for name in ("observation.sensor_window", "action"):  # plain nested lists, as Array2D
        assert schema.field(name).type == pa.list_(pa.list_(pa.float32()))


def test_export_streams_from_a_generator_and_leaves_nothing_on_failure(tmp_path: Path,
                                                                       episodes: list[Episode]) -> None:
    def failing():
        yield episodes[0]
        raise RuntimeError("bag reader died")

    out = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        export_lerobot(failing(), out)
    assert list(tmp_path.iterdir()) == []  # no dataset, no staging directory
    root = export_lerobot(iter(episodes), out, batch_size=5, progress=True)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["total_frames"] == sum(len(e) for e in episodes)
    table = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet")
    np.testing.assert_array_equal(_array(table["action"], (info["total_frames"], 8, 7)),
                                  np.concatenate([e.actions for e in episodes]))


def test_lerobot_loads_the_export(tmp_path: Path, episodes: list[Episode]) -> None:
    """LeRobot's own LeRobotDataset: whole dataset, an episodes= subset, delta_timestamps."""
    pytest.importorskip("lerobot", reason="lerobot is not installed here (lerobot 0.4.4 pins "
                        "torch<2.11, huggingface-hub<0.36 and opencv<4.13, older than this venv's)")
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = export_lerobot(episodes, tmp_path / "ds")
    first = len(episodes[0])
    full = LeRobotDataset("local/asyncvla", root=root)
    assert len(full) == sum(len(e) for e in episodes) and full.num_episodes == 2
    item = full[first + 5]
    np.testing.assert_array_equal(item["observation.state"].numpy(), episodes[1].states[5])
    np.testing.assert_array_equal(item["action"].numpy(), episodes[1].actions[5])
    np.testing.assert_array_equal(item["observation.sensor_window"].numpy(),
                                  episodes[1].sensor_windows[5])
    image = item["observation.images.view2"]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 56, 56)
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy() * 255,
                               episodes[1].load_frames(int(episodes[1].sample_frame_sets[5]))[1], atol=1)
    subset = LeRobotDataset("local/asyncvla", root=root, episodes=[1],
                            delta_timestamps={"observation.state": [-0.1, 0.0]})
    assert len(subset) == len(episodes[1])
    item = subset[3]
    np.testing.assert_array_equal(item["observation.state"].numpy(), episodes[1].states[2:4])
    np.testing.assert_array_equal(item["action"].numpy(), episodes[1].actions[3])
    assert int(item["episode_index"]) == 1
