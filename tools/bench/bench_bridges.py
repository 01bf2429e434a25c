#!/usr/bin/env python3
"""Benchmark: the three bridges at the lab's sustained rates, as separate processes on loopback.

Starts camera_bridge, robot_bridge and sensor_bridge (installed entry points), a downstream
subscriber process (reliable QoS, as `ros2 bag record` would) and, in this process, stand-ins for
the lab's senders speaking the exact wire formats: 5 cameras x 30 FPS of 36-48 KB JPEGs
(ZMQ PUSH), the robot at 100 Hz (ZMQ PUB), the force/OCT sensor at 650 samples/s in datagrams
of `--sensor-batch` records (UDP). After a warm-up it measures for `--duration` seconds and
prints one JSON object: per stream the rate sent and the rate received downstream, messages
received vs sent (counted over the same window; +-1 at the window edges), downstream receive
time - header stamp (the stamp is the capture time mapped to local time, so this is the delay
above the smallest one seen), drops the bridge reported, and the CPU use (100 = one core) and
memory of each bridge process, of the downstream subscriber and of the sender process.

With the CPU, date and command (tools/bench/run_record.py); `--out FILE` writes the object too.

Usage: flock /tmp/asyncvla-cpu.lock python tools/bench/bench_bridges.py --duration 20 \
           [--sensor-batch 10] [--camera-raw N] --out docs/benchmarks/bridges-<cpu kind>.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from asyncvla_testing.bridge_harness import entry_script, ros_args  # noqa: E402
from asyncvla_testing.processes import ProcessGroup, allocate_domain_id  # noqa: E402
from run_record import emit, run_record  # noqa: E402

CAMERAS = {"view1": "ZED_41182735_left", "view2": "ZED_49429257_left",
           "view3": "ZED_44377151_left", "view4": "ZED_49045152_left", "view5": "OAK-D"}
CAMERA_TOPICS = {v: f"/camera/{v}/image_raw/compressed" for v in CAMERAS}
ROBOT_TOPICS = {"joint_states": "/robot/joint_states", "ee_pose": "/robot/ee_pose",
                "force": "/robot/force"}
SENSOR_TOPICS = {"force_oct": "/sensor/force_oct", "wrench": "/sensor/wrench"}


# -- downstream subscriber process ------------------------------------------------------------

def run_listener(raw: int) -> None:
    """Count messages per topic and stamp latencies; commands on stdin: RESET, REPORT, QUIT."""
    import rclpy
    from asyncvla_msgs.msg import ForceOctBatch
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped, WrenchStamped
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image, JointState
    from std_msgs.msg import Float64

    rclpy.init()
    node = rclpy.create_node("bench_listener")
    qos = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
    lock = threading.Lock()
    counts: dict[str, int] = {}
    latency: dict[str, list[float]] = {}
    diag: dict[str, dict[str, str]] = {}

    def counter(name: str, stamped: bool):
        def on_msg(msg) -> None:
            now = time.time()
            with lock:
                counts[name] = counts.get(name, 0) + 1
                if stamped:
                    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                    latency.setdefault(name, []).append(now - stamp)
        return on_msg

    def on_diag(msg) -> None:
        for status in msg.status:
            with lock:
                diag[status.name] = {kv.key: kv.value for kv in status.values}

    topics = [(f"camera/{v}", t, CompressedImage, True) for v, t in CAMERA_TOPICS.items()]
    topics += [(f"camera_raw/{v}", f"/camera/{v}/image_raw", Image, True)
               for v in list(CAMERAS)[:raw]]
    topics += [("robot/joint_states", ROBOT_TOPICS["joint_states"], JointState, True),
               ("robot/ee_pose", ROBOT_TOPICS["ee_pose"], PoseStamped, True),
               ("robot/force", ROBOT_TOPICS["force"], Float64, False),
               ("sensor/force_oct", SENSOR_TOPICS["force_oct"], ForceOctBatch, True),
               ("sensor/wrench", SENSOR_TOPICS["wrench"], WrenchStamped, True)]
    for name, topic, msg_type, stamped in topics:
        node.create_subscription(msg_type, topic, counter(name, stamped), qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    quit_event = threading.Event()

    def spin() -> None:
        while not quit_event.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin)
    spinner.start()
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        with lock:
            if cmd == "RESET":
                counts.clear()
                latency.clear()
                print("RESET_DONE", flush=True)
            elif cmd == "REPORT":
                lat = {k: {"n": len(v), "p50_ms": round(1e3 * float(np.percentile(v, 50)), 2),
                           "p99_ms": round(1e3 * float(np.percentile(v, 99)), 2),
                           "max_ms": round(1e3 * float(np.max(v)), 2)}
                       for k, v in latency.items() if v}
                print("REPORT " + json.dumps({"counts": counts, "latency": lat,
                                              "diagnostics": diag}), flush=True)
            elif cmd == "QUIT":
                break
    quit_event.set()
    spinner.join()
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


# -- senders ----------------------------------------------------------------------------------

class Paced(threading.Thread):
    """Call `send(k)` at `rate_hz` on an absolute schedule until stopped; count calls."""

    def __init__(self, rate_hz: float, send) -> None:
        super().__init__(daemon=True)
        self.period = 1.0 / rate_hz
        self.send = send
        self.stop_event = threading.Event()
        self.count = 0
        self.late = 0

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            self.send(self.count)
            self.count += 1
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.late += 1


def make_senders(endpoints: dict[str, str], sensor_batch: int) -> dict[str, Paced]:
    from asyncvla_testing.lab_senders import (CameraSender, RobotPublisher, SensorSender,
                                              camera_parts, make_jpeg, robot_payload,
                                              sensor_datagram)

    cam = CameraSender(endpoints["camera"])
    jpegs = {v: [make_jpeg(640, 360 if v == "view5" else 480, seed=10 * i + s)
                 for s in range(8)] for i, v in enumerate(CAMERAS)}
    views = list(CAMERAS)

    def send_camera(k: int) -> None:
        view = views[k % len(views)]
        now = time.time()
        jpeg = jpegs[view][(k // len(views)) % 8]
        cam.send(camera_parts(CAMERAS[view], now - 0.005, jpeg, send_time=now))

    robot: RobotPublisher = endpoints["robot_pub"]  # type: ignore[assignment]

    def send_robot(k: int) -> None:
        now = time.time()
        robot.send([b"robot_state", robot_payload(now - 0.001, now, 1.5, [k % 90] * 6,
                                                  [400, 0, 300, 180, 0, 90])])

    host, port = endpoints["sensor"][len("udp://"):].rsplit(":", 1)
    sensor = SensorSender(host, int(port))
    alines = np.random.default_rng(0).normal(size=(64, 1025)).astype(np.float32)
    start = time.time()
    state = {"k": 0}

    def send_sensor(_: int) -> None:
        # A continuous 650 Hz sample clock: strictly increasing times, never in the future
        # (a late tick followed by a catch-up tick must not repeat sample times).
        now = time.time()
        k0 = state["k"] = max(state["k"], int((now - start) * 650.0) - 2 * sensor_batch)
        newest = start + (k0 + sensor_batch - 1) / 650.0
        if newest > now:
            time.sleep(newest - now)
        recs = [(start + (k0 + i) / 650.0, time.time(), 0.001 * (k0 + i), alines[(k0 + i) % 64])
                for i in range(sensor_batch)]
        state["k"] += sensor_batch
        sensor.send(sensor_datagram(recs))

    return {"camera": Paced(150.0, send_camera), "robot": Paced(100.0, send_robot),
            "sensor": Paced(650.0 / sensor_batch, send_sensor)}


# -- main -------------------------------------------------------------------------------------

def cpu_seconds(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--sensor-batch", type=int, default=10, choices=range(1, 16),
                        metavar="1..15")
    parser.add_argument("--camera-raw", type=int, default=0, choices=range(0, 6),
                        metavar="0..5", help="number of views (view1..) the camera bridge also "
                        "decodes and publishes as rgb8 Image")
    parser.add_argument("--role", default="bench", choices=["bench", "listener"])
    parser.add_argument("--out", help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.role == "listener":
        run_listener(args.camera_raw)
        return
    raw_views = list(CAMERAS)[:args.camera_raw]

    import psutil

    from asyncvla_testing.lab_senders import RobotPublisher

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(allocate_domain_id()), PYTHONUNBUFFERED="1")
    os.environ.update(ROS_DOMAIN_ID=env["ROS_DOMAIN_ID"])
    group = ProcessGroup(env)
    robot_pub = RobotPublisher()
    listener = subprocess.Popen([sys.executable, __file__, "--role", "listener",
                                 "--camera-raw", str(args.camera_raw)],
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, bufsize=1)
    senders: dict[str, Paced] = {}
    try:
        bridges, endpoints = {}, {"robot_pub": robot_pub}
        camera = {"wire": {"port": 0}, "raw": {"publish": bool(raw_views)}}
        if raw_views:
            camera["raw"]["views"] = raw_views
        for kind, params in [("camera", camera),
                             ("robot", {"wire": {"endpoint": robot_pub.endpoint}}),
                             ("sensor", {"wire": {"port": 0}})]:
            proc = group.start(f"{kind}_bridge", [entry_script(kind), *ros_args(params)])
            line = proc.wait_for_line("ready: listening on", 60)
            endpoints[kind] = line.rsplit(" ", 1)[1]
            bridges[kind] = proc
        assert listener.stdout.readline().strip() == "READY"
        senders = make_senders(endpoints, args.sensor_batch)
        for s in senders.values():
            s.start()
        time.sleep(args.warmup)
        ps = {k: psutil.Process(p.popen.pid) for k, p in bridges.items()}
        ps["downstream_listener"] = psutil.Process(listener.pid)
        ps["senders_process"] = psutil.Process()
        psutil.cpu_percent()
        listener.stdin.write("RESET\n")
        assert listener.stdout.readline().strip() == "RESET_DONE"
        sent0 = {k: s.count for k, s in senders.items()}
        cpu0 = {k: cpu_seconds(p) for k, p in ps.items()}
        t0 = time.monotonic()
        time.sleep(args.duration)
        sent = {k: s.count - sent0[k] for k, s in senders.items()}
        cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in ps.items()}
        wall = time.monotonic() - t0
        machine_cpu = psutil.cpu_percent()
        rss = {k: p.memory_info().rss for k, p in ps.items()}
        for s in senders.values():
            s.stop_event.set()
        time.sleep(1.0)  # let in-flight messages arrive
        listener.stdin.write("REPORT\n")
        report = json.loads(listener.stdout.readline()[len("REPORT "):])
    finally:
        for s in senders.values():
            s.stop_event.set()
        if listener.poll() is None:
            try:
                listener.stdin.write("QUIT\n")
                listener.stdin.flush()
                listener.wait(5)
            except Exception:  # noqa: BLE001
                listener.kill()
        group.stop_all()
        robot_pub.close()

    counts, lat, diag = report["counts"], report["latency"], report["diagnostics"]

    def bridge_diag(node: str) -> dict:
        values = diag.get(f"{node}: bridge", {})
        return {"drops_total": int(values.get("drops_total", -1)),
                "thread_errors": int(values.get("thread_errors", -1)),
                "clock_offset_s": values.get("clock_offset_s"),
                "kernel_drops": values.get("kernel_drops")}

    def stream(sent_n: int, received: dict[str, int], per_msg: int = 1) -> dict:
        return {"sent": sent_n * per_msg, "sent_rate_hz": round(sent_n * per_msg / wall, 1),
                "received": received,
                "received_rate_hz": {k: round(v / wall, 1) for k, v in received.items()}}

    cams = {v: counts.get(f"camera/{v}", 0) for v in CAMERAS}
    cams.update({f"raw/{v}": counts.get(f"camera_raw/{v}", 0) for v in raw_views})
    result = {
        **run_record("bridges"), "duration_s": round(wall, 2),
        "rmw": "rmw_fastrtps_cpp", "downstream_qos": "reliable, depth 100",
        "camera": {**stream(sent["camera"], {"total_compressed": sum(
            v for k, v in cams.items() if not k.startswith("raw/")), **cams}),
            "raw_views": raw_views, "jpeg_kb": "36 (OAK 640x360) / 48 (ZED 640x480)",
            "latency_capture_to_downstream": {k.split("/", 1)[1]: v for k, v in lat.items()
                                              if k.startswith("camera/")},
            "bridge": bridge_diag("camera_bridge")},
        "robot": {**stream(sent["robot"], {k: counts.get(f"robot/{k}", 0)
                                           for k in ROBOT_TOPICS}),
                  "latency_capture_to_downstream": lat.get("robot/joint_states"),
                  "bridge": bridge_diag("robot_bridge")},
        "sensor": {**stream(sent["sensor"], {"force_oct_batches": counts.get(
            "sensor/force_oct", 0), "wrench_samples": counts.get("sensor/wrench", 0)}),
            "samples_sent": sent["sensor"] * args.sensor_batch,
            "samples_per_datagram": args.sensor_batch,
            "latency_capture_to_downstream": {"batch": lat.get("sensor/force_oct"),
                                              "wrench": lat.get("sensor/wrench")},
            "bridge": bridge_diag("sensor_bridge")},
        "cpu_percent_of_one_core": {k: round(100 * v / wall, 1) for k, v in cpu.items()},
        "machine_cpu_percent_all_cores": machine_cpu,
        "rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "sender_late_ticks": {k: s.late for k, s in senders.items()},
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
