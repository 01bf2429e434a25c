"""Every asyncvla-* command on bad input: one line naming the file and the fix, exit 2, nothing
half-written (real bags written with rosbags, a real cache built with a tiny offline Qwen2.5-VL)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402
from asyncvla_training.data import lerobot_export, vl_cache  # noqa: E402
from asyncvla_training.train import eval_cli, train_cli  # noqa: E402

torch.set_num_threads(1)
SIZE, K = 56, 4


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: str) -> dict[str, Path]:
    """Two good bags, a bag without joint states, and a VL cache of the first good bag only."""
    root = tmp_path_factory.mktemp("cli_errors")
    spec = dict(duration=1.6, views=("view1",), image_size=(SIZE, SIZE))
    write_synthetic_bag(root / "bags" / "run0", "mcap", SyntheticBagSpec(**spec))
    write_synthetic_bag(root / "bags" / "run1", "mcap", SyntheticBagSpec(
        start_ns=1_700_000_100_000_000_000, **spec))
    write_synthetic_bag(root / "broken" / "nojoints", "mcap", SyntheticBagSpec(
        omit=("joints",), **spec))
    cache = root / "cache"
    assert vl_cache.main([str(root / "bags" / "run0"), "--cache-dir", str(cache), "--model",
                          tiny_qwen_dir, *_vl_args(), "--no-progress"]) == 0
    return {"root": root, "bags": root / "bags", "run0": root / "bags" / "run0",
            "broken": root / "broken" / "nojoints", "cache": cache}


def _vl_args() -> list[str]:
    return ["--image-size", f"{SIZE}x{SIZE}", "--num-feature-tokens", str(K), "--device", "cpu"]


def _train_args(tiny: str, out: Path, *extra: str) -> list[str]:
    sets = {"policy_size": "tiny", "image_width": SIZE, "image_height": SIZE,
            "num_feature_tokens": K, "batch_size": 4, "grad_accum_steps": 1, "warmup_steps": 1,
            "total_steps": 2, "eval_every": 0, "log_every": 1, "val_fraction": 0.0,
            "device": "cpu", "views": ["view1"]}
    argv = ["--stage", "1", "--vl-model", tiny, "--out", str(out), *extra]
    for key, value in sets.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    return argv


def _refused(capsys, prog: str, *needles: str) -> str:
    """The command's stderr ends in exactly one line ``prog: ...`` holding every needle."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: "), err
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def test_cache_vl_bad_bag_and_missing_model(data, tmp_path: Path, tiny_qwen_dir: str, capsys) -> None:
    out = tmp_path / "cache"
    assert vl_cache.main([str(data["broken"]), "--cache-dir", str(out), "--model", tiny_qwen_dir,
                          *_vl_args()]) == 2
    _refused(capsys, "asyncvla-cache-vl", str(data["broken"]), "/robot/joint_states",
             "--skip-errors")
    assert vl_cache.main([str(data["run0"]), "--cache-dir", str(out), "--model",
                          str(tmp_path / "no_model"), *_vl_args()]) == 2
    _refused(capsys, "asyncvla-cache-vl", str(tmp_path / "no_model"))
    assert not out.exists()


def test_train_cache_misses_name_the_cache_and_both_fixes(data, tmp_path: Path, tiny_qwen_dir: str,
                                                          capsys) -> None:
    out = tmp_path / "run"
    argv = _train_args(tiny_qwen_dir, out, "--bag", str(data["bags"]), "--vl-cache", str(data["cache"]))
    assert train_cli.main(argv) == 2
    _refused(capsys, "asyncvla-train", str(data["cache"]), "run1", "asyncvla-cache-vl",
             "--set vl_cache_fill=true")
    assert not out.exists()


def test_train_truncated_cache_file_is_named_and_kept(data, tmp_path: Path, tiny_qwen_dir: str,
                                                      capsys) -> None:
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(data["cache"], cache)
    (cache_file,) = cache.rglob("run0*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:200])
    out = tmp_path / "run"
    assert train_cli.main(_train_args(tiny_qwen_dir, out, "--bag", str(data["run0"]),
                                      "--vl-cache", str(cache))) == 2
    _refused(capsys, "asyncvla-train", str(cache_file), "unreadable", "asyncvla-cache-vl")
    assert cache_file.stat().st_size == 200 and not out.exists()


def test_train_refuses_out_with_a_run_and_resume_without_one(data, tmp_path: Path,
                                                             tiny_qwen_dir: str, capsys) -> None:
    out = tmp_path / "run"
    (out / "latest").mkdir(parents=True)
    (out / "log.jsonl").write_text("kept\n")
    argv = _train_args(tiny_qwen_dir, out, "--bag", str(data["run0"]), "--vl-cache", str(data["cache"]))
    assert train_cli.main(argv) == 2
    _refused(capsys, "asyncvla-train", str(out / "latest"), "--resume", "another --out")
    assert (out / "log.jsonl").read_text() == "kept\n" and not (out / "train_config.json").exists()
    assert train_cli.main(["--out", str(tmp_path / "empty"), "--resume"]) == 2
    _refused(capsys, "asyncvla-train", "nothing to resume")


def test_train_and_eval_on_a_bad_bag(data, tmp_path: Path, tiny_qwen_dir: str, capsys) -> None:
    out = tmp_path / "run"
    assert train_cli.main(_train_args(tiny_qwen_dir, out, "--bag", str(data["broken"]))) == 2
    _refused(capsys, "asyncvla-train", str(data["broken"]), "/robot/joint_states", "--skip-errors")
    assert not out.exists()
    # A real checkpoint to evaluate: two steps on the cached bag.
    assert train_cli.main(_train_args(tiny_qwen_dir, out, "--bag", str(data["run0"]),
                                      "--vl-cache", str(data["cache"]))) == 0
    capsys.readouterr()
    ckpt = out / "latest"
    evaluated = tmp_path / "eval"
    assert eval_cli.main(["--checkpoint", str(ckpt), "--out", str(evaluated),
                          "--bag", str(data["broken"])]) == 2
    _refused(capsys, "asyncvla-eval", str(data["broken"]), "--skip-errors")
    assert eval_cli.main(["--checkpoint", str(ckpt), "--out", str(evaluated), "--bag",
                          str(data["bags"]), "--vl-cache", str(data["cache"])]) == 2
    line = _refused(capsys, "asyncvla-eval", str(data["cache"]), "run1", "asyncvla-cache-vl")
    assert "vl_cache_fill" not in line  # eval has no such option
    assert eval_cli.main(["--checkpoint", str(tmp_path), "--out", str(evaluated),
                          "--synthetic", "1"]) == 2
    _refused(capsys, "asyncvla-eval", str(tmp_path))
    assert not evaluated.exists()
    # --skip-errors leaves the broken bag out and evaluates the rest.
    assert eval_cli.main(["--checkpoint", str(ckpt), "--out", str(evaluated), "--bag",
                          str(data["run0"]), "--bag", str(data["broken"]), "--vl-cache",
                          str(data["cache"]), "--skip-errors", "--max-plots", "0"]) == 0
    assert json.loads((evaluated / "metrics.json").read_text())["episodes"] == ["run0"]


def test_export_refuses_existing_output_and_bad_bags(data, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert lerobot_export.main([str(data["run0"]), "--output", str(out)]) == 2
    _refused(capsys, "asyncvla-export-lerobot", str(out), "--overwrite")
    assert (out / "mine.txt").read_text() == "keep" and len(list(out.iterdir())) == 1
    fresh = tmp_path / "fresh"
    assert lerobot_export.main([str(data["broken"]), "--output", str(fresh)]) == 2
    _refused(capsys, "asyncvla-export-lerobot", str(data["broken"]), "--skip-errors")
    assert not fresh.exists()
