#!/usr/bin/env python3
"""Soak run: the main job for N minutes with faults injected at random; prints JSON.

Not a test: it runs for minutes and reports figures. Starts the demo pipeline (synthetic sources,
VLM node, action node; tiny random-weight models, CPU, loopback DDS, a private domain) with the
action node DISABLED, enables it through the latched enable topic like an operator, then
injects one fault at a time at random intervals:

    sensor / sensor_nan / robot / robot_nan / robot_clock_forward / robot_clock_backward /
    view<N> (a camera missing) / kill_vlm (kill -9, restarted) / estop (pressed, released,
    re-enabled)

and measures, per fault kind, how long until actions resume (the next fault is injected only
after that, or after 60 s without actions: faults never overlap), and overall: actions published,
actions withheld by reason (the action node's own counters), actions that leaked past a fault's
detection bound ("unsafe_actions", must be 0), the largest VL age seen on a published chunk, and
each process's memory (RSS) after warm-up and at the end. Every fault is listed in order
("faults": kind, start and length in s from the first fault's start, actions resumed after s or
null); for one after which actions did not resume, "not_recovered_why" counts the action node's
own "action output" diagnostic messages in that window (figures replaced by #), so that a run
says which input kept the node refusing.

    python tools/soak.py --minutes 10 > soak.json
    flock /tmp/asyncvla-cpu.lock python tools/soak.py --minutes 3 --seed 2 \
        --out docs/benchmarks/soak-<cpu kind>.json

The JSON carries the CPU, date and command (tools/bench/run_record.py); ``--out`` writes it to a
file too (the docs' runs live in docs/benchmarks/, asyncvla_action_node/SAFETY.md quotes it).
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

MAX_VL_AGE = 0.8
#: Seconds after a fault starts by which no chunk may be published any more (see the
#: fault-injection tests for how each bound is made up).
BOUNDS = {"sensor": 0.55, "sensor_nan": 0.55, "robot": 0.55, "robot_nan": 0.55,
          "robot_clock_forward": 0.5, "robot_clock_backward": 0.5, "view": 1.55,
          "kill_vlm": 1.3, "estop": 0.15}


def write(path: str, names: list[str]) -> None:
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(names) + "\n")
    os.replace(path + ".tmp", path)


def refusal_reasons(arrays: list[tuple[float, object]], start: float, end: float,
                    top: int = 3) -> list[str]:
    """The most frequent non-OK "action output" diagnostic messages received in [start, end]
    (receive times), figures replaced by #, as "<count> x <message>"."""
    from asyncvla_testing.ros_listener import diagnostic_values

    counts: collections.Counter[str] = collections.Counter()
    for received, array in arrays:
        if not start <= received <= end:
            continue
        values = diagnostic_values(array, "action output")
        if values is not None and values["_level"] != "0":
            counts[re.sub(r"\d+(\.\d+)?", "#", values["_message"])] += 1
    return [f"{n} x {message}" for message, n in counts.most_common(top)]


def rss_mb(pid: int) -> float | None:
    try:
        import psutil

        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except Exception:  # noqa: BLE001 - process gone
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--mean-interval", type=float, default=6.0,
                        help="mean seconds of healthy running between faults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON object to this file")
    parser.add_argument("--assets", default=os.path.join(ROOT, "artifacts", "demo"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = random.Random(args.seed)

    from asyncvla_testing.assets import build_demo_assets
    from asyncvla_testing.pipeline import start_action, start_sources, start_vlm
    from asyncvla_testing.processes import ProcessGroup, allocate_domain_id

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", str(allocate_domain_id())),
               PYTHONUNBUFFERED="1")
    os.environ.update(env)
    assets = build_demo_assets(args.assets)
    views = [f"view{i + 1}" for i in range(args.views)]
    fault_file = os.path.join(args.assets, f"soak_faults_{os.getpid()}")
    write(fault_file, [])

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Bool

    from asyncvla_common import qos
    from asyncvla_msgs.msg import ActionChunk
    from asyncvla_testing.ros_listener import RosListener, diagnostic_values

    group = ProcessGroup(env)
    kinds = ["sensor", "sensor_nan", "robot", "robot_nan", "robot_clock_forward",
             "robot_clock_backward", "view", "kill_vlm", "estop"]
    injected: collections.Counter[str] = collections.Counter()
    recovery: dict[str, list[float]] = collections.defaultdict(list)
    windows: list[tuple[str, float, float]] = []  # (kind, start, end) of every fault
    timeline: list[dict[str, object]] = []  # every fault in order (the JSON's "faults")
    why: dict[str, list[list[str]]] = collections.defaultdict(list)
    memory: dict[str, dict[str, float | None]] = {}
    listener = None
    try:
        start_sources(group, views, ["--pause-file", fault_file])
        vlm = start_vlm(group, assets, views, watchdog={"camera_timeout": 0.5})
        action = start_action(group, assets, freshness={"max_vl_age": MAX_VL_AGE},
                              safety={"enabled_at_start": False})
        vlm.wait_for_line("VLM node ready", 120)
        action.wait_for_line("action node ready", 120)
        listener = RosListener(int(env["ROS_DOMAIN_ID"]), {
            "/asyncvla/action_chunk": ActionChunk, "/diagnostics": DiagnosticArray},
            name="soak_monitor")
        chunks = listener["/asyncvla/action_chunk"]
        enable = listener.publisher("/asyncvla/enable", Bool, qos.LATCHED)
        estop = listener.publisher("/asyncvla/estop", Bool, qos.LATCHED)
        enable.publish(Bool(data=True))
        stamp = lambda m: m.header.stamp.sec + m.header.stamp.nanosec * 1e-9  # noqa: E731

        def wait_action(after: float, timeout: float = 60.0) -> float | None:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if any(stamp(c) > after for c in chunks.snapshot()[-50:]):
                    return min(stamp(c) for c in chunks.snapshot()[-50:] if stamp(c) > after)
                time.sleep(0.02)
            return None

        if wait_action(0.0, 120) is None:
            raise RuntimeError("no action chunk after enabling")
        time.sleep(5.0)  # warm-up before the memory baseline
        memory = {p.name: {"start_mb": rss_mb(p.popen.pid)} for p in group.procs}
        end = time.time() + args.minutes * 60
        while time.time() < end:
            time.sleep(rng.expovariate(1.0 / args.mean_interval))
            kind = rng.choice(kinds)
            duration = rng.uniform(0.5, 3.0)
            t0 = time.time()
            # t1: the moment the input is healthy again (before any restart or re-enable).
            if kind == "kill_vlm":
                vlm.kill()
                time.sleep(duration)
                t1 = time.time()
                vlm = start_vlm(group, assets, views, name=f"vlm_{injected[kind] + 2}",
                                watchdog={"camera_timeout": 0.5})
            elif kind == "estop":
                estop.publish(Bool(data=True))
                time.sleep(duration)
                estop.publish(Bool(data=False))
                time.sleep(0.2)
                t1 = time.time()
                enable.publish(Bool(data=True))
            else:
                name = rng.choice(views) if kind == "view" else kind
                write(fault_file, [name])
                time.sleep(duration)
                t1 = time.time()
                write(fault_file, [])
            injected[kind] += 1
            windows.append((kind, t0, t1))
            resumed = wait_action(t1)
            first = windows[0][1]
            timeline.append({"kind": kind, "start_s": round(t0 - first, 2),
                             "length_s": round(t1 - t0, 2),
                             "resumed_after_s": None if resumed is None
                             else round(resumed - t1, 3)})
            if resumed is not None:
                recovery[kind].append(resumed - t1)
            else:
                why[kind].append(refusal_reasons(listener["/diagnostics"].timed(), t1,
                                                 time.time()))
            print(f"[soak] {kind} for {t1 - t0:.2f} s: "
                  + (f"actions resumed {resumed - t1:.3f} s after" if resumed is not None
                     else "NOT RECOVERED within 60 s"), file=sys.stderr, flush=True)
        final_diag = None
        for array in reversed(listener["/diagnostics"].snapshot()):
            final_diag = diagnostic_values(array, "action output")
            if final_diag is not None:
                break
        for p in group.procs:  # killed ones keep their start figure only
            if p.alive():
                memory.setdefault(p.name, {"start_mb": None})["end_mb"] = rss_mb(p.popen.pid)
        published = chunks.snapshot()
    finally:
        if listener is not None:
            listener.close()
        group.stop_all()
        rclpy.try_shutdown()
        if os.path.exists(fault_file):
            os.unlink(fault_file)

    unsafe = 0
    for kind, t0, t1 in windows:
        unsafe += sum(1 for c in published if t0 + BOUNDS[kind] < stamp(c) <= t1)
    withheld = {k[len("withheld_"):]: int(v) for k, v in (final_diag or {}).items()
                if k.startswith("withheld_")}
    sys.path.insert(0, os.path.join(HERE, "bench"))
    from run_record import emit, run_record

    summary = {
        **run_record("soak"),
        "minutes": args.minutes, "views": args.views, "seed": args.seed,
        "actions_published": len(published),
        "actions_withheld_by_reason": withheld,
        "unsafe_actions": unsafe,
        "faults_injected": dict(injected),
        "recovery_s": {k: {"n": len(v), "max": round(max(v), 3),
                           "mean": round(sum(v) / len(v), 3)}
                       for k, v in sorted(recovery.items())},
        "not_recovered": {k: n - len(recovery.get(k, [])) for k, n in sorted(injected.items())
                          if n > len(recovery.get(k, []))},
        "not_recovered_why": dict(why),
        "faults": timeline,
        "max_vl_age_ms": round(max((c.vl_age * 1e3 for c in published), default=0.0), 1),
        "memory_rss_mb": memory,
    }
    emit(summary, args.out)
    return 0 if unsafe == 0 and not summary["not_recovered"] else 1


if __name__ == "__main__":
    sys.exit(main())
