# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Record topics to a bag as raw CDR bytes: subscribe to each topic once a publisher shows its type, store the
QoS the publishers offer, and on stop take every message still queued in the middleware before closing.

Every topic's messages are counted as received, as written and as lost by the middleware (its message-lost
event), so a recording that missed anything says so."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidTopicNameException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.validate_topic_name import validate_topic_name
from rosbags.interfaces import Connection
from rosgraph_msgs.msg import Clock as RosClock

from gr00t_npu_node.bag.rosbag2.bagio import BagWriter
from gr00t_npu_node.bag.rosbag2.qos import CLOCK_QOS, qos_from_endpoint, recording_profile
from gr00t_npu_node.bag.rosbag2.typedefs import message_class

GRAPH_POLL_S = 0.1
DRAIN_IDLE_S = 0.05


@dataclass(frozen=True)
class RecordSummary:
    counts: dict[str, int]            # messages written, by topic
    received: dict[str, int]          # messages taken from the middleware, by topic
    lost: dict[str, int]              # messages the middleware reported lost before they reached the recorder
    unclocked: dict[str, int]         # on sim time: messages written at time 0, no /clock having come
    skipped: dict[str, str]           # topics seen but not recorded, with the reason
    never_published: list[str]        # requested topics that no publisher offered while recording

    def problems(self) -> list[str]:
        """Messages the middleware lost before the recorder took them, one line per topic (every message taken is
        written: a failed write ends the recording with its error)."""
        return [f"{t}: the middleware lost {n} messages before they reached the recorder"
                for t, n in self.lost.items() if n]


class BagRecorder:
    """Records `topics` (all topics when None) seen by `node` into a new bag; the caller spins the node."""

    def __init__(self, out: Path | str, node: Node, *, topics: Sequence[str] | None = None, storage: str = "mcap",
                 compress: bool = False, sim_time: bool = False,
                 on_message: Callable[[str, int, bytes], None] | None = None) -> None:
        self.node = node
        self.sim_time = sim_time
        self._clock_ns: int | None = None           # the newest /clock time, on sim time
        self._clock_subscription = None
        self._held: list[tuple[Connection, bytes]] = []   # received on sim time before the first /clock message
        self.on_message = on_message
        self.wanted = None if topics is None else list(dict.fromkeys(topics))
        for topic in self.wanted or ():
            try:
                validate_topic_name(topic)
            except InvalidTopicNameException as err:
                reason = str(err).splitlines()[0].rstrip(":")
                raise ValueError(f"cannot record {topic!r}: {reason} (the new bag's path goes after -o)") from None
        self.counts: dict[str, int] = {}
        self.received: dict[str, int] = {}
        self.lost: dict[str, int] = {}
        self.unclocked: dict[str, int] = {}
        self.skipped: dict[str, str] = {}      # topic -> why it is not recorded
        self._writer = BagWriter(out, storage=storage, compress=compress)
        self._subscriptions: dict[str, object] = {}
        # A steady-clock timer: the caller's node may be on sim time, whose timers stand still without /clock.
        self._timer = node.create_timer(GRAPH_POLL_S, self.discover, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.discover()

    def all_subscribed(self) -> bool:
        """True once every requested topic is recorded (always False in record-all mode)."""
        return self.wanted is not None and all(t in self._subscriptions for t in self.wanted)

    def discover(self) -> None:
        """Subscribe to every wanted topic that now has a publisher."""
        if self.wanted is None:
            candidates = [name for name, _ in self.node.get_topic_names_and_types()]
        else:
            candidates = self.wanted
        for topic in candidates:
            if topic in self._subscriptions or topic in self.skipped:
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:
                continue
            types = sorted({p.topic_type for p in publishers})
            if len(types) > 1:
                self._skip(topic, f"published with several types {types}")
                continue
            try:
                msg_class = message_class(types[0])
                offers = [p.qos_profile for p in publishers]
                connection = self._writer.add_topic(topic, types[0], [qos_from_endpoint(q) for q in offers])
            except (LookupError, ValueError) as err:
                self._skip(topic, str(err))
                continue
            self.counts[topic] = self.received[topic] = self.lost[topic] = self.unclocked[topic] = 0
            self._subscriptions[topic] = self.node.create_subscription(
                msg_class, topic, lambda data, c=connection: self._on_message(c, data),
                recording_profile(offers), raw=True,
                event_callbacks=SubscriptionEventCallbacks(message_lost=lambda info, t=topic: self._on_lost(t, info)))
            self.node.get_logger().info(f"recording {topic} [{types[0]}]")
        if self.sim_time and self._clock_subscription is None and (self.wanted is None or self.all_subscribed()):
            # /clock is subscribed only now: a player that waits for this recorder's /clock subscription (play
            # --wait-for /clock:N) thereby waits until every requested topic is being recorded.
            self._clock_subscription = self.node.create_subscription(RosClock, "/clock", self._on_clock, CLOCK_QOS)

    def _skip(self, topic: str, reason: str) -> None:
        self.skipped[topic] = reason
        self.node.get_logger().error(f"not recording {topic}: {reason}")

    def _on_lost(self, topic: str, info: QoSMessageLostInfo) -> None:
        self.lost[topic] += info.total_count_change
        self.node.get_logger().error(f"{topic}: the middleware lost {info.total_count_change} messages "
                                     f"({info.total_count} in all) before the recorder took them")

    def _on_clock(self, message: RosClock) -> None:
        self._clock_ns = message.clock.sec * 10**9 + message.clock.nanosec
        # A player publishes /clock before each message, but the first clock sample can reach this recorder after
        # the first messages: they were sent at this time at the earliest.
        for connection, data in self._held:
            self._write(connection, self._clock_ns, data)
        self._held.clear()

    def _on_message(self, connection: Connection, data: bytes) -> None:
        self.received[connection.topic] += 1
        if not self.sim_time:
            self._write(connection, self.node.get_clock().now().nanoseconds, data)
        elif self._clock_ns is None:
            self._held.append((connection, data))
        else:
            self._write(connection, self._clock_ns, data)

    def _write(self, connection: Connection, stamp: int, data: bytes) -> None:
        self._writer.write(connection, stamp, data)
        self.counts[connection.topic] += 1
        if self.on_message is not None:
            self.on_message(connection.topic, stamp, data)

    def close(self, executor: SingleThreadedExecutor) -> RecordSummary:
        """Write what the middleware still holds, then close the bag."""
        self.node.destroy_timer(self._timer)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3 * DRAIN_IDLE_S:
            before = sum(self.received.values())
            executor.spin_once(timeout_sec=DRAIN_IDLE_S)
            if sum(self.received.values()) != before:
                idle_since = time.monotonic()
        for connection, data in self._held:
            self.unclocked[connection.topic] += 1
            self._write(connection, 0, data)
        for subscription in [*self._subscriptions.values(), *filter(None, [self._clock_subscription])]:
            self.node.destroy_subscription(subscription)
        self._writer.close()
        never = [t for t in self.wanted or () if t not in self._subscriptions and t not in self.skipped]
        return RecordSummary(dict(self.counts), dict(self.received), dict(self.lost), dict(self.unclocked),
                             dict(self.skipped), never)


def record_bag(out: Path | str, *, topics: Sequence[str] | None = None, storage: str = "mcap",
               compress: bool = False, use_sim_time: bool = False, stop: threading.Event,
               on_start: Callable[[BagRecorder], None] | None = None,
               on_message: Callable[[str, int, bytes], None] | None = None) -> RecordSummary:
    """Record in a private ROS context until `stop` is set.

    With `use_sim_time`, receive times are the newest /clock time (e.g. a bag played with a clock) instead of the
    wall clock; the recorder subscribes to /clock once it records every requested topic.
    `on_start` gets the recorder once it exists (to watch its counts from another thread); `on_message` sees
    every (topic, receive time, bytes) as it is written.
    """
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node("gr00t_bag_recorder", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        recorder = BagRecorder(out, node, topics=topics, storage=storage, compress=compress, sim_time=use_sim_time,
                               on_message=on_message)
        try:
            if on_start is not None:
                on_start(recorder)
            while not stop.is_set():
                executor.spin_once(timeout_sec=GRAPH_POLL_S)
        finally:
            summary = recorder.close(executor)
            executor.shutdown()
            node.destroy_node()
        return summary
    finally:
        context.try_shutdown()
