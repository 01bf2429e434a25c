"""The action node's outgoing messages, built from what the loop decided (ROS glue only)."""
from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from asyncvla_action_node.action_core import TickOutcome
from asyncvla_common.timeconv import ns_to_stamp
from asyncvla_core.chunk import Chunk
from asyncvla_msgs.msg import ActionChunk


def duration(seconds: float) -> Duration:
    sec = int(math.floor(seconds))
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def action_chunk(outcome: TickOutcome, sequence: int, dim_names: list[str],
                 action_space: str) -> ActionChunk:
    """The ActionChunk of a published tick: actions, their reference state, the VL features
    (sequence, age, reuse) and the inference (sequence, stamps, reuse) they were computed from."""
    chunk, vl, prov = outcome.chunk, outcome.vl, outcome.provenance
    msg = ActionChunk()
    msg.header.stamp = ns_to_stamp(chunk.stamp_ns)
    msg.header.frame_id = "base_link"
    msg.horizon, msg.action_dim = chunk.actions.shape
    msg.actions = chunk.actions.reshape(-1).astype(np.float32)
    msg.dim_names = dim_names
    msg.action_space = action_space
    msg.reference = chunk.reference.astype(np.float32)
    msg.step_period = chunk.step_period
    msg.vl_sequence, msg.vl_age, msg.vl_reuse_count = vl.sequence, vl.age, vl.reuse_count
    msg.inference_time = outcome.inference_time
    msg.sequence = sequence
    msg.inference_sequence = prov.inference_sequence
    msg.inference_stamp = ns_to_stamp(prov.inference_stamp_ns)
    msg.sensor_stamp = ns_to_stamp(prov.sensor_stamp_ns)
    msg.inference_reuse_count = prov.reuse_count
    return msg


def joint_trajectory(chunk: Chunk, header, joint_names: list[str]) -> JointTrajectory:
    """A joint_delta chunk as absolute joint positions, step i at (i + 1) * step_period."""
    traj = JointTrajectory()
    traj.header = header
    traj.joint_names = joint_names
    for i, row in enumerate(chunk.actions):
        point = JointTrajectoryPoint()
        point.positions = (chunk.reference + row[:6]).astype(float).tolist()
        point.time_from_start = duration((i + 1) * chunk.step_period)
        traj.points.append(point)
    return traj


def hold_trajectory(stamp: Time, joint_names: list[str]) -> JointTrajectory:
    """An empty trajectory: a joint_trajectory_controller stops and holds."""
    stop = JointTrajectory()
    stop.header.stamp = stamp
    stop.joint_names = joint_names
    return stop
