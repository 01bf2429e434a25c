"""What the action-loop benchmarks share: a policy checkpoint, the node and its inputs as
processes, the chunk recorder, and percentile summaries. Not a benchmark itself."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from asyncvla_testing.pipeline import flat_params, ros_args  # noqa: E402
from asyncvla_testing.processes import ManagedProcess, ProcessGroup, allocate_domain_id  # noqa: E402

TESTING = os.path.join(os.path.dirname(HERE), "asyncvla_testing")
RECORDER = os.path.join(TESTING, "chunk_recorder.py")
INJECTOR = os.path.join(TESTING, "vl_injector.py")
SOURCES = os.path.join(TESTING, "synthetic_sources.py")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both action benchmarks take (policy, precision, expert rate, cache)."""
    parser.add_argument("--policy", choices=["seed", "tiny"], default="seed")
    parser.add_argument("--expert-runtime", default="auto",
                        help="expert.runtime (auto = the node's default: it measures and picks)")
    parser.add_argument("--expert-threads", type=int, default=0,
                        help="expert.threads (0 = the runtime's default)")
    parser.add_argument("--max-rate", type=float, default=50.0,
                        help="timing.inference_max_rate_hz")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache",
                                                        "asyncvla_bench"))


def start_inputs(group: ProcessGroup, args: argparse.Namespace,
                 pause_file: str = "") -> tuple[str, str]:
    """The policy checkpoint, synthetic robot state (and sensor, unless paused in `pause_file`)
    and VL features of the checkpoint's shape; returns (checkpoint, model id)."""
    checkpoint, model_id, tokens, dim = policy_checkpoint(args.policy, args.cache)
    group.start("sources", [SOURCES, "--views", "view1", "--width", "64", "--height", "48",
                            "--camera-fps", "1", "--pause-file", pause_file])
    start_vl(group, model_id, tokens, dim)
    return checkpoint, model_id


def policy_checkpoint(kind: str, cache: str) -> tuple[str, str, int, int]:
    """(directory, vl_model_id, VL tokens, VL dim) of a random-weight policy, built once.

    kind "seed": the full-size PolicyConfig() (118.7 M parameters); "tiny": tiny_policy_config.
    Outputs are scaled like the demo policy's (about 1 mm per step), inside the guard's limits.
    """
    from asyncvla_testing.assets import DEMO_ACTION_MEAN, DEMO_ACTION_STD
    directory = os.path.join(cache, f"{kind}_policy")
    model_id = f"bench-random-{kind}"
    from asyncvla_policy.config import PolicyConfig, tiny_policy_config
    cfg = PolicyConfig() if kind == "seed" else tiny_policy_config(vl_dim=64, vl_num_tokens=8)
    if not os.path.exists(os.path.join(directory, "config.json")):
        import torch

        from asyncvla_policy.checkpoint import save_policy
        from asyncvla_policy.policy import ActionPolicy
        torch.manual_seed(0)
        policy = ActionPolicy(cfg).eval()
        policy.set_normalization(action_mean=DEMO_ACTION_MEAN, action_std=DEMO_ACTION_STD)
        save_policy(policy, directory, extra_metadata={
            "action_space": "ee_delta", "step_period": 0.1, "vl_model_id": model_id,
            "note": "random weights: action-loop benchmarks"})
    return directory, model_id, cfg.vl_num_tokens, cfg.vl_dim


def bench_env(threads: int | None = None) -> dict[str, str]:
    """Loopback DDS in a domain of this run's own."""
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(allocate_domain_id()), PYTHONUNBUFFERED="1")
    env.pop("ROS_STATIC_PEERS", None)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def start_vl(group: ProcessGroup, model_id: str, tokens: int, dim: int) -> ManagedProcess:
    proc = group.start("vl", [INJECTOR, "--model-id", model_id, "--tokens", str(tokens),
                              "--dim", str(dim), "--rate", "3"])
    proc.wait_for_line("INJECTOR READY", 60)
    return proc


def start_action(group: ProcessGroup, checkpoint: str, model_id: str,
                 **params: Any) -> ManagedProcess:
    """The action node; `params` by dotted name (``timing.action_rate_hz``) or group."""
    base = {"checkpoint": checkpoint, "expert.device": "cpu", "safety.enabled_at_start": True,
            "vl.expected_model_id": model_id, "reporting.log_period": 5.0}
    base.update(flat_params(params))
    proc = group.start("action", ["-m", "asyncvla_action_node.action_node", *ros_args(base)])
    # expert.runtime auto measures every runtime at the first start with a checkpoint (about
    # 30 s for the full-size expert on 2 cores, under its 60 s budget); later starts read its
    # cached choice
    proc.wait_for_line("action node ready", 300)
    return proc


def node_defaults() -> dict[str, Any]:
    """The action node's parameter defaults, by dotted name (its spec)."""
    from asyncvla_action_node.action_config import ACTION_NODE_PARAMETERS

    return {spec.name: spec.default for spec in ACTION_NODE_PARAMETERS}


def node_expert(proc: ManagedProcess) -> dict[str, Any]:
    """Which expert runtime the node runs, and for ``auto`` its log line (the figures it chose
    by) and whether the choice came from its cache."""
    ready = next((ln for ln in proc.lines if "action node ready" in ln), "")
    name = ready.split("), expert ", 1)[1].split(",", 1)[0] if "), expert " in ready else ""
    line = next((ln for ln in proc.lines if "expert_runtime auto:" in ln), "")
    summary = line[line.index("expert_runtime auto:"):] if line else ""
    return {"runtime": name.replace(" (auto)", ""), "auto": bool(summary),
            "auto_cached": "cached choice" in summary, "auto_summary": summary}


def record_chunks(group: ProcessGroup, duration: float, warmup: float, rt_priority: int = 0,
                  topic: str = "") -> tuple[list[dict[str, int]], dict[str, str]]:
    """Chunks received in `duration` s after `warmup` s of the first one, by a separate process,
    and the node's last "action output" diagnostic values, with `window_counts`: how much each
    of its counters grew inside the measuring window (see `window_counts`)."""
    rec = group.start("recorder", [RECORDER, "--duration", str(duration + warmup),
                                   "--rt-priority", str(rt_priority), "--timeout", "60",
                                   *(["--topic", topic] if topic else [])])
    line = rec.wait_for_line("CHUNKS ", duration + warmup + 180)
    data = json.loads(line[len("CHUNKS "):])
    rows = [dict(zip(data["fields"], row)) for row in data["rows"]]
    diagnostics = dict(data["diagnostics"])
    if rows:
        start = rows[0]["recv_ns"] + int(warmup * 1e9)
        rows = [r for r in rows if r["recv_ns"] >= start]
        diagnostics["window_counts"] = window_counts(data.get("diagnostics_history", []), start)
    return rows, diagnostics


#: The node's cumulative counters that `window_counts` differences.
WINDOW_COUNTERS = ("chunks_published", "inferences", "ticks_skipped", "withheld_",
                   "publisher_published", "publisher_late_dropped", "publisher_superseded",
                   "handoff_failed")


def window_counts(history: list[list[Any]], start_ns: int) -> dict[str, int]:
    """Each counter of the node's "action output" diagnostic (`WINDOW_COUNTERS`, by prefix) at
    the last report minus its value at the last report before `start_ns` (0 without one).

    Why: the counters are the node's since start-up, and start-up (inputs arriving, the recorder
    joining DDS) refuses ticks a steady state would not; the window's own refusals are what its
    missing chunks are. Reports come once a second, so the window is that coarse."""
    if not history:
        return {}
    before = [values for recv_ns, values in history if recv_ns < start_ns]
    first, last = (before[-1] if before else {}), history[-1][1]

    def count(values: dict[str, str], key: str) -> int:
        try:
            return int(float(values.get(key, 0)))
        except ValueError:
            return 0

    keys = sorted(k for k in last if any(k == c or (c.endswith("_") and k.startswith(c))
                                         for c in WINDOW_COUNTERS))
    return {k: count(last, k) - count(first, k) for k in keys}


def summary(values_ms: Any) -> dict[str, float | int | None]:
    """p50 / p99 / max (ms, 3 decimals) and the count."""
    v = np.asarray(values_ms, dtype=float)
    if v.size == 0:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": int(v.size), "p50": round(float(np.percentile(v, 50)), 3),
            "p99": round(float(np.percentile(v, 99)), 3), "max": round(float(v.max()), 3)}


def node_counters(proc: ManagedProcess) -> str:
    """The node's last status log line (what it said about its ticks)."""
    lines = [ln for ln in proc.lines if "[ACTION #" in ln or "no action" in ln]
    return lines[-1][-200:] if lines else ""
