"""asyncvla-train / asyncvla-eval entry points end to end on generated episodes (tiny Qwen2.5-VL)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
if getattr(sys.modules.get("asyncvla_training"), "__file__", "") is None:
    del sys.modules["asyncvla_training"]

from asyncvla_core.conventions import ACTION_SPACES  # noqa: E402
from asyncvla_policy.checkpoint import read_checkpoint_config  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402
from asyncvla_training.train import eval_cli, train_cli  # noqa: E402
from asyncvla_training.train.config import TrainConfig  # noqa: E402

torch.set_num_threads(1)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_tiny_qwen_vl(tmp_path_factory.getbasetemp() / "tiny_qwen_vl")


def _args(tiny: str) -> list[str]:
    sets = {
        "policy_size": "tiny",
        "image_width": 56,
        "image_height": 56,
        "num_feature_tokens": 4,
        "batch_size": 8,
        "grad_accum_steps": 1,
        "lr": 1e-3,
        "sensor_lr": 1e-3,
        "warmup_steps": 3,
        "total_steps": 40,
        "eval_every": 10,
        "save_every": 10,
        "log_every": 10,
        "synthetic_length": 30,
        "val_fraction": 0.25,
        "device": "cpu",
    }
    out = ["--vl-model", tiny, "--synthetic", "4"]
    for key, value in sets.items():
        out += ["--set", f"{key}={json.dumps(value)}"]
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_qwen_dir) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert (
        train_cli.main(["--stage", "1", "--out", str(out), "--stop-at", "20", *_args(tiny_qwen_dir)]) == 0
    )
    assert read_checkpoint_config(out / "latest")[1]["step"] == 20
    assert train_cli.main(["--out", str(out), "--resume"]) == 0  # config from out/train_config.json
    return out


def test_train_cli_writes_config_log_and_checkpoints(run_dir: Path, tiny_qwen_dir: str) -> None:
    cfg = TrainConfig.load(run_dir / "train_config.json")
    assert cfg.stage == 1 and cfg.synthetic_episodes == 4 and cfg.vl_model_path == tiny_qwen_dir
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if r["event"] == "train"]
    assert steps == [10, 20, 30, 40] and any(r["event"] == "resume" and r["step"] == 20 for r in log)
    train_losses = [r["loss"] for r in log if r["event"] == "train"]
    assert train_losses[-1] < train_losses[0]
    _, meta = read_checkpoint_config(run_dir / "best")
    assert meta["step"] in (10, 20, 30, 40) and meta["val_loss"] > 0
    assert len(meta["datasets"]["val"]) == 1 and len(meta["datasets"]["train"]) == 3


def test_train_cli_rejects_bad_config(tmp_path: Path, capsys) -> None:
    assert train_cli.main(["--out", str(tmp_path), "--set", "lr=-1"]) == 2
    assert "lr" in capsys.readouterr().err
    (tmp_path / "c.json").write_text(json.dumps({"stage": 1, "typo_key": 3}))
    assert train_cli.main(["--config", str(tmp_path / "c.json")]) == 2
    assert train_cli.main(["--out", str(tmp_path / "o"), "--bag", str(tmp_path / "no_bags_here")]) == 2
    assert "no_bags_here" in capsys.readouterr().err.splitlines()[-1]


def test_eval_cli_metrics_and_plots(run_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    # seed 0 and 30 steps: the same generated episodes the run trained and validated on
    argv = [
        "--checkpoint",
        str(run_dir / "latest"),
        "--out",
        str(out),
        "--synthetic",
        "4",
        "--synthetic-seed",
        "0",
        "--synthetic-length",
        "30",
        "--max-plots",
        "2",
    ]
    assert eval_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    names = list(ACTION_SPACES["ee_delta"])
    assert metrics["dim_names"] == names and metrics["num_samples"] == 120 == summary["num_samples"]
    mae, rmse = np.array(metrics["mae"]), np.array(metrics["rmse"])
    assert mae.shape == (7,) and np.all(np.isfinite(mae)) and np.all(mae >= 0) and np.all(rmse >= mae)
    assert np.all(mae[:6] < 0.05)  # metres / radians: millimetre-scale offsets, not garbage
    per_h = np.array(metrics["per_horizon_mae"])
    assert per_h.shape == (8, 7)
    assert per_h[-1, 0] > per_h[0, 0]  # offsets grow along the chunk, and so do their errors
    assert metrics["normalized_mse"] < metrics["baseline_normalized_mse"]  # better than the mean chunk
    assert set(metrics["per_episode"]) == {f"synthetic_{i:03d}" for i in range(4)}
    assert metrics["per_dim"]["dx_m"]["mae"] == pytest.approx(mae[0])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["episode_synthetic_000.png", "episode_synthetic_001.png", "error_by_horizon.png"]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
    assert sorted(metrics["plots"]) == pngs

    stale = tmp_path / "eval_stale"
    assert eval_cli.main([*argv[:2], "--out", str(stale), *argv[4:], "--vl-ages-ms", "200,0,500",
                          "--max-plots", "0"]) == 0
    stale_metrics = json.loads((stale / "metrics.json").read_text())
    assert stale_metrics["vl_age_ms"] == 200 and stale_metrics["mae"] != metrics["mae"]
    rows = stale_metrics["by_vl_age"]
    assert [r["vl_age_ms"] for r in rows] == [200, 0, 500]
    # The age given is the one the node would compute: the frames' own 30 ms when fresh, and
    # growing with the age asked for (below it only where an episode has no older frames).
    given = {r["vl_age_ms"]: r["mean_given_age_ms"] for r in rows}
    assert given[0] == pytest.approx(30.0) and given[0] < given[200] < given[500]
    assert given[200] > 200
    assert rows[1]["normalized_mse"] == pytest.approx(metrics["by_vl_age"][0]["normalized_mse"])
    assert len({r["normalized_mse"] for r in rows}) == 3
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["by_vl_age"]) == {"200", "0", "500"}


def test_eval_cli_refuses_features_of_another_model(run_dir: Path, tmp_path: Path, capsys) -> None:
    other = ensure_tiny_qwen_vl(tmp_path / "another_model")
    argv = [
        "--checkpoint",
        str(run_dir / "best"),
        "--out",
        str(tmp_path / "e"),
        "--synthetic",
        "1",
        "--vl-model",
        other,
    ]
    assert eval_cli.main(argv) == 2
    assert "trained on" in capsys.readouterr().err
    assert (
        eval_cli.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "e"), "--synthetic", "1"])
        == 2
    )


def _run_on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run a command with stderr on a pseudo-terminal (as in an interactive shell) and stdout on
    a pipe (as when logging to a file); returns (rc, stdout, what the terminal showed)."""
    import pty
    import select
    import subprocess

    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    out = proc.stdout.read()
    rc = proc.wait(timeout=60)
    os.close(master)
    return rc, out, shown.decode("utf-8", "replace")


def test_progress_bars_on_a_terminal_and_json_lines_for_logs(run_dir: Path, tiny_qwen_dir: str,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "asyncvla_training.train.train_cli", "--stage", "1", "--out",
            str(out), *_args(tiny_qwen_dir), "--set", "total_steps=12", "--set", "eval_every=6",
            "--set", "log_every=6"]
    rc, stdout, terminal = _run_on_a_terminal(argv)
    assert rc == 0, terminal[-2000:]
    assert "stage 1" in terminal and "12/12" in terminal and "loss=" in terminal
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", terminal)  # elapsed<remaining: the ETA
    records = [json.loads(line) for line in stdout.splitlines()]  # stdout: JSON lines only
    assert [r["step"] for r in records if r["event"] == "train"] == [6, 12]
    assert records[-1]["event"] == "done"
    rc, stdout, terminal = _run_on_a_terminal(
        [sys.executable, "-m", "asyncvla_training.train.eval_cli", "--checkpoint",
         str(run_dir / "latest"), "--out", str(tmp_path / "eval"), "--synthetic", "1",
         "--synthetic-length", "10", "--max-plots", "0"])
    assert rc == 0, terminal[-2000:]
    assert "eval" in terminal and "10/10" in terminal and "sample/s" in terminal
    assert json.loads(stdout.strip().splitlines()[-1])["num_samples"] == 10
