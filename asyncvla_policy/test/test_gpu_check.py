"""The one-shot GPU check runs, minus CUDA itself, on this CPU: the Python entry point with the tiny
random model, the shell wrapper's --cpu-smoke, its refusals on a machine without a GPU, the
deadline watchdog, and the pure parts (agreement, verdicts against targets and anchors)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tools" / "bench"
SCRIPT = BENCH / "gpu_check.sh"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402
from check_report import NOT_RUN, CheckReport  # noqa: E402
from profile_cli import agreement  # noqa: E402

#: The smoke run's view sizes: the same view counts as the GPU run, smaller views (CPU time).
SMALL = ["--configs", "1x112x84,5x112x84,5x224x140"]
TINY = ["--arch", "tiny", "--device", "cpu", "--policy-config", "tiny", "--iters", "2",
        "--warmup", "1", "--expert-iters", "3", "--expert-warmup", "1", "--threads", "2"]
TINY_LM_HIDDEN = 64
K = 64  # --num-feature-tokens default


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join((str(BENCH), str(ROOT / "tools"), env.get("PYTHONPATH", "")))
    env["PYTHON"] = sys.executable
    return env


def _assert_stats(stats: dict) -> None:
    assert 0 < stats["p50_ms"] <= stats["p99_ms"], stats
    assert stats["iters"] >= 1


# ---------------------------------------------------------------------------- pure parts
def test_agreement_is_measured_on_the_tensors() -> None:
    ref = torch.tensor([[1.0, -4.0], [2.0, 0.5]])
    other = ref.clone()
    other[1, 0] += 0.25
    result = agreement(ref, other.numpy())
    assert result == {"max_abs_diff": 0.25, "reference_max_abs": 4.0, "relative": 0.0625,
                      "elements": 4}
    assert agreement(ref, ref)["max_abs_diff"] == 0.0
    with pytest.raises(ValueError, match="shapes"):
        agreement(ref, np.zeros(3))


def test_vl_verdict_against_target_and_anchors() -> None:
    target = gpu_check._vl_verdict((5, 640, 360), 40.0)
    assert target["meets_target"] is True
    assert target["ratios"] == {"plain_h100_over_optimized": round(178.0 / 40.0, 2),
                                "original_system_over_optimized": round(381.0 / 40.0, 2)}
    assert gpu_check._vl_verdict((5, 640, 360), 50.5)["meets_target"] is False
    one_view = gpu_check._vl_verdict((1, 640, 360), 20.0)
    assert one_view == {"meets_target": None, "ratios": {"plain_h100_over_optimized": 5.15}}
    assert gpu_check._vl_verdict((2, 112, 84), 20.0) == {"meets_target": None, "ratios": {}}


def test_summary_reads_the_parts() -> None:
    data = {"build": {"peak_memory_mb": 7000.0},
            "expert": {"meets_target": True, "peak_memory_mb": 500.0},
            "vl_update": {"5x640x360": {"meets_target": False, "peak_memory_mb": 9000.5},
                          "1x640x360": {"error": "OutOfMemoryError: ..."}}}
    summary = gpu_check.summarise(data)
    assert summary["vl_target_met"] is False and summary["expert_target_met"] is True
    assert summary["peak_memory_mb"] == 9000.5
    assert gpu_check.summarise({})["vl_target_met"] is None  # not measured is not "failed"


def test_configs_option_is_checked() -> None:
    assert gpu_check._parse_args(["--configs", "2x64x48"]).configs == ((2, 64, 48),)
    for bad in ("5x640", "6x640x360", "0x640x360", "ax1x1"):
        with pytest.raises(SystemExit):
            gpu_check._parse_args(["--configs", bad])


def test_3b_architecture_is_built_where_the_device_context_says() -> None:
    """The GPU run builds the 3B model directly on the GPU (no CPU copy to move): the same call
    on the meta device allocates nothing and shows every parameter made there, in the dtype."""
    from asyncvla_testing.tiny_vlm import (build_random_qwen_vl, build_tiny_tokenizer,
                                           random_qwen_vl_config)

    config = random_qwen_vl_config("3b", build_tiny_tokenizer())
    model = build_random_qwen_vl(config, "meta", torch.bfloat16)
    params = list(model.parameters())
    assert {p.device.type for p in params} == {"meta"} and {p.dtype for p in params} == {torch.bfloat16}
    assert 3.7e9 < sum(p.numel() for p in params) < 3.8e9  # Qwen2.5-VL-3B: 3.75 B
    assert config.text_config.hidden_size == gpu_check.EXPERT_VL_DIM
    with pytest.raises(ValueError, match="unknown architecture"):
        random_qwen_vl_config("7b", build_tiny_tokenizer())


# ---------------------------------------------------------------------------- report
def test_report_keeps_other_parts_when_one_fails_or_is_skipped() -> None:
    out = io.StringIO()
    report = CheckReport({"schema": "x"}, deadline_s=60, stream=out)
    report.declare(("a",), ("b",), ("c",), ("never",))
    assert report.run_part(("a",), lambda put: put(value=float("nan"), n=1))
    assert not report.run_part(("b",), lambda put: (put(first=1), 1 / 0))
    assert not report.run_part(("c",), lambda put: put(value=2), needs_s=3600)
    assert report.emit() and not report.emit()  # printed once
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["a"]["value"] == "nan" and "error" not in data["a"]  # valid JSON, NaN visible
    assert data["b"]["first"] == 1 and data["b"]["error"].startswith("ZeroDivisionError")
    assert data["c"]["error"].startswith("skipped:") and "value" not in data["c"]
    assert data["never"]["error"] == NOT_RUN
    assert data["ok"] is False and not report.ok


def test_watchdog_prints_the_report_at_the_deadline(tmp_path: Path) -> None:
    partial = tmp_path / "partial.json"
    script = textwrap.dedent(f"""
        import time
        from check_report import CheckReport
        report = CheckReport({{}}, deadline_s=2.0, partial_path={str(partial)!r})
        report.declare(("fast",), ("slow",), ("later",))
        report.start_watchdog()
        report.run_part(("fast",), lambda put: put(done=True))
        report.run_part(("slow",), lambda put: (put(started=True), time.sleep(60)))
        print("not reached")
    """)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["fast"]["done"] is True and "error" not in data["fast"]
    assert data["slow"]["started"] is True and data["slow"]["error"].startswith("timed out")
    assert data["later"]["error"] == NOT_RUN and data["ok"] is False
    assert json.loads(partial.read_text())["fast"]["done"] is True  # written after each part


# ---------------------------------------------------------------------------- the entry point
def test_tiny_run_on_cpu_reports_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    """gpu_check's own code path on the CPU, with a view size the model refuses (one part fails
    with its reason, the others report)."""
    out = io.StringIO()
    configs = "1x112x84,5x112x84,1x20x20"
    code = gpu_check.main([*TINY, "--configs", configs, "--deadline-s", "900"], stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert code == 1 and data["ok"] is False  # the 20x20 part failed
    assert data["schema"] == gpu_check.SCHEMA
    assert data["environment"]["device"] == "cpu" and data["environment"]["threads"] == 2
    assert "error" not in data["build"] and data["build"]["arch"] == "tiny"
    assert data["build"]["dtype"] == "float32" and data["build"]["seconds"] > 0
    assert list(data["vl_update"]) == configs.split(",")  # configured order, not run order
    bad = data["vl_update"]["1x20x20"]
    assert bad["error"].startswith("ValueError") and "28 px" in bad["error"]
    for key in ("1x112x84", "5x112x84"):
        part = data["vl_update"][key]
        assert "error" not in part, part
        assert part["views"] == int(key[0]) and (part["width"], part["height"]) == (112, 84)
        _assert_stats(part["optimized"])
        _assert_stats(part["plain"])
        assert part["tokens"] > part["views"] * 12  # 12 visual tokens per 112x84 view + text
        assert part["speedup_p50"] == pytest.approx(
            part["plain"]["p50_ms"] / part["optimized"]["p50_ms"], rel=1e-2)
        agree = part["agreement"]
        assert agree["elements"] == K * TINY_LM_HIDDEN  # the (K, D) features were compared
        assert 0 <= agree["max_abs_diff"] <= 1e-4 and agree["reference_max_abs"] > 0
        assert part["target_p50_ms"] is None and part["meets_target"] is None
        assert part["peak_memory_mb"] > 0
    assert data["vl_update"]["5x112x84"]["tokens"] > data["vl_update"]["1x112x84"]["tokens"]
    expert = data["expert"]
    assert "error" not in expert, expert
    assert expert["policy_config"] == "tiny" and expert["params_m"] > 0
    assert expert["callable"] == "plan_tick"  # what the action node runs per tick
    _assert_stats(expert["eager"])
    _assert_stats(expert["compiled"])
    compiled = expert["compiled"]
    assert compiled["mode"] == "reduce-overhead" and compiled["cuda_graphs"] is False
    assert compiled["setup_s"] > 0  # the compilation, at the first call
    assert compiled["agreement"]["elements"] == 8 * 7  # horizon x action dims
    assert 0 <= compiled["agreement"]["max_abs_diff"] <= 1e-4
    assert compiled["agreement"]["reference_max_abs"] > 0
    assert expert["cuda_graph"] == {"skipped": "CUDA graphs need a CUDA device"}
    assert expert["ratios"]["eager_p99_over_compiled"] == pytest.approx(
        expert["eager"]["p99_ms"] / compiled["p99_ms"], rel=2e-2)
    assert expert["target_p99_ms"] == gpu_check.EXPERT_TARGET_P99_MS
    assert expert["anchors"] == {"original_system_ms": [20.0, 30.0]}
    best = expert[expert["best"]]
    assert expert["meets_target"] is (best["p99_ms"] <= 1.0)
    assert data["summary"]["vl_target_met"] is None  # 5x640x360 not in this run
    assert data["summary"]["peak_memory_mb"] >= data["expert"]["peak_memory_mb"]
    assert torch.backends.mha.get_fastpath_enabled()  # restored after the compiled calls


def test_deadline_ends_the_run_with_one_json(tmp_path: Path) -> None:
    """A run that cannot finish by its deadline (100000 timed VL updates) prints one JSON at
    the deadline: the part under way timed out, every later one not run. Which part that is
    depends on the machine (a quiet AVX-512 core builds the tiny model in 1.8 s, a busy one may
    still be importing), so the test finds it instead of assuming it."""
    start = time.monotonic()
    slow = list(TINY)
    slow[slow.index("--iters") + 1] = "100000"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py"), *slow, *SMALL, "--deadline-s", "4"],
        capture_output=True, text=True, env=_env(), timeout=120)
    assert time.monotonic() - start < 60
    assert proc.returncode == 1, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["ok"] is False and data["wall_s"] < 12
    parts = [data["build"], *data["vl_update"].values(), data["expert"]]
    states = ["timed out" if p.get("error", "").startswith("timed out")
              else "skipped" if p.get("error", "").startswith("skipped:")
              else "not run" if p.get("error") == NOT_RUN else "done" if "error" not in p
              else p["error"] for p in parts]
    first_open = next(n for n, st in enumerate(states) if st != "done")
    # The part under way timed out, or the check saw it could not fit the time left and
    # skipped it; nothing after it ran.
    assert states[first_open] in ("timed out", "skipped", "not run"), states
    assert all(st in ("skipped", "not run") for st in states[first_open + 1:]), states
    assert "done" not in states[first_open:], states


# ---------------------------------------------------------------------------- the wrapper
def test_shell_wrapper_cpu_smoke() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True,
                          env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["ok"] is True and data["environment"]["device"] == "cpu"
    assert list(data["vl_update"]) == ["1x112x84", "5x112x84", "5x224x140"]
    for part in (*data["vl_update"].values(), data["expert"]["compiled"]):
        assert "error" not in part and part["agreement"]["elements"] > 0
    assert data["wall_s"] < 440  # inside the Python run's own deadline


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_shell_wrapper_refuses_a_machine_without_gpu(tmp_path: Path) -> None:
    env = _env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "nvidia-smi").exists())
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "nvidia-smi not found" in json.loads(proc.stdout)["error"]
    # A driver that lists a GPU (``nvidia-smi -L`` prints "GPU 0: NAME (UUID: ...)"), but a torch
    # without CUDA: refused before anything is built, naming torch.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text(
        "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-6f1e2a3b-0000-0000-0000-000000000000)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert data["ok"] is False and "CUDA build of torch" in data["error"]
    assert "NVIDIA H200" in proc.stderr  # what the driver listed is logged


def test_shell_wrapper_time_limit_stops_the_run_with_its_figures() -> None:
    """``timeout`` ends a run that would overrun (here: endless VL timing); the report printed
    on SIGTERM keeps the parts done and names the one cut short."""
    env = _env()
    env["GPU_CHECK_LIMIT_S"] = "60"
    start = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu-smoke", "--", "--iters", "1000000",
                           "--loop-max-s", "100000", "--deadline-s", "100000"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert time.monotonic() - start < 75
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    cut = [key for key, part in data["vl_update"].items()
           if part.get("error", "").startswith("terminated (SIGTERM)")]
    assert len(cut) == 1, data["vl_update"]
    if data["build"].get("error") is None:  # built in time (a busy machine may not get that far)
        assert data["build"]["seconds"] > 0


def test_shell_wrapper_prints_json_when_python_prints_nothing(tmp_path: Path) -> None:
    env = _env()
    env["PYTHON"] = "false"  # an interpreter that exits 1 without output
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False and "printed no JSON (exit status 1" in data["error"]


def test_cuda_graph_variant_runs_only_where_a_capture_can_hold() -> None:
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # constructing a device needs no GPU
    assert gpu_check._variant_skip("cuda_graph", cuda, "infer") is None
    assert gpu_check._variant_skip("cuda_graph", cuda, "plan_tick") is None
    assert "synchronise" in gpu_check._variant_skip("cuda_graph", cuda, "forward")
    assert "CUDA device" in gpu_check._variant_skip("cuda_graph", cpu, "infer")
    assert gpu_check._variant_skip("compiled", cpu, "forward") is None
    assert list(gpu_check.EXPERT_VARIANTS) == ["cuda_graph", "compiled"]


# ---------------------------------------------------------------------------- README's table
def test_the_benchmarks_doc_renders_the_gpu_tables_from_a_committed_run() -> None:
    """The doc's GPU tables come from docs/benchmarks/gpu_check.json when a GPU run is committed
    ("not measured" until then), so committing a run changes them and nothing is pasted."""
    from gpu_check_table import render

    doc = (ROOT / "docs" / "benchmarks" / "README.md").read_text()
    run = ROOT / "docs" / "benchmarks" / "gpu_check.json"
    expected = render(json.loads(run.read_text()) if run.exists() else None)
    assert "<!-- table: gpu-check -->\n" + expected in doc
    assert "tools/bench/gpu_check.sh > gpu_check.json" in doc
    assert "python tools/bench/gpu_check_table.py gpu_check.json" in doc


def test_table_renders_a_result_next_to_targets_and_anchors(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from gpu_check_table import main as table_main, render

    stats = {"p50_ms": 40.0, "p99_ms": 44.25, "mean_ms": 41.0, "iters": 20}
    agree = {"max_abs_diff": 0.03125, "reference_max_abs": 12.5, "relative": 0.0025, "elements": 4}
    result = {
        "environment": {"gpu": "NVIDIA H200", "torch": "2.13.0", "cuda": "12.8"},
        "build": {"seconds": 21.5},
        "vl_update": {"5x640x360": {"optimized": stats, "plain": {**stats, "p50_ms": 160.0},
                                    "speedup_p50": 4.0, "agreement": agree,
                                    **gpu_check._vl_verdict((5, 640, 360), 40.0)},
                      "1x640x360": {"error": "OutOfMemoryError: ..."}},
        "expert": {"eager": {**stats, "p50_ms": 4.0, "p99_ms": 5.0},
                   "cuda_graph": {**stats, "p50_ms": 0.5, "p99_ms": 0.8, "agreement": agree},
                   "compiled": {"error": "BackendCompilerFailed: no C compiler"}},
        "summary": {"peak_memory_mb": 9216.0},
    }
    text = render(result)
    assert "GPU: NVIDIA H200, torch 2.13.0, CUDA 12.8. Model construction" in text and "21.5 s" in text
    assert ("| 5 x 640x360 | 40.0 / 44.2 ms | 160.0 / 44.2 ms | 4.00x | 3.1e-02 (values up to 12) "
            "| p50 <= 50 ms: met | 178 ms (4.45x) | 381 ms (9.53x) |") in text
    assert "| 1 x 640x360 | failed (see JSON) |" in text
    assert "| 5 x 1280x720 | not measured |" in text
    assert "| eager | 4.0 / 5.0 ms | - | not met | 5-7.5x |" in text
    assert "| CUDA graph (captured, replayed) | 0.5 / 0.8 ms | 3.1e-02 (values up to 12) | met | 40-60x |" in text
    assert '| torch.compile "reduce-overhead" | failed (see JSON) |' in text
    assert "Peak GPU memory (torch, largest part): 9.0 GiB." in text
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps(result))
    assert table_main([str(path)]) == 0 and capsys.readouterr().out == text
    path.write_text("{not json")
    assert table_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err


def test_ratios_keep_three_significant_digits() -> None:
    """A run slowed beside other jobs gave eager/compiled 0.0479, written as 0.05 (4 % off) when
    ratios were rounded to 2 decimals; the test above then failed on a correct run."""
    assert gpu_check.ratio(0.47925, 10.0) == 0.0479
    assert gpu_check.ratio(1234.5, 10.0) == 123.0
