# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Episode -> rosbag2: camera frames, joint states, the latched instruction and the recorded action, all stamped
with the episode's own timestamps on the bag time base (the same time as header stamp and as receive time)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


from gr00t_npu_node.bag.rosbag2.bagio import BagWriter
from gr00t_npu_node.bag.progress import progress as show_progress
from gr00t_npu_node.bag.dataset.episode import Episode, LeRobotDataset
from gr00t_npu_node.bag.dataset.layout import BAG_EPOCH_NS, EPISODE_SPACING_NS, SCORING_TOPICS_KEY, JointLayout, Topics
from gr00t_npu_node.bag.dataset.messages import image_cdr, joint_state_cdr, string_cdr
from gr00t_npu_node.bag.rosbag2.qos import bag_qos

CAMERA_QOS = bag_qos(reliable=True, transient_local=False, depth=5)
JOINT_STATES_QOS = bag_qos(reliable=True, transient_local=False, depth=10)
INSTRUCTION_QOS = bag_qos(reliable=True, transient_local=True, depth=1)
RECORDED_ACTION_QOS = bag_qos(reliable=True, transient_local=False, depth=10)


@dataclass(frozen=True)
class ConvertResult:
    episode: str
    path: Path
    frames: int
    counts: dict[str, int]
    seconds: float


def episode_start_ns(episode_index: int) -> int:
    return BAG_EPOCH_NS + episode_index * EPISODE_SPACING_NS


def write_episode_bag(episode: Episode, out: Path | str, *, topics: Topics = Topics(), storage: str = "mcap",
                      compress: bool = False, progress: bool = False) -> ConvertResult:
    """Write one episode as a new bag directory `out`."""
    started = time.perf_counter()
    base = episode_start_ns(episode.index)
    stamps = [base + round(t * 1e9) for t in episode.timestamps]
    with BagWriter(out, storage=storage, compress=compress) as writer:
        writer.set_custom_data(SCORING_TOPICS_KEY, topics.recorded_action)
        writer.set_custom_data("gr00t.episode", episode.name)
        instruction = writer.add_topic(topics.instruction, "std_msgs/msg/String", [INSTRUCTION_QOS])
        joint_states = writer.add_topic(topics.joint_states, "sensor_msgs/msg/JointState", [JOINT_STATES_QOS])
        camera = writer.add_topic(topics.camera, "sensor_msgs/msg/Image", [CAMERA_QOS])
        recorded_action = writer.add_topic(topics.recorded_action, "sensor_msgs/msg/JointState",
                                           [RECORDED_ACTION_QOS])
        changes = dict(episode.instructions)
        frames = show_progress(episode.frames(), progress, total=episode.num_frames, desc=episode.name, unit="frame",
                               leave=False)
        for i, rgb in enumerate(frames):
            stamp = stamps[i]
            if i in changes:
                # The first instruction is in place at the episode's start, before its first frame.
                writer.write(instruction, base if i == 0 else stamp, string_cdr(changes[i]))
            writer.write(joint_states, stamp, joint_state_cdr(episode.joint_names, episode.states[i], stamp))
            writer.write(camera, stamp, image_cdr(rgb, stamp, episode.camera_frame_id))
            writer.write(recorded_action, stamp, joint_state_cdr(episode.joint_names, episode.actions[i], stamp))
    return ConvertResult(episode.name, Path(out), episode.num_frames, dict(writer.counts),
                         time.perf_counter() - started)


def convert_dataset(dataset_root: Path | str, out_dir: Path | str, layout: JointLayout, *,
                    episodes: Sequence[int] | None = None, max_seconds: float | None = None,
                    topics: Topics = Topics(), storage: str = "mcap", compress: bool = False,
                    progress: bool = False) -> list[ConvertResult]:
    """One bag per episode, named `<out_dir>/episode_<index>`."""
    dataset = LeRobotDataset.open(dataset_root)
    indices = list(dataset.episode_indices if episodes is None else episodes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for index in show_progress(indices, progress and len(indices) > 1, desc="episodes", unit="episode"):
        episode = dataset.episode(index, layout).head(max_seconds)
        results.append(write_episode_bag(episode, out_dir / f"episode_{index:06d}", topics=topics,
                                         storage=storage, compress=compress, progress=progress))
    return results
