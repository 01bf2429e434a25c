"""Every command documented in TRAINING_DATA.md and TRAINING.md runs as written, in a shell that
sourced ``tools/env.sh`` (the installed ``asyncvla-*`` commands, not the Python modules).

The documents' shell blocks and inline commands are read from the files themselves, so a changed
document is what gets tested. To fit a 2-core CPU the run is scaled down by these edits only
(nothing else in a command is changed):

- ``/tmp/`` -> this test's own temporary directory;
- ``python tools/...`` (a script of the repository, run from its root) -> that script's absolute path;
- ``--nproc_per_node 4`` -> ``--nproc_per_node 2`` (still DDP over gloo, two processes);
- training commands get ``--set total_steps=2 --set warmup_steps=1 --set grad_accum_steps=1
  --set eval_every=2 --set save_every=2`` appended (unless they set ``total_steps`` themselves or
  resume, which takes the run's own config);
- ``Qwen/Qwen2.5-VL-3B-Instruct`` is a directory of that name in the working directory holding the
  tiny random Qwen2.5-VL (a local directory wins over a hub id, as with the real model);
- ``bags/`` and ``val_bags/`` hold synthetic recordings (views view1, view2).

The two documents run side by side (each in its own order; neither reads what the other writes).

Not run, and said so by the test: templates (``...``, ``HOST``), ``ros2 bag record`` where the
``ros2 bag`` verb is not installed (rosbag2 is not on PyPI), ``python -m pytest``, and the
benchmarks ``python tools/bench/bench_*.py`` (each has a CI-sized test of its own, e.g.
``test_staleness_benchmark.py``).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from asyncvla_testing.synthetic_bag import SyntheticBagSpec, write_synthetic_bag  # noqa: E402
from asyncvla_testing.tiny_vlm import ensure_tiny_qwen_vl  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parent
DOCS = (PACKAGE / "TRAINING_DATA.md", PACKAGE / "TRAINING.md")
SCALE_DOWN = ["--set", "total_steps=2", "--set", "warmup_steps=1", "--set", "grad_accum_steps=1",
              "--set", "eval_every=2", "--set", "save_every=2"]
INLINE = re.compile(r"`((?:asyncvla-[a-z-]+|python -m asyncvla_training[\w.]*|python tools/[\w/]+\.py"
                    r"|torchrun) [^`]+)`")


def documented_commands(doc: Path) -> list[str]:
    """Shell commands of ``doc`` in order: ```bash blocks (continuations joined, comments and
    ``[--optional ARG]`` groups dropped) and inline `asyncvla-...` / `python -m ...` /
    `python tools/...` spans."""
    text = doc.read_text()
    commands: list[tuple[int, str]] = []
    for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block.group(1))
        for offset, line in enumerate(joined.splitlines()):
            line = re.sub(r"\s\[--[^\]]*\]", "", line)
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append((block.start() + offset, shlex.join(tokens)))
    prose = re.sub(r"```.*?```", lambda m: " " * len(m.group(0)), text, flags=re.S)
    for span in INLINE.finditer(prose):
        commands.append((span.start(), span.group(1)))
    return [c for _, c in sorted(commands)]


def why_not_run(command: str) -> str | None:
    if "..." in command or "HOST" in command:
        return "a template"
    if command.startswith("python -m pytest"):
        return "the test suite itself"
    if re.match(r"python tools/bench/bench_\w+\.py", command):
        return "a benchmark (minutes of training): its own test runs it at CI size"
    if command.startswith("ros2 bag"):
        probe = subprocess.run(["bash", "-c", "ros2 bag --help"], capture_output=True)
        if probe.returncode != 0:
            return "`ros2 bag` is not installed (rosbag2 is not on PyPI)"
    return None


def scaled_down(command: str, tmp: Path) -> str:
    command = command.replace("/tmp/", f"{tmp}/").replace("--nproc_per_node 4", "--nproc_per_node 2")
    command = command.replace("python tools/", f"python {ROOT}/tools/")  # run from another directory
    training = command.startswith("asyncvla-train") or "train.train_cli" in command
    if training and "total_steps=" not in command and "--resume" not in command:
        command += " " + shlex.join(SCALE_DOWN)
    return command


def test_documented_commands_parse() -> None:
    training = documented_commands(PACKAGE / "TRAINING.md")
    data = documented_commands(PACKAGE / "TRAINING_DATA.md")
    assert any(c.startswith("asyncvla-eval --checkpoint runs/s2/best") for c in training)
    assert any(c.startswith("torchrun --nproc_per_node 4 -m asyncvla_training.train.train_cli")
               for c in training)
    assert any(c.startswith("asyncvla-export-lerobot") for c in data)
    assert all("#" not in c.split("'")[0] for c in training + data)  # comments dropped


@pytest.mark.timeout(1200)
def test_every_documented_command_runs_as_documented(tmp_path: Path) -> None:
    if not (ROOT / "install" / "setup.bash").is_file():
        pytest.skip("the workspace is not built: run tools/setup_workspace.sh")
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    tiny = ensure_tiny_qwen_vl(tmp_path / "tiny")
    shutil.copytree(tiny, work / "Qwen" / "Qwen2.5-VL-3B-Instruct")
    for name, storage, start in (("bags/run01", "mcap", 0), ("bags/run02", "sqlite3", 1),
                                 ("val_bags/run03", "mcap", 2)):
        write_synthetic_bag(work / name, storage, SyntheticBagSpec(
            duration=3.0, start_ns=1_700_000_000_000_000_000 + start * 100_000_000_000))
    env = dict(os.environ, VENV=os.environ.get("VENV") or sys.prefix, OMP_NUM_THREADS="1")
    shell = f". {shlex.quote(str(ROOT / 'tools' / 'env.sh'))} && cd {shlex.quote(str(work))} && "

    which = subprocess.run(["bash", "-c", shell + "which asyncvla-train"], env=env,
                           capture_output=True, text=True)
    assert which.returncode == 0 and which.stdout.strip().endswith("asyncvla-train"), which

    def run_document(doc: Path) -> tuple[list[str], dict[str, str], str | None]:
        """The document's commands in order; stops at the first that fails (its message)."""
        ran, skipped = [], {}
        for command in documented_commands(doc):
            reason = why_not_run(command)
            if reason:
                skipped[command] = reason
                continue
            run = scaled_down(command, work / "tmp")
            started = time.monotonic()
            result = subprocess.run(["bash", "-c", shell + run], env=env, capture_output=True,
                                    text=True, timeout=600)
            print(f"{time.monotonic() - started:6.1f} s  {command}")
            if result.returncode != 0:
                tail = (result.stdout + result.stderr)[-3000:]
                return ran, skipped, f"{doc.name}: `{command}` exited {result.returncode}\n{tail}"
            ran.append(command)
        return ran, skipped, None

    # The two documents start from the same directory and neither reads what the other writes
    # (TRAINING_DATA.md: vl_cache/, ds/, out_bag; TRAINING.md: tmp/, cache/, runs/), so they run
    # side by side, each in its own order: their commands are mostly one torch thread each.
    with ThreadPoolExecutor(max_workers=len(DOCS)) as pool:
        outcomes = list(pool.map(run_document, DOCS))
    ran, skipped = [], {}
    for doc_ran, doc_skipped, failure in outcomes:
        assert failure is None, failure
        ran += doc_ran
        skipped.update(doc_skipped)
    print(f"ran {len(ran)} documented commands; not run: {skipped}")
    assert len(ran) >= 10
    assert (work / "runs" / "s2" / "eval_age" / "metrics.json").is_file()
    assert (work / "ds" / "meta" / "info.json").is_file()
    assert set(skipped.values()) <= {"a template", "the test suite itself",
                                     "`ros2 bag` is not installed (rosbag2 is not on PyPI)",
                                     "a benchmark (minutes of training): its own test runs it "
                                     "at CI size"}
