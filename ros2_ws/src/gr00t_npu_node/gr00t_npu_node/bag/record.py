"""Record topics to a bag as raw CDR bytes: subscribe to each topic once a publisher shows its type, store the
QoS the publishers offer, and on stop take every message still queued in the middleware before closing."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from gr00t_npu_node.bag.bagio import BagWriter
from gr00t_npu_node.bag.qos import qos_from_endpoint, recording_profile
from gr00t_npu_node.bag.typedefs import message_class

GRAPH_POLL_S = 0.1
DRAIN_IDLE_S = 0.05


@dataclass(frozen=True)
class RecordSummary:
    counts: dict[str, int]            # messages written, by topic
    skipped: dict[str, str]           # topics seen but not recorded, with the reason
    never_published: list[str]        # requested topics that no publisher offered while recording


class BagRecorder:
    """Records `topics` (all topics when None) seen by `node` into a new bag; the caller spins the node."""

    def __init__(self, out: Path | str, node: Node, *, topics: Sequence[str] | None = None, storage: str = "mcap",
                 compress: bool = False, on_message: Callable[[str, int, bytes], None] | None = None) -> None:
        self.node = node
        self.on_message = on_message
        self.wanted = None if topics is None else list(dict.fromkeys(topics))
        self.counts: dict[str, int] = {}
        self.skipped: dict[str, str] = {}      # topic -> why it is not recorded
        self._writer = BagWriter(out, storage=storage, compress=compress)
        self._subscriptions: dict[str, object] = {}
        # A steady-clock timer: on sim time a ROS-time timer would not fire before the first /clock message.
        self._timer = node.create_timer(GRAPH_POLL_S, self.discover, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.discover()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

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
            self.counts[topic] = 0
            self._subscriptions[topic] = self.node.create_subscription(
                msg_class, topic, lambda data, c=connection: self._on_message(c, data),
                recording_profile(offers), raw=True)
            self.node.get_logger().info(f"recording {topic} [{types[0]}]")

    def _skip(self, topic: str, reason: str) -> None:
        self.skipped[topic] = reason
        self.node.get_logger().error(f"not recording {topic}: {reason}")

    def _on_message(self, connection, data: bytes) -> None:
        stamp = self.node.get_clock().now().nanoseconds
        self._writer.write(connection, stamp, data)
        self.counts[connection.topic] += 1
        if self.on_message is not None:
            self.on_message(connection.topic, stamp, data)

    def close(self, executor: SingleThreadedExecutor) -> RecordSummary:
        """Write what the middleware still holds, then close the bag."""
        self.node.destroy_timer(self._timer)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3 * DRAIN_IDLE_S:
            before = self.total
            executor.spin_once(timeout_sec=DRAIN_IDLE_S)
            if self.total != before:
                idle_since = time.monotonic()
        for subscription in self._subscriptions.values():
            self.node.destroy_subscription(subscription)
        self._writer.close()
        never = [t for t in self.wanted or () if t not in self._subscriptions and t not in self.skipped]
        return RecordSummary(dict(self.counts), dict(self.skipped), never)


def record_bag(out: Path | str, *, topics: Sequence[str] | None = None, storage: str = "mcap",
               compress: bool = False, use_sim_time: bool = False, stop: threading.Event,
               on_start: Callable[[BagRecorder], None] | None = None,
               on_message: Callable[[str, int, bytes], None] | None = None) -> RecordSummary:
    """Record in a private ROS context until `stop` is set.

    With `use_sim_time`, receive times come from /clock (e.g. a bag played with a clock) instead of the wall clock.
    `on_start` gets the recorder once it exists (to watch its counts from another thread); `on_message` sees
    every (topic, receive time, bytes) as it is written.
    """
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node("gr00t_bag_recorder", context=context, parameter_overrides=[
            Parameter("use_sim_time", Parameter.Type.BOOL, use_sim_time)])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        recorder = BagRecorder(out, node, topics=topics, storage=storage, compress=compress,
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
