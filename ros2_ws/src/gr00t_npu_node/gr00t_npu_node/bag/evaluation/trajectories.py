# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The node's commanded chunks read back from a recorded bag: one `trajectory_msgs/JointTrajectory` per
commanded group and chunk, grouped into chunks by their common header stamp."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from gr00t_npu_node.bag.rosbag2.bagio import BagError, BagReader
from gr00t_npu_node.ros.messages import to_ns


@dataclass(frozen=True)
class GroupTrajectory:
    receive_ns: int
    start_ns: int
    joint_names: tuple[str, ...]
    times_from_start_ns: np.ndarray    # [points] int64
    positions: np.ndarray              # [points, joints] float64, in joint_names order

    @property
    def times_ns(self) -> np.ndarray:
        """When each point is due."""
        return self.start_ns + self.times_from_start_ns


@dataclass(frozen=True)
class CommandChunk:
    start_ns: int
    groups: dict[str, GroupTrajectory]

    @property
    def num_points(self) -> int:
        return len(next(iter(self.groups.values())).times_from_start_ns)


def _group_trajectory(receive_ns: int, data: bytes) -> GroupTrajectory:
    msg = deserialize_message(data, JointTrajectory)
    return GroupTrajectory(
        receive_ns=receive_ns,
        start_ns=to_ns(msg.header.stamp),
        joint_names=tuple(msg.joint_names),
        times_from_start_ns=np.array([to_ns(p.time_from_start) for p in msg.points], dtype=np.int64),
        positions=np.array([list(p.positions) for p in msg.points], dtype=np.float64).reshape(len(msg.points), -1),
    )


@dataclass(frozen=True)
class CommandLog:
    chunks: list[CommandChunk]            # policy chunks in stamp order
    hold_times: dict[str, list[int]]      # per group: receive times of hold commands (stamp 0, "stay where you are")
    arrivals: dict[str, list[tuple[int, int]]]  # per group: (receive time, chunk stamp) in the order recorded

    @property
    def holds(self) -> dict[str, int]:
        return {g: len(times) for g, times in self.hold_times.items()}


def read_command_log(path: Path | str, command_topics: dict[str, str]) -> CommandLog:
    """Every recorded trajectory of the commanded groups, as chunks (grouped by header stamp) and holds."""
    with BagReader(path) as bag:
        if missing := [t for t in command_topics.values() if t not in bag.topics]:
            raise BagError(f"{bag.path} has no trajectories on {missing} (it has {sorted(bag.topics)}): the node "
                           "commanded nothing there; check its mode, namespace and diagnostics")
        group_of = {t: g for g, t in command_topics.items()}
        by_stamp: dict[int, dict[str, GroupTrajectory]] = {}
        hold_times: dict[str, list[int]] = {g: [] for g in command_topics}
        arrivals: dict[str, list[tuple[int, int]]] = {g: [] for g in command_topics}
        for topic, receive_ns, data in bag.messages(list(command_topics.values())):
            group, trajectory = group_of[topic], _group_trajectory(receive_ns, data)
            if trajectory.start_ns == 0:
                hold_times[group].append(receive_ns)
                continue
            arrivals[group].append((receive_ns, trajectory.start_ns))
            chunk = by_stamp.setdefault(trajectory.start_ns, {})
            if group in chunk:
                raise BagError(f"{path}: two {group} trajectories stamped {trajectory.start_ns} ns")
            chunk[group] = trajectory
    if incomplete := [s for s, groups in by_stamp.items() if len(groups) != len(command_topics)]:
        raise BagError(f"{path}: chunks stamped {sorted(incomplete)[:5]} ns lack some groups' trajectories "
                       "(the node publishes every group of a chunk or none)")
    return CommandLog([CommandChunk(s, by_stamp[s]) for s in sorted(by_stamp)], hold_times, arrivals)


def read_latencies(path: Path | str, topic: str) -> list[float]:
    """The node's per-inference latencies (s), when its latency topic was recorded."""
    with BagReader(path) as bag:
        if topic not in bag.topics:
            return []
        return [deserialize_message(data, Float64).data for _, _, data in bag.messages([topic])]


def observation_frame(chunk: CommandChunk, camera_stamps: list[int], step_ns: int, horizon: int,
                      tolerance_ns: int = 1_000) -> int | None:
    """Index of the replayed image the chunk was computed from, None if no image matches.

    The node stamps a chunk `observation + skipped * step`, where skipped = horizon - points (steps already due
    when inference finished), so the observation's stamp follows from the chunk alone."""
    observation_ns = chunk.start_ns - (horizon - chunk.num_points) * step_ns
    index = int(np.searchsorted(camera_stamps, observation_ns - tolerance_ns))
    if index < len(camera_stamps) and abs(camera_stamps[index] - observation_ns) <= tolerance_ns:
        return index
    return None
