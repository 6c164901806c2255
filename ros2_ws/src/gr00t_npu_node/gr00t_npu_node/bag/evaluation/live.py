# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Replay a bag into a running gr00t_node and record what it commands: the bag's camera, joint states and
instruction go in on sim time (/clock from the bag), the node's trajectories and latencies are recorded to a bag.

The node must run with `use_sim_time: true`: the bag's stamps are the bag's time, not the wall clock's.
Recording ends once no further chunk can come: the node starts its next inference `execute_steps` steps after
the last chunk's start, and the bag's clock stops at its last message.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from gr00t_npu_node.bag.rosbag2.bagio import BagError, BagReader
from gr00t_npu_node.bag.dataset.layout import JointLayout, Topics, resolve_topic
from gr00t_npu_node.bag.rosbag2.play import PlayResult, SubscriberTimeout, play_bag
from gr00t_npu_node.bag.rosbag2.record import BagRecorder, record_bag
from gr00t_npu_node.ros.messages import to_ns

NODE_NAME = "gr00t_node"
CLOCK_HZ = 200.0


def clock_slack_ns(rate: float) -> int:
    """How far the recorder's sim clock may be from the node's when a chunk arrives: two /clock ticks plus 100 ms
    of wall-clock scheduling on a busy machine, in bag time."""
    return round((2 / CLOCK_HZ + 0.1) * rate * 1e9)


@dataclass
class LiveRun:
    recorded: Path
    command_topics: dict[str, str]
    latency_topic: str
    camera_stamps: list[int]
    play: PlayResult


class _ChunkWatcher:
    """Tracks the newest chunk start per group as trajectories are recorded (holds, stamp 0, are ignored)."""

    def __init__(self, group_of_topic: dict[str, str]) -> None:
        self._group_of_topic = group_of_topic
        self._condition = threading.Condition()
        self.starts: dict[str, list[int]] = {g: [] for g in group_of_topic.values()}

    def __call__(self, topic: str, receive_ns: int, data: bytes) -> None:
        if topic not in self._group_of_topic:
            return
        start = to_ns(deserialize_message(data, JointTrajectory).header.stamp)
        if start:
            with self._condition:
                self.starts[self._group_of_topic[topic]].append(start)
                self._condition.notify_all()

    def wait_until_done(self, last_input_ns: int, step_ns: int, execute_steps: int, timeout: float) -> bool:
        """True once every group has the same newest chunk and no later inference can be triggered."""
        def done() -> bool:
            newest = {s[-1] if s else None for s in self.starts.values()}
            if len(newest) != 1 or None in newest:
                return False
            return newest.pop() + execute_steps * step_ns > last_input_ns

        with self._condition:
            return self._condition.wait_for(done, timeout)


def replayed_camera_stamps(bag_path: Path | str, topics: Topics) -> tuple[list[int], int]:
    """Header stamps of the bag's images and the bag time of the last one (where the replayed clock stops)."""
    with BagReader(bag_path) as bag:
        if topics.camera not in bag.topics:
            raise BagError(f"{bag.path} has no camera topic {topics.camera}; pass the bag's camera topic")
        stamps, last_receive = [], 0
        for _, receive_ns, data in bag.messages([topics.camera]):
            stamps.append(to_ns(deserialize_message(data, Image).header.stamp))
            last_receive = receive_ns
        return stamps, last_receive


class _RecordingThread(threading.Thread):
    """`record_bag` in a thread, keeping its result or its error for the caller."""

    def __init__(self, out: Path | str, topics: list[str], on_message) -> None:
        super().__init__(name="gr00t_live_recorder")
        self.stop = threading.Event()
        self.recorder: BagRecorder | None = None
        self.error: BaseException | None = None
        self._args = (out, topics, on_message)

    def run(self) -> None:
        out, topics, on_message = self._args
        try:
            record_bag(out, topics=topics, use_sim_time=True, stop=self.stop, on_start=self._keep_recorder,
                       on_message=on_message)
        except BaseException as err:  # handed to the caller's thread, which re-raises it
            self.error = err

    def _keep_recorder(self, recorder: BagRecorder) -> None:
        self.recorder = recorder

    def subscribed(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.recorder is not None and self.recorder.all_subscribed()


def replay_into_node(bag_path: Path | str, out: Path | str, layout: JointLayout, *, topics: Topics = Topics(),
                     namespace: str = "", rate: float = 1.0, start_timeout: float = 120.0,
                     finish_timeout: float = 30.0, joint_states_from_bag: bool = True,
                     clock_subscribers: int = 2) -> LiveRun:
    """Play the bag's node inputs into the running node and record its commands to the new bag `out`.

    `joint_states_from_bag` False leaves the joint states to a robot (real or simulated) that executes the
    commands: the loop closed, instead of the recorded states, which ignore what the node commands.
    `clock_subscribers`: how many subscribers /clock has when every participant on the replayed clock is up (the
    node and our recorder; more when others run on it, such as a simulated robot or other nodes in the domain)."""
    camera_stamps, last_input_ns = replayed_camera_stamps(bag_path, topics)
    command_topics = layout.resolved_command_topics(namespace)
    latency_topic = resolve_topic(f"{NODE_NAME}/inference_latency", namespace)
    watcher = _ChunkWatcher({t: g for g, t in command_topics.items()})
    recording = _RecordingThread(out, [*command_topics.values(), latency_topic], watcher)
    recording.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not recording.subscribed():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node's command topics {sorted(command_topics.values())} and "
                                   f"{latency_topic} did not appear within {start_timeout} s: is gr00t_node running "
                                   f"(namespace {namespace!r}) and active?")
            time.sleep(0.05)
        inputs = [topics.camera, *([topics.joint_states] if joint_states_from_bag else []), topics.instruction]
        # The node subscribes to relative names: in a namespace, the bag's topics move into it.
        remap = {t: resolve_topic(t.lstrip("/"), namespace) for t in inputs} if namespace else None
        # Everyone on sim time (the node, our recorder, ...) must be up before the first /clock message.
        try:
            played = play_bag(bag_path, rate=rate, topics=inputs, remap=remap, clock_hz=CLOCK_HZ,
                              wait_for={**{t: 1 for t in inputs}, "/clock": clock_subscribers},
                              wait_timeout=start_timeout)
        except SubscriberTimeout as err:
            raise TimeoutError(f"{err}; check the node's image_topic, joint_states_topic and instruction_topic "
                               "and that it runs with use_sim_time:=true") from None
        step_ns = round(1e9 / layout.action_rate_hz)
        if not watcher.wait_until_done(last_input_ns, step_ns, layout.execute_steps, finish_timeout):
            raise TimeoutError(f"the node's chunks did not catch up with the replay within {finish_timeout} s "
                               f"(chunk starts so far: { {g: len(s) for g, s in watcher.starts.items()} }); is it "
                               "running with use_sim_time:=true and in policy mode?")
    finally:
        recording.stop.set()
        recording.join()
    if recording.error is not None:
        raise recording.error
    return LiveRun(Path(out), command_topics, latency_topic, camera_stamps, played)
