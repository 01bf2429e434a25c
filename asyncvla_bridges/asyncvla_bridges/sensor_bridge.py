"""Force/OCT sensor bridge: the sensor PC's UDP datagrams -> ForceOctBatch and WrenchStamped.

Binds a UDP socket to `wire.address`:`wire.port` (default 127.0.0.1:9999; on the lab network
the interface the sensor PC sends to, or 0.0.0.0; port 0 = any free port, logged at start),
SO_RCVBUF `wire.receive_buffer` (4 MiB, as the original; Linux caps it at net.core.rmem_max, the
granted size is reported in /diagnostics). Per datagram (wire/sensor.py) it publishes, with
every sample's `ts` mapped to local ROS time by the clock-offset estimator:

- `sensor/force_oct` (asyncvla_msgs/ForceOctBatch, frame `probe.frame_id`): the datagram's records
  that passed validation, per-sample stamps, force (N), A-lines, and the clock offset used.
- `sensor/wrench` (geometry_msgs/WrenchStamped, frame `probe.frame_id`), one per sample: the
  scalar force on the probe axis `probe.force_axis` (x, y, z, -x, -y or -z), torque zero.
- `/diagnostics`: rates, drops by reason (datagram_* count datagrams, record_* count records),
  kernel receive-buffer overflows (SO_RXQ_OVFL), clock offset/drift/jumps, last error.

Parameters: bridge_config.SensorBridgeConfig.
"""
from __future__ import annotations

import array
import select
import socket
import struct
import time

import numpy as np
from asyncvla_msgs.msg import ForceOctBatch
from geometry_msgs.msg import WrenchStamped

from .bridge_base import BridgeNode, run_bridge
from asyncvla_bridges.bridge_config import SensorBridgeConfig
from asyncvla_common.qos import stream_publisher
from asyncvla_common.timeconv import seconds_to_stamp
from .wire.errors import WireError
from .wire.sensor import ALINE_LENGTH, MAX_DATAGRAM, finite_mask, parse_sensor_datagram

POLL_S = 0.1
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: dropped-datagram count per recvmsg
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: kernel receive time per datagram
TIMESPEC = struct.Struct("@qq")
AXES = {"x": (0, 1.0), "y": (1, 1.0), "z": (2, 1.0), "-x": (0, -1.0), "-y": (1, -1.0),
        "-z": (2, -1.0)}


class SensorBridge(BridgeNode):
    DROP_REASONS = ("datagram_size", "datagram_empty", "record_nonfinite",
                    "record_clock_settling", "record_clock_suspect", "record_late",
                    "record_bad_stamp", "record_reordered")

    def __init__(self) -> None:
        super().__init__("sensor_bridge", SensorBridgeConfig)
        cfg: SensorBridgeConfig = self.config
        address, port, rcvbuf = cfg.wire.address, cfg.wire.port, cfg.wire.receive_buffer
        self.frame_id = cfg.probe.frame_id
        axis = cfg.probe.force_axis
        if axis not in AXES:
            raise ValueError(f"probe.force_axis must be one of {sorted(AXES)}")
        self._axis_index, self._axis_sign = AXES[axis]
        self.publish_wrench = cfg.publish_wrench
        # Deeper than the default history: up to 15 samples arrive in one datagram and are
        # published back to back, and a reliable KEEP_LAST writer overwrites what a subscriber
        # has not acknowledged yet.
        self._batch_pub = self.create_publisher(ForceOctBatch, "sensor/force_oct",
                                                stream_publisher(depth=50))
        self._wrench_pub = self.create_publisher(WrenchStamped, "sensor/wrench",
                                                 stream_publisher(depth=200))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(rcvbuf))
        # Linux reports twice the usable size it granted (bookkeeping overhead included).
        self.granted_rcvbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if self.granted_rcvbuf < rcvbuf:
            self.get_logger().warning(
                f"SO_RCVBUF {rcvbuf} requested, {self.granted_rcvbuf} granted: raise "
                "net.core.rmem_max to avoid losing datagrams in bursts")
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            self._ovfl = True
        except OSError:
            self._ovfl = False
        self.kernel_drops = 0
        # The kernel's receive time of each datagram: the clock estimator then sees when a
        # datagram arrived, not when this thread got to it (exact under CPU load).
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._kernel_stamps = True
        except OSError:
            self._kernel_stamps = False
        self._sock.bind((address, int(port)))
        self._sock.setblocking(False)
        self._queue_empty, self._empty_at = True, self.now_s()
        host, bound_port = self._sock.getsockname()[:2]
        self.endpoint = f"udp://{host}:{bound_port}"
        self._ancbuf = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(TIMESPEC.size)
        self.start_receiving(self._step)

    def _step(self) -> None:
        try:
            data, ancdata, _, _ = self._sock.recvmsg(MAX_DATAGRAM + 1, self._ancbuf)
        except BlockingIOError:
            self._queue_empty, self._empty_at = True, self.now_s()
            select.select([self._sock], [], [], POLL_S)
            return
        wall_now = time.time()
        local_now = self.now_s()  # read second: the kernel stamp below then never makes it early
        # Read right after the queue was seen empty: a clean receive time; behind another
        # datagram: it may have waited since then (the kernel's stamp, when given, is exact).
        queued_for = 0.0 if self._queue_empty else local_now - self._empty_at
        self._queue_empty = False
        for level, kind, payload in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            if kind == SO_RXQ_OVFL and len(payload) >= 4:
                self.kernel_drops = struct.unpack("I", payload[:4])[0]
            elif kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                sec, nsec = TIMESPEC.unpack_from(payload)
                waited = max(0.0, wall_now - (sec + 1e-9 * nsec))
                local_now, queued_for = local_now - waited, 0.0
        self.process(data, local_now, max(0.0, queued_for))

    def process(self, data: bytes, local_now: float, queued_for: float = 0.0) -> None:
        try:
            batch = parse_sensor_datagram(data)
        except WireError as error:
            self.note_received()
            self.drop(error, prefix="datagram_")
            return
        self.note_received(len(batch))
        finite = finite_mask(batch)
        if not finite.all():
            self.drop(WireError("nonfinite", "NaN or infinite value in a record"),
                      count=int((~finite).sum()), prefix="record_")
        ts, send_ts = batch.ts, batch.send_ts
        rows = [int(i) for i in np.flatnonzero(finite)]
        # The whole datagram informs the clock before any of its samples is stamped: its
        # first samples are older than its last by up to (N-1)/650 s.
        verdicts = [self.observe_clock(self.clock_time(float(ts[i]), float(send_ts[i])),
                                       local_now, queued_for) for i in rows]
        keep: list[int] = []
        stamps: list[float] = []
        for i, verdict in zip(rows, verdicts):
            try:
                stamps.append(self.stamp_sample(float(ts[i]), verdict, local_now,
                                                queued_for=queued_for))
            except WireError as error:
                self.drop(error, prefix="record_")
                continue
            keep.append(i)
        if keep:
            self._publish(batch.records[keep], stamps)

    def _publish(self, records: np.ndarray, stamps: list[float]) -> None:
        msg = ForceOctBatch()
        msg.header.frame_id = self.frame_id
        msg.sample_stamps = [seconds_to_stamp(s) for s in stamps]
        msg.header.stamp = msg.sample_stamps[-1]
        msg.num_samples = len(records)
        msg.aline_length = ALINE_LENGTH
        force = np.ascontiguousarray(records["force"], dtype=np.float32)
        msg.force = array.array("f", force.tobytes())
        msg.alines = array.array("f", np.ascontiguousarray(records["aline"]).tobytes())
        msg.clock_offset = float(self.estimator.offset or 0.0)
        self._batch_pub.publish(msg)
        if self.publish_wrench:
            for stamp, value in zip(msg.sample_stamps, force.tolist()):
                wrench = WrenchStamped()
                wrench.header.stamp = stamp
                wrench.header.frame_id = self.frame_id
                setattr(wrench.wrench.force, "xyz"[self._axis_index], self._axis_sign * value)
                self._wrench_pub.publish(wrench)
        self.note_published(len(records))

    def extra_values(self) -> dict[str, object]:
        return {"kernel_drops": self.kernel_drops if self._ovfl else "unsupported",
                "kernel_receive_stamps": self._kernel_stamps,
                "receive_buffer_granted": self.granted_rcvbuf}

    def close(self) -> None:
        super().close()
        self._sock.close()


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_bridge(SensorBridge, args))


if __name__ == "__main__":
    main()
