"""The benchmarks' shared run record (tools/bench/run_record.py) and the pieces of the newer
benchmarks that can run in a test: what the docs' tables are rendered from."""
from __future__ import annotations

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "bench")
sys.path.insert(0, os.path.abspath(BENCH))

from run_record import emit, run_record, summary  # noqa: E402


def test_summary_counts_and_percentiles() -> None:
    got = summary(range(1, 201))
    assert got["n"] == 200 and got["max"] == 200.0
    assert got["p50"] == pytest.approx(100.5) and 197.0 < got["p99"] < 200.0
    assert summary([]) == {"n": 0, "p50": None, "p99": None, "max": None}


def test_run_record_names_the_cpu_and_the_command_without_the_output_file() -> None:
    record = run_record("x", [os.path.join(BENCH, "bench_x.py"), "--count", "3", "--out",
                              "/tmp/f.json"])
    assert record["command"] == "python tools/bench/bench_x.py --count 3"
    assert record["benchmark"] == "x" and record["cpu"]["kind"] and record["cpu"]["cpu_count"]
    assert record["date"].endswith(" UTC") and len(record["date"]) == len("2026-01-01 00:00 UTC")


def test_emit_writes_the_same_object_and_fails_in_one_line(tmp_path, capsys) -> None:
    import json

    emit({"a": 1}, str(tmp_path / "run.json"))
    assert json.loads((tmp_path / "run.json").read_text()) == {"a": 1}
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    with pytest.raises(SystemExit) as info:
        emit({"a": 1}, str(tmp_path / "no" / "such" / "dir.json"))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_fault_recovery_collects_what_the_tests_print() -> None:
    import bench_fault_recovery as bench

    out = ("asyncvla_action_node/test/test_fault_injection.py FAULT {\"fault\": \"sensor\", "
           "\"recovery_s\": 0.2}\nFAULT {\"enable_to_first_chunk_s\": 0.08}\n"
           "ROGUE {\"rogue\": \"go\", \"chunks_after_intruder\": 0}\n"
           "ROGUE oversize RSS growth: first 5 messages 98.0 MB\n"
           "2 passed, 1 failed, 1 skipped in 80.2s\n")
    found = bench.collect(out)
    assert found["faults"] == [{"fault": "sensor", "recovery_s": 0.2}]
    assert found["operator_path"] == [{"enable_to_first_chunk_s": 0.08}]
    assert found["rogues"] == [{"rogue": "go", "chunks_after_intruder": 0}]
    assert bench.outcome(out) == {"passed": 2, "failed": 1, "skipped": 1, "errors": 0}


def test_executor_tick_bench_times_a_running_executor() -> None:
    pytest.importorskip("asyncvla_executor")
    import bench_executor_tick as bench

    result = bench.run("latest_only", 1.0)
    assert result["ticks"] == 100 and result["chunks"] == 10
    assert result["setpoints"] >= 90  # it executes, so the tick is timed doing its work
    tick = result["tick_ms"]
    assert tick["n"] == 100 and 0 < tick["p50"] <= tick["max"]


def test_soak_names_what_kept_the_action_node_refusing() -> None:
    """soak.py's "not_recovered_why": the action node's own non-OK "action output" messages in
    the window, counted with their figures replaced, the most frequent first; OK statuses,
    other statuses and messages outside the window are not counted."""
    from types import SimpleNamespace as NS

    pytest.importorskip("rclpy")
    sys.path.insert(0, os.path.abspath(os.path.join(BENCH, "..")))
    from soak import refusal_reasons

    def array(level: int, message: str, name: str = "asyncvla_action_node: action output"):
        return NS(status=[NS(name=name, level=bytes([level]), message=message, values=[])])

    silent = "no action: input silent: sensor silent for {} ms (timeout 100 ms)"
    arrays = [(1.0, array(2, silent.format(544))), (1.5, array(2, "no action: VL stale")),
              (2.0, array(2, silent.format(1105))), (2.2, array(0, "publishing")),
              (2.4, array(2, "no action: estop", name="asyncvla_action_node: safety")),
              (9.0, array(2, silent.format(7)))]
    assert refusal_reasons(arrays, 0.5, 3.0) == [
        "2 x no action: input silent: sensor silent for # ms (timeout # ms)",
        "1 x no action: VL stale"]
    assert refusal_reasons(arrays, 3.0, 8.0) == []
