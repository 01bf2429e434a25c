"""The action node's publisher process (`tick_source: publisher_process`): both of its ends.

Why a process: the chunk's moment of publication is the one thing in the node that must be
punctual to the millisecond, and inside the node it shares one interpreter (one GIL, one loop
lock) with the executor's callbacks and the expert thread. The child started here runs no other
Python: it waits for the node's prepared, serialised messages (publish_handoff: frames and the
rules), sleeps to each deadline under SCHED_FIFO where allowed, and publishes them raw on the
node's own topics with the node's QoS. Its node is `<node>_publisher` in the node's namespace;
with SROS2 it runs in the node's enclave, whose policy must let that name publish the action
topics.

* `PublisherProcess` (the node's end) starts the child with one end of an AF_UNIX SOCK_SEQPACKET
  pair, waits for it to be ready, sends offers and holds without ever blocking the tick thread,
  and collects the child's counts for diagnostics.
* `main` (the child) runs `python -m asyncvla_action_node.publisher_process`; the end of file on
  its socket (the node exited, even by SIGKILL) ends it: it never publishes for a dead node.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import select
import socket
import subprocess
import sys
import time

from asyncvla_action_node.publish_handoff import (HOLD, OFFER, READY, STATS, HandoffCounts,
                                                  PublishSchedule, decode, encode, encode_json)
from asyncvla_action_node.tick_timing import make_realtime, sleep_until

#: How often the child reports its counts to the node (s).
STATS_PERIOD_S = 0.5
#: Socket buffer for each direction: a few hundred prepared ticks.
SOCKET_BUFFER = 1 << 20
#: The largest frame the child takes (one tick's chunk and trajectory are a few kB).
MAX_FRAME = 1 << 20


class PublisherProcess:
    """The node's handle on its publisher child (see the module doc).

    `outlets` are (message type "pkg/msg/Type", fully resolved topic) pairs; an offer's payloads
    name an outlet by its index in this list."""

    def __init__(self, outlets: list[tuple[str, str]], node_name: str, namespace: str,
                 qos_name: str, priority: int, max_late_s: float,
                 ros_args: list[str] | None = None) -> None:
        self.counts = HandoffCounts()
        self.ready_note = ""
        self._sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (self._sock, child_sock):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        cmd = [sys.executable, "-m", "asyncvla_action_node.publisher_process",
               "--fd", str(child_sock.fileno()), "--node-name", f"{node_name}_publisher",
               "--namespace", namespace or "/", "--qos", qos_name, "--priority", str(priority),
               "--max-late-ms", str(max_late_s * 1e3)]
        for msg_type, topic in outlets:
            cmd += ["--outlet", f"{msg_type}={topic}"]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        self.proc = subprocess.Popen(cmd, pass_fds=(child_sock.fileno(),), env=child_env())
        child_sock.close()  # the child's end lives in the child alone: its exit is our EOF

    def wait_ready(self, timeout_s: float) -> str:
        """Block until the child has its publishers; RuntimeError (the child stopped) if it
        exits first or is not ready in time."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"publisher process exited with {self.proc.returncode} "
                                   "before it was ready (see its log above)")
            readable, _, _ = select.select([self._sock], [], [], 0.1)
            if readable:
                self._drain()
                if self.ready_note:
                    self._sock.setblocking(False)
                    return self.ready_note
        self.stop()
        raise RuntimeError(f"publisher process not ready after {timeout_s:.0f} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_note(self) -> str:
        code = self.proc.poll()
        return "" if code is None else f"with code {code}"

    def offer(self, deadline_ns: int, payloads: list[tuple[int, bytes]]) -> bool:
        """Hand over one tick's messages for the monotonic `deadline_ns`; False (counted) when
        the socket is full or closed: never blocks."""
        return self._send(encode(OFFER, deadline_ns, payloads))

    def hold(self, payloads: list[tuple[int, bytes]]) -> bool:
        """Cancel the pending offer and publish `payloads` (the hold) at once, in order."""
        return self._send(encode(HOLD, 0, payloads))

    def _send(self, frame: bytes) -> bool:
        try:
            self._sock.send(frame)
        except OSError:  # full (BlockingIOError) or closed
            self.counts.send_failed += 1
            return False
        self.counts.sent += 1
        return True

    def poll_stats(self) -> HandoffCounts:
        """Take the child's newest counts (non-blocking) and return all counts."""
        self._drain()
        return self.counts

    def _drain(self) -> None:
        while True:
            try:
                frame = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except OSError:  # nothing waiting (BlockingIOError), or closed
                return
            if not frame:
                return  # the child closed its end
            try:
                kind, _, payloads = decode(frame)
                values = json.loads(payloads[0][1]) if payloads else {}
            except (ValueError, IndexError):
                continue
            if kind == READY:
                self.ready_note = str(values.get("note", "ready"))
            elif kind == STATS:
                self.counts.child = values

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close the socket (the child's end of file) and reap the child."""
        self._sock.close()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)


def child_env() -> dict[str, str]:
    """The node's environment, with the directories this node imported its packages from first
    on PYTHONPATH: the child must import the same code even where the node's path was set up
    by its entry point rather than by the environment."""
    import asyncvla_action_node
    import asyncvla_common
    import asyncvla_msgs

    roots = []
    for package in (asyncvla_action_node, asyncvla_common, asyncvla_msgs):
        root = os.path.dirname(os.path.dirname(os.path.abspath(package.__file__)))
        if root not in roots:
            roots.append(root)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(roots + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and p not in roots])
    return env


# --- the child --------------------------------------------------------------------------------
def message_class(type_name: str):
    """`pkg/msg/Type` -> the message class (ValueError for anything else)."""
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ValueError(f"message type {type_name!r}: expected pkg/msg/Type")
    return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])


def _send_json(sock: socket.socket, kind: int, values: dict) -> None:
    try:
        sock.send(encode_json(kind, values), socket.MSG_DONTWAIT)
    except OSError:
        pass  # a busy or gone parent: the counts are sent again at the next period


def serve(sock: socket.socket, schedule: PublishSchedule, publish, now_ns=time.monotonic_ns,
          send_stats=None, ok=lambda: True) -> str:
    """The child's loop until the parent's end closes (or `ok()` turns False: ROS shut down);
    returns why it ended.

    `publish(outlet, data)` publishes one serialised message. Between deadlines the child waits
    on the socket (millisecond resolution); from PRECISE_SLEEP_NS before a deadline it sleeps
    absolutely, then takes what arrived (a hold cancels) and publishes what is due."""
    next_stats = now_ns()
    buffer = bytearray(MAX_FRAME)  # one receive buffer, not a new one at every deadline
    while ok():
        wait = schedule.wait_ns(now_ns())
        if wait is None or wait > 0:
            timeout = STATS_PERIOD_S if wait is None else min(wait / 1e9, STATS_PERIOD_S)
            readable, _, _ = select.select([sock], [], [], timeout)
            if readable and not _take(sock, schedule, publish, buffer):
                return "parent closed its end"
        else:
            sleep_until(schedule.pending_deadline_ns, now_ns)
            if not _take(sock, schedule, publish, buffer):
                return "parent closed its end"
            due = schedule.due(now_ns())
            if due:
                start = now_ns()
                for outlet, data in due:
                    publish(outlet, data)
                schedule.published(now_ns() - start)
        if send_stats is not None and now_ns() >= next_stats:
            send_stats(schedule.stats())
            next_stats = now_ns() + int(STATS_PERIOD_S * 1e9)
    return "ROS shut down"


def _take(sock: socket.socket, schedule: PublishSchedule, publish, buffer: bytearray) -> bool:
    """Apply every frame waiting on the socket (received into `buffer`); False at end of file."""
    view = memoryview(buffer)
    while True:
        try:
            size = sock.recv_into(buffer, 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not size:
            return False
        for outlet, data in schedule.receive(bytes(view[:size])):
            publish(outlet, data)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    own = argv[:len(argv) - len(ros_args)]
    parser = argparse.ArgumentParser(description="The action node's publisher process")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--namespace", default="/")
    parser.add_argument("--qos", default="COMMAND")
    parser.add_argument("--priority", type=int, default=0)
    parser.add_argument("--max-late-ms", type=float, required=True)
    parser.add_argument("--outlet", action="append", default=[], help="pkg/msg/Type=/topic")
    args = parser.parse_args(own)
    sock = socket.socket(fileno=args.fd)

    import rclpy
    from rclpy.node import Node

    from asyncvla_common import qos

    rclpy.init(args=["publisher_process", *ros_args])
    node = Node(args.node_name, namespace=args.namespace, start_parameter_services=False)
    publishers = []
    try:
        profile = getattr(qos, args.qos)
        for outlet in args.outlet:
            type_name, topic = outlet.split("=", 1)
            publishers.append(node.create_publisher(message_class(type_name), topic, profile))
    except (ValueError, ImportError, AttributeError) as exc:  # one line, not a traceback
        print(f"publisher process: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    note = make_realtime(args.priority)
    schedule = PublishSchedule(max_late_ns=int(args.max_late_ms * 1e6),
                               outlet_count=len(publishers))
    _send_json(sock, READY, {"note": f"{note}, pid {os.getpid()}"})

    def publish(index: int, data: bytes) -> None:
        try:
            publishers[index].publish(data)
        except Exception as exc:  # noqa: BLE001 - counted and logged; the next tick may work
            schedule.counts["publish_errors"] += 1
            node.get_logger().error(f"publish failed: {type(exc).__name__}: {exc}",
                                    throttle_duration_sec=2.0)

    try:
        why = serve(sock, schedule, publish, ok=rclpy.ok,
                    send_stats=lambda stats: _send_json(sock, STATS, stats))
    except KeyboardInterrupt:
        why = "interrupted"
    node.get_logger().info(f"publisher process ends ({why}): {json.dumps(schedule.stats())}")
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
