# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Building and reading the outgoing and teleop messages (numpy <-> ROS types), nothing else."""
from __future__ import annotations

import array
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

NS = 1_000_000_000


def ros_time(ns: int) -> Time:
    return Time(sec=ns // NS, nanosec=ns % NS)


def to_ns(time_or_duration) -> int:
    return time_or_duration.sec * NS + time_or_duration.nanosec


def joint_trajectory(
    joint_names: Sequence[str],
    start_ns: int,
    times_from_start_ns: Sequence[int],
    positions: np.ndarray,
    velocities: np.ndarray,
) -> JointTrajectory:
    """A trajectory for a JointTrajectoryController; `start_ns` 0 means "start on receipt"."""
    msg = JointTrajectory()
    msg.header.stamp = ros_time(start_ns)
    msg.joint_names = list(joint_names)
    points = []
    for t, q, v in zip(times_from_start_ns, positions, velocities):
        point = JointTrajectoryPoint()
        # array('d') is the setter's fast path: no per-element type check.
        point.positions = array.array("d", q.tobytes())
        point.velocities = array.array("d", v.tobytes())
        point.time_from_start = Duration(sec=t // NS, nanosec=t % NS)
        points.append(point)
    msg.points = points
    return msg


class ChunkTrajectoryWriter:
    """One reusable JointTrajectory per group for policy chunks (point j at (j + 1) * step): only positions,
    velocities and the stamp change between chunks, which saves most of the message construction cost.
    The message is valid until the next `fill`; publish it before that (rclpy serializes on publish)."""

    def __init__(self, joint_names: Sequence[str], step_ns: int):
        self._msg = JointTrajectory(joint_names=list(joint_names))
        self._step_ns = step_ns
        self._points: list[JointTrajectoryPoint] = []

    def fill(self, start_ns: int, positions: np.ndarray, velocities: np.ndarray) -> JointTrajectory:
        while len(self._points) < len(positions):
            t = (len(self._points) + 1) * self._step_ns
            self._points.append(JointTrajectoryPoint(time_from_start=Duration(sec=t // NS, nanosec=t % NS)))
        for point, q, v in zip(self._points, positions, velocities):
            point.positions = array.array("d", q.tobytes())
            point.velocities = array.array("d", v.tobytes())
        self._msg.points = self._points[: len(positions)]
        self._msg.header.stamp = ros_time(start_ns)
        return self._msg


def trajectory_arrays(msg: JointTrajectory, joints: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(positions [N, D], velocities [N, D] or None, times_from_start_ns [N]) reordered to `joints`.

    Raises ValueError naming the problem: joints missing or foreign to the group, points without positions,
    or time_from_start not strictly increasing.
    """
    names = list(msg.joint_names)
    problems = {
        "missing": [j for j in joints if j not in names],
        "unknown": [n for n in names if n not in joints],
        "repeated": sorted({n for n in names if names.count(n) > 1}),
    }
    details = [f"{label} {', '.join(found)}" for label, found in problems.items() if found]
    if details:
        raise ValueError(
            f"teleop trajectory joints {names} do not match the group's joints {list(joints)}: {'; '.join(details)}"
        )
    if not msg.points:
        raise ValueError("teleop trajectory has no points")
    order = np.array([names.index(j) for j in joints])
    if any(len(p.positions) != len(names) for p in msg.points):
        raise ValueError(f"every teleop trajectory point needs {len(names)} positions")
    positions = np.array([p.positions for p in msg.points], dtype=np.float64)[:, order]
    velocities = None
    if all(len(p.velocities) == len(names) for p in msg.points):
        velocities = np.array([p.velocities for p in msg.points], dtype=np.float64)[:, order]
    times = np.array([to_ns(p.time_from_start) for p in msg.points], dtype=np.int64)
    if times[0] <= 0 or np.any(np.diff(times) <= 0):
        raise ValueError("teleop trajectory time_from_start must be positive and strictly increasing")
    return positions, velocities, times


def action_chunk(chunk: np.ndarray) -> Float32MultiArray:
    """[steps, joints] float32 with labelled dimensions ("step", "joint")."""
    steps, joints = chunk.shape
    msg = Float32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label="step", size=steps, stride=steps * joints),
        MultiArrayDimension(label="joint", size=joints, stride=joints),
    ]
    msg.data = array.array("f", np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    return msg
