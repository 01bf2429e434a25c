"""Robot bridge: the robot PC's ZMQ `robot_state` messages -> JointState, PoseStamped, force.

Subscribes (ZMQ SUB, connect) to `wire.endpoint` (default tcp://127.0.0.1:5556; on the lab
network the robot PC's address) for topic b"robot_state", payload `<ddf12f` (wire/robot.py).
Publishes, all stamped with origin_ts mapped to local ROS time by the clock-offset estimator:

- `robot/joint_states` (sensor_msgs/JointState): `joint_names`, positions in radians (REP-103);
  velocity and effort are empty (not on the wire).
- `robot/ee_pose` (geometry_msgs/PoseStamped, frame `pose.frame_id`): position in metres,
  orientation from the three wire angles under `pose.euler_convention`
  (asyncvla_core/rotations.py; default `xyz_intrinsic`, the Mecademic Meca500's mobile-XYZ
  Euler angles from GetPose).
- `robot/force` (std_msgs/Float64): the payload's scalar force as sent (N), published right
  after the JointState with the same origin; Float64 has no stamp of its own.
- `/diagnostics`: rates, drops by reason, clock offset/drift/jumps, last error.

Parameters: bridge_config.RobotBridgeConfig.
"""
from __future__ import annotations

import zmq
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64

from .bridge_base import BridgeNode, run_bridge
from asyncvla_bridges.bridge_config import RobotBridgeConfig
from asyncvla_common.qos import stream_publisher
from asyncvla_common.timeconv import seconds_to_stamp
from .wire.errors import WireError
from .wire.robot import NUM_JOINTS, TOPIC, parse_robot_message
from asyncvla_core.rotations import euler_to_quaternion, parse_convention

POLL_MS = 100
DRAIN_MAX = 1000


class RobotBridge(BridgeNode):
    DROP_REASONS = ("parts", "topic", "size", "nonfinite", "clock_settling", "clock_suspect",
                    "late", "bad_stamp", "reordered")

    def __init__(self) -> None:
        super().__init__("robot_bridge", RobotBridgeConfig)
        cfg: RobotBridgeConfig = self.config
        self.endpoint = cfg.wire.endpoint
        self.joint_names = list(cfg.joint_names)
        if len(self.joint_names) != NUM_JOINTS:
            raise ValueError(f"joint_names must have {NUM_JOINTS} entries")
        self.convention = cfg.pose.euler_convention
        parse_convention(self.convention)
        self.frame_id = cfg.pose.frame_id
        # One second of states at 100 Hz: a reliable KEEP_LAST writer overwrites what a slow
        # subscriber (ros2 bag record on a loaded machine) has not acknowledged yet.
        qos = stream_publisher(depth=100)
        self._joint_pub = self.create_publisher(JointState, "robot/joint_states", qos)
        self._pose_pub = self.create_publisher(PoseStamped, "robot/ee_pose", qos)
        self._force_pub = self.create_publisher(Float64, "robot/force", qos)
        self._zmq = zmq.Context()
        self._sock = self._zmq.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
        self._sock.connect(self.endpoint)
        self.start_zmq_receiving(self._sock, DRAIN_MAX, POLL_MS)

    def process(self, parts: list[bytes], local_now: float, queued_for: float = 0.0) -> None:
        self.note_received()
        try:
            state = parse_robot_message(parts)
            stamp = seconds_to_stamp(self.map_stamp(state.origin_ts, state.send_ts, local_now,
                                                    queued_for=queued_for))
        except WireError as error:
            self.drop(error)
            return
        joints = JointState()
        joints.header.stamp = stamp
        joints.name = self.joint_names
        joints.position = state.joints_rad
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = self.frame_id
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = state.position_m
        q = euler_to_quaternion(state.orientation_deg, self.convention)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in q)
        self._joint_pub.publish(joints)
        self._pose_pub.publish(pose)
        self._force_pub.publish(Float64(data=float(state.force)))
        self.note_published()

    def extra_values(self) -> dict[str, object]:
        return {"euler_convention": self.convention}

    def close(self) -> None:
        super().close()
        self._sock.close(linger=0)
        self._zmq.term()


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_bridge(RobotBridge, args))


if __name__ == "__main__":
    main()
