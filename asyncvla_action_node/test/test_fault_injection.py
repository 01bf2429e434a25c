"""Fault injection over real DDS: no action leaves the suite from bad or stale input.

Each fault runs against the live pipeline (separate processes, loopback DDS). For every fault the
suite checks three things and prints what it measured as one JSON line per fault (FAULT {...}):

* no ActionChunk is stamped later than the fault's detection bound while the fault lasts;
* the right diagnostic appears within a bounded time;
* actions resume by themselves once the input recovers (the recovery time is reported).

Bounds are sums of the configured timeouts plus how often the fault switches are polled
(0.1-0.2 s) and one action period; they are not tuned to the machine. Recovery is held to
RECOVERY_BOUND_S, 3x the slowest recovery measured when it was set.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Callable

import pytest

from asyncvla_testing.bridge_harness import entry_script
from asyncvla_testing.bridge_harness import ros_args as bridge_args
from asyncvla_testing.lab_senders import RobotPublisher, robot_payload
from asyncvla_testing.pipeline import HERE, start_action, start_sources, start_vlm
from asyncvla_testing.ros_listener import RosListener, diagnostic_values

rclpy = pytest.importorskip("rclpy")
from asyncvla_msgs.msg import ActionChunk, SafetyStatus  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from asyncvla_common import qos  # noqa: E402

VIEWS = ["view1", "view2"]
MAX_VL_AGE = 0.8
PERIOD = 0.1  # action period (10 Hz)
CHUNKS = "/asyncvla/action_chunk"
ACTION_STATUS = "/asyncvla_action_node/safety_status"
VLM_STATUS = "/asyncvla_vlm_node/safety_status"
INJECTOR = os.path.join(HERE, "vl_injector.py")
#: 3x the slowest recovery measured when the bound was set (0.47 s); the committed run
#: (tools/bench/bench_fault_recovery.py, docs/benchmarks/fault_recovery-*.json) is in SAFETY.md.
RECOVERY_BOUND_S = 3 * 0.47


def stamp_s(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def listen(ros_env) -> RosListener:
    return RosListener(int(ros_env["ROS_DOMAIN_ID"]), {
        CHUNKS: ActionChunk, "/diagnostics": DiagnosticArray, ACTION_STATUS: SafetyStatus,
        VLM_STATUS: SafetyStatus})


def wait_chunk_after(listener: RosListener, t: float, timeout: float) -> float:
    """Stamp of the first chunk stamped after `t` (TimeoutError if none comes)."""
    found: list[float] = []

    def newer() -> bool:
        found[:] = sorted(s for c in listener[CHUNKS].snapshot() if (s := stamp_s(c)) > t)
        return bool(found)

    listener.wait_until(newer, timeout, f"an action chunk after t={t:.2f}")
    return found[0]


def wait_diag(listener: RosListener, since: float, suffix: str,
              check: Callable[[dict[str, str]], bool], timeout: float) -> float:
    """Seconds from `since` to the first diagnostic status `suffix` satisfying `check`."""
    hit: list[float] = []

    def seen() -> bool:
        for array in listener["/diagnostics"].snapshot():
            values = diagnostic_values(array, suffix)
            if values is not None and stamp_s(array) >= since and check(values):
                hit.append(stamp_s(array) - since)
                return True
        return False

    listener.wait_until(seen, timeout, f"diagnostic {suffix!r} after the fault")
    return hit[0]


def is_error(needle: str, key: str = "_message") -> Callable[[dict[str, str]], bool]:
    return lambda v: v["_level"] == "2" and needle in v.get(key, "")


def write(path: str, names: list[str]) -> None:
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(names) + "\n")
    os.replace(path + ".tmp", path)  # the sources never read a half-written file


def inject(listener: RosListener, fault_file: str, fault: str, *, duration: float, bound: float,
           diag: tuple[str, Callable[[dict[str, str]], bool]], keep: list[str] | None = None,
           recovery_timeout: float = 20.0) -> dict:
    """Run one fault; returns the measurements and the chunks that leaked past `bound`."""
    keep = keep or []
    wait_chunk_after(listener, time.time(), 20.0)  # healthy before the fault
    t0 = time.time()
    write(fault_file, keep + [fault])
    detected = wait_diag(listener, t0, diag[0], diag[1], duration + 2.0)
    time.sleep(max(0.0, t0 + duration - time.time()))
    t1 = time.time()
    write(fault_file, keep)
    recovered = wait_chunk_after(listener, t1, recovery_timeout) - t1
    stamps = [stamp_s(c) for c in listener[CHUNKS].snapshot()]
    during = [s - t0 for s in stamps if t0 <= s <= t1]
    result = {"fault": fault, "detected_s": round(detected, 3),
              "last_chunk_after_start_s": round(max(during), 3) if during else None,
              "bound_s": bound, "recovery_s": round(recovered, 3),
              "leaked": [round(s, 3) for s in during if s > bound]}
    print("FAULT " + json.dumps(result), flush=True)
    return result


def test_sensor_robot_and_camera_faults(one_thread, ros_env, assets, tmp_path):
    """Sensor paused / NaN / inf, robot NaN / inf, robot clock steps, a camera view missing."""
    faults = str(tmp_path / "faults")
    write(faults, [])
    start_sources(one_thread, VIEWS, ["--pause-file", faults])
    start_vlm(one_thread, assets, VIEWS, watchdog={"camera_timeout": 0.5},
              reporting={"diagnostics_period": 0.25})
    action = start_action(one_thread, assets, freshness={"max_vl_age": MAX_VL_AGE},
                          reporting={"diagnostics_period": 0.25})
    safety, output = ": safety", "action output"
    poll = 0.2  # the sources re-read the fault file every 0.2 s
    input_bound = poll + 0.1 + PERIOD + 0.15  # watchdog timeouts are 0.1 s
    with listen(ros_env) as listener:
        results = [
            inject(listener, faults, "sensor", duration=1.5, bound=input_bound,
                   diag=(safety, is_error("sensor silent"))),
            inject(listener, faults, "sensor_nan", duration=1.5, bound=input_bound,
                   diag=(safety, is_error("sensor silent"))),
            inject(listener, faults, "sensor_inf", duration=1.5, bound=input_bound,
                   diag=(safety, is_error("sensor silent"))),
            inject(listener, faults, "robot_nan", duration=1.5, bound=input_bound,
                   diag=(safety, is_error("joint_states silent"))),
            inject(listener, faults, "robot_inf", duration=1.5, bound=input_bound,
                   diag=(safety, is_error("ee_pose silent"))),
            inject(listener, faults, "robot_clock_forward", duration=1.5, bound=poll + 0.3,
                   diag=(output, is_error("in the future"))),
            inject(listener, faults, "robot_clock_backward", duration=1.5, bound=poll + 0.3,
                   diag=(output, is_error("robot state is"))),
            # A silent view stops VL updates; actions stop once the last features pass
            # max_vl_age (plus the VLM's period, in which the last update may have started).
            inject(listener, faults, "view2", duration=2.5, bound=poll + MAX_VL_AGE + 0.3 + 0.25,
                   diag=(": cameras", is_error("camera silent: view2"))),
        ]
        inputs = [diagnostic_values(a, "inputs") for a in listener["/diagnostics"].snapshot()]
        dropped = max(int(v.get("sensor_dropped_non_finite", 0)) for v in inputs if v)
        vlm_status = listener[VLM_STATUS].snapshot()
        chunks = listener[CHUNKS].snapshot()
    assert action.alive()
    for result in results:
        assert result["leaked"] == [], result
        assert result["recovery_s"] <= RECOVERY_BOUND_S, result
    assert dropped > 0  # NaN / inf samples were counted, not used
    assert all(all(map(lambda x: x == x, c.reference)) for c in chunks)  # never a NaN reference
    # The VLM node's latched status named the silent view and counted its outage.
    tripped = [s for s in vlm_status if not s.output_allowed and "view2" in s.reason]
    assert tripped
    last = vlm_status[-1]
    assert dict(zip(last.input_names, last.input_trips))["view2"] >= 1


def test_bad_vl_features_are_never_used(one_thread, ros_env, assets, tmp_path):
    """NaN / inf payloads, another model id, another feature size, and a hung VLM."""
    faults = str(tmp_path / "faults")
    write(faults, [])
    start_sources(one_thread, [])
    from asyncvla_policy.checkpoint import read_checkpoint_config

    cfg, _ = read_checkpoint_config(assets.checkpoint_dir)
    injector = one_thread.start("injector", [
        INJECTOR, "--model-id", assets.model_id, "--tokens", str(cfg.vl_num_tokens),
        "--dim", str(cfg.vl_dim), "--rate", "3", "--fault-file", faults])
    start_action(one_thread, assets, freshness={"max_vl_age": MAX_VL_AGE},
                 reporting={"diagnostics_period": 0.25})
    poll, vl_period = 0.1, 1 / 3
    bound = poll + vl_period + MAX_VL_AGE + PERIOD + 0.15
    rejected = lambda needle: (  # noqa: E731
        "vl features", lambda v: needle in v.get("last_reject_reason", ""))
    with listen(ros_env) as listener:
        results = [
            inject(listener, faults, "vl_nan", duration=2.2, bound=bound, diag=rejected("NaN")),
            inject(listener, faults, "vl_model", duration=2.2, bound=bound,
                   diag=rejected("from model")),
            # after vl_model, so the reject reason has to change to be seen
            inject(listener, faults, "vl_inf", duration=2.2, bound=bound, diag=rejected("inf")),
            inject(listener, faults, "vl_dim", duration=2.2, bound=bound, diag=rejected("shape")),
            inject(listener, faults, "vl_pause", duration=2.2, bound=bound,
                   diag=("action output", is_error("VL features are"))),
        ]
        chunks = listener[CHUNKS].snapshot()
        vl_status = [v for a in listener["/diagnostics"].snapshot()
                     if (v := diagnostic_values(a, "vl features")) is not None]
    # Repeated refusals are not left at OK: WARN, then ERROR while they continue, with the reason
    # (the faults after the first follow within the tracker's 5 s window: ERROR at once).
    for needle in ("NaN", "from model", "shape"):
        levels = [int(v["_level"]) for v in vl_status if needle in v["_message"]]
        assert 2 in levels, (needle, levels)
        if needle == "NaN":
            assert 1 in levels and levels.index(1) < levels.index(2), levels
    sent = dict(re.findall(r"SENT (\d+) (\S+)", injector.output()))
    used = {str(c.vl_sequence) for c in chunks}
    bad = {seq for seq, mode in sent.items() if mode != "ok"}
    assert len(bad) >= 15 and used and not (used & bad), sorted(used & bad)
    assert used <= set(sent)
    for result in results:
        assert result["leaked"] == [], result
        assert result["recovery_s"] <= RECOVERY_BOUND_S, result


class RobotSender:
    """The robot PC's ZMQ publisher at 100 Hz, in a thread of the test process."""

    def __init__(self) -> None:
        self.pub = RobotPublisher()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            self.pub.send([b"robot_state", robot_payload(now, now, 0.1, [1.0] * 6,
                                                         [400.0, 0.0, 300.0, 0.0, 0.0, 0.0])])
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.pub.close()


def test_enable_estop_and_killed_processes(one_thread, ros_env, assets, tmp_path):
    """Starts disabled; enable, e-stop latching; kill -9 of the robot bridge and of the action
    node, each restarted."""
    pause = str(tmp_path / "pause")
    write(pause, ["robot"])  # robot state comes from the real bridge instead
    start_sources(one_thread, [], ["--pause-file", pause])
    sender = RobotSender()
    bridge_params = {"wire": {"endpoint": sender.pub.endpoint},
                     "reporting": {"diagnostics_period": 0.5}}
    bridge = one_thread.start("robot_bridge", [entry_script("robot"), *bridge_args(bridge_params)])
    from asyncvla_policy.checkpoint import read_checkpoint_config

    cfg, _ = read_checkpoint_config(assets.checkpoint_dir)
    one_thread.start("injector", [INJECTOR, "--model-id", assets.model_id, "--tokens",
                                  str(cfg.vl_num_tokens), "--dim", str(cfg.vl_dim)])
    action_params = {"freshness": {"max_vl_age": MAX_VL_AGE},
                     "reporting": {"diagnostics_period": 0.25},
                     "safety": {"enabled_at_start": False}}
    action = start_action(one_thread, assets, **action_params)
    report: dict[str, float] = {}
    try:
        with listen(ros_env) as listener:
            enable = listener.publisher("/asyncvla/enable", Bool, qos.LATCHED)
            estop = listener.publisher("/asyncvla/estop", Bool, qos.LATCHED)
            chunks, status = listener[CHUNKS], listener[ACTION_STATUS]
            # 1. Disabled at start: the inputs are all alive, and still nothing is published.
            listener.wait_until(lambda: any(not s.output_allowed and "disabled" in s.reason
                                            and all(s.input_ok) for s in status.snapshot()),
                                60, "DISABLED status with every input alive")
            time.sleep(1.0)
            assert len(chunks) == 0
            assert status.snapshot()[-1].state == SafetyStatus.STATE_DISABLED
            # 2. Enable.
            t = time.time()
            enable.publish(Bool(data=True))
            report["enable_to_first_chunk_s"] = wait_chunk_after(listener, t, 5.0) - t
            # 3. E-stop: output stops within one action period.
            time.sleep(0.5)
            t_estop = time.time()
            estop.publish(Bool(data=True))
            listener.wait_until(lambda: status.snapshot()[-1].state == SafetyStatus.STATE_ESTOP,
                                2.0, "ESTOP status")
            wait_diag(listener, t_estop, ": safety", is_error("E-STOP"), 3.0)
            # 4. Enable while the e-stop is held: refused.
            enable.publish(Bool(data=True))
            time.sleep(1.0)
            after = [stamp_s(c) - t_estop for c in chunks.snapshot() if stamp_s(c) > t_estop]
            report["estop_last_chunk_after_s"] = max(after, default=0.0)
            assert report["estop_last_chunk_after_s"] <= PERIOD + 0.05, after
            assert status.snapshot()[-1].state == SafetyStatus.STATE_ESTOP
            # 5. Release: DISABLED, not ENABLED, until enabled again.
            t = time.time()
            estop.publish(Bool(data=False))
            time.sleep(1.0)
            # (A tick under way when the e-stop arrived may be stamped just after it: step 4
            # bounds those. After the release, nothing at all.)
            assert not [c for c in chunks.snapshot() if stamp_s(c) > t]
            assert status.snapshot()[-1].state == SafetyStatus.STATE_DISABLED
            t = time.time()
            enable.publish(Bool(data=True))
            report["re_enable_to_first_chunk_s"] = wait_chunk_after(listener, t, 5.0) - t
            # 6. kill -9 of the robot bridge: actions stop; a restarted bridge resumes them.
            time.sleep(0.5)
            t_kill = time.time()
            bridge.kill()
            wait_diag(listener, t_kill, ": safety", is_error("joint_states silent"), 3.0)
            time.sleep(0.5)
            after = [stamp_s(c) - t_kill for c in chunks.snapshot() if stamp_s(c) > t_kill]
            report["bridge_kill_last_chunk_after_s"] = max(after, default=0.0)
            assert report["bridge_kill_last_chunk_after_s"] <= 0.1 + PERIOD + 0.15, after
            t = time.time()
            one_thread.start("robot_bridge_2", [entry_script("robot"),
                                                *bridge_args(bridge_params)])
            report["bridge_restart_to_first_chunk_s"] = wait_chunk_after(listener, t, 30.0) - t
            # 7. kill -9 of the action node; the restarted node reads the latched enable and
            #    e-stop topics and resumes without an operator action.
            action.kill()
            time.sleep(0.5)
            t = time.time()
            start_action(one_thread, assets, name="action_2", **action_params)
            report["action_restart_to_first_chunk_s"] = wait_chunk_after(listener, t, 60.0) - t
    finally:
        sender.close()
    print("FAULT " + json.dumps({k: round(v, 3) for k, v in report.items()}), flush=True)
    assert report["enable_to_first_chunk_s"] < 1.0
    assert report["re_enable_to_first_chunk_s"] < 1.0
