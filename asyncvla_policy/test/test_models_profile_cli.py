"""tools/bench/profile_cli.py prints one JSON object with the documented keys (tiny model, CPU)."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                                "bench"))
from profile_cli import main  # noqa: E402


def test_tiny_profile_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--tiny", "--iters", "2", "--warmup", "1", "--views", "2", "--width", "112",
                 "--height", "84", "--device", "cpu", "--policy-config", "tiny"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(out.strip().splitlines()) == 1  # exactly one JSON line on stdout
    result = json.loads(out)
    assert {"vl", "action_expert", "device", "dtype", "peak_memory_mb", "torch", "transformers"} <= set(result)
    assert {"p50_ms", "p99_ms", "mean_ms", "tokens", "views", "width", "height"} <= set(result["vl"])
    assert {"p50_ms", "p99_ms"} <= set(result["action_expert"])
    assert result["vl"]["views"] == 2 and (result["vl"]["width"], result["vl"]["height"]) == (112, 84)
    assert result["vl"]["tokens"] > 2 * 12  # 12 visual tokens per 112x84 view + text
    assert 0 < result["vl"]["p50_ms"] <= result["vl"]["p99_ms"]
    assert 0 < result["action_expert"]["p50_ms"] <= result["action_expert"]["p99_ms"]
    assert result["device"] == "cpu" and result["dtype"] == "float32"
    assert result["peak_memory_mb"] > 0
    # The plain transformers path, side by side in the same run: same tokens, same features.
    assert result["vl_plain"]["tokens"] == result["vl"]["tokens"]
    assert result["vl_feature_max_abs_diff"] <= 1e-4
    assert result["vl_speedup_p50"] == pytest.approx(
        result["vl_plain"]["p50_ms"] / result["vl"]["p50_ms"], rel=1e-2)
    assert 0 < result["vl"]["preprocess_p50_ms"] and 0 < result["vl_plain"]["preprocess_p50_ms"]
    assert 0 < result["action_expert_bf16"]["p50_ms"]
    assert 0 < result["action_expert_bf16_max_abs_diff"] < 0.1
    assert result["threads"] >= 1


def test_missing_model_path_fails_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-path", "/no/such/dir", "--iters", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "/no/such/dir" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_bad_arguments_exit_with_usage() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--tiny", "--iters", "0"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["--tiny", "--random-3b"])  # mutually exclusive
