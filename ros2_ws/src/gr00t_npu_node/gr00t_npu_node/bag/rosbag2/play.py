# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Replay a bag's raw messages at their recorded timing, with the QoS their publishers offered, optionally driving
/clock so that nodes on sim time follow the bag's time base."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosgraph_msgs.msg import Clock

from gr00t_npu_node.bag.rosbag2.bagio import BagError, BagReader
from gr00t_npu_node.bag.dataset.layout import SCORING_TOPICS_KEY
from gr00t_npu_node.bag.rosbag2.qos import CLOCK_QOS, is_latched, playback_profile
from gr00t_npu_node.bag.rosbag2.typedefs import message_class


@dataclass
class PlayResult:
    counts: dict[str, int] = field(default_factory=dict)   # messages published, by played bag topic
    in_bag: dict[str, int] = field(default_factory=dict)   # messages the bag holds, by played topic
    unmatched: list[str] = field(default_factory=list)     # topics still short of subscribers when play began
    unacked: list[str] = field(default_factory=list)       # reliable topics not acknowledged by every subscriber
    skipped: dict[str, str] = field(default_factory=dict)  # topics not played (type not installed), with the reason
    wall_seconds: float = 0.0
    max_lag_ms: float = 0.0                                 # worst delay of a publish behind its recorded time
    loops: int = 0


class SubscriberTimeout(TimeoutError):
    """Subscribers that play was told to wait for did not all appear; nothing was published."""


@contextmanager
def _player_node(node: Node | None) -> Iterator[Node]:
    if node is not None:
        yield node
        return
    context = Context()
    # No rclpy signal handlers: Ctrl+C stays a KeyboardInterrupt for the caller. No command line either: rcl would
    # take `--remap FROM:=TO` values for global remapping rules of its own.
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    own = rclpy.create_node("gr00t_bag_player", context=context)
    try:
        yield own
    finally:
        own.destroy_node()
        context.try_shutdown()


def _time_msg(stamp_ns: int) -> Clock:
    message = Clock()
    message.clock.sec, message.clock.nanosec = divmod(stamp_ns, 10**9)
    return message


def play_bag(path: Path | str, *, rate: float = 1.0, loop: bool = False, topics: Sequence[str] | None = None,
             remap: Mapping[str, str] | None = None, start_offset: float = 0.0, clock_hz: float | None = None,
             wait_for: Sequence[str] | Mapping[str, int] | None = None, wait_timeout: float = 10.0,
             ack_timeout: float = 30.0, node: Node | None = None, stop: threading.Event | None = None) -> PlayResult:
    """Publish the bag's messages (all topics, or `topics`) at `rate` times their recorded pace, from its first
    message on.

    Before the first message it waits up to `wait_timeout` s until every topic in `wait_for` has its subscribers:
    a list asks for one per topic, a mapping for that many, and "/clock" can be named too, so that sim-time nodes
    and recorders have the clock before the first message. Subscribers named in `wait_for` are required: without
    them play raises SubscriberTimeout and publishes nothing. By default it waits for every played topic that
    has messages, except the bag's scoring-only topics, then plays anyway and reports the rest in `unmatched`.
    Latched topics keep their last message before `start_offset`; their messages up to the start go out first,
    acknowledged by every subscriber before the clock runs. `clock_hz` publishes /clock with the bag's time at that
    rate and before every message. With `loop`, it repeats until `stop` is set or Ctrl+C. `node`
    (optional) is an existing node to create the publishers on; it needs no spinning. `ack_timeout` bounds each
    wait for the reliable subscribers' acknowledgements (a Python recorder on a loaded machine can take seconds to
    take a burst); what is still unacknowledged then is reported in `unacked`.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if start_offset < 0:
        raise ValueError(f"start offset must be >= 0 s, got {start_offset}")
    remap = dict(remap or {})
    stop = stop or threading.Event()
    result = PlayResult()
    with BagReader(path) as bag, _player_node(node) as player:
        if unknown := [t for t in [*(topics or ()), *remap] if t not in bag.topics]:
            raise BagError(f"{bag.path} has no topics {unknown}; it has {sorted(bag.topics)}")
        if not bag.message_count:
            raise BagError(f"{bag.path} holds no messages")
        classes = _message_classes(bag, topics, result, player)
        played = list(classes)
        result.counts = dict.fromkeys(played, 0)
        result.in_bag = {t: bag.topics[t].count for t in played}
        publishers = {t: player.create_publisher(classes[t], remap.get(t, t), playback_profile(bag.topics[t].offers))
                      for t in played}
        clock = player.create_publisher(Clock, "/clock", CLOCK_QOS) if clock_hz else None
        try:
            required = wait_for is not None
            if wait_for is None:
                scoring = set(bag.custom_data.get(SCORING_TOPICS_KEY, "").split(","))
                # A topic without messages publishes nothing, so nobody needs to be listening to it.
                wait_for = [t for t in played if t not in scoring and bag.topics[t].count]
            waited = dict(wait_for) if isinstance(wait_for, Mapping) else {t: 1 for t in wait_for}
            waitable = {**publishers, **({"/clock": clock} if clock else {})}
            if missing := [t for t in waited if t not in waitable]:
                raise BagError(f"cannot wait for subscribers on {missing}: they are not played")
            result.unmatched = _wait_for_subscribers({t: (waitable[t], n) for t, n in waited.items()}, wait_timeout,
                                                     stop)
            if result.unmatched:
                short = ", ".join(f"{t} has {waitable[t].get_subscription_count()} of {waited[t]}"
                                  for t in result.unmatched)
                if required:
                    raise SubscriberTimeout(f"subscribers missing after {wait_timeout} s ({short}); nothing was "
                                            "played: start them first or raise the wait timeout")
                player.get_logger().warning(f"playing without all subscribers ({short} after {wait_timeout} s)")
            start_ns = bag.start_ns + round(start_offset * 1e9)
            latched = [t for t in played if is_latched(bag.topics[t].offers)]
            started = time.monotonic()
            while not stop.is_set():
                _play_once(bag, played, latched, start_ns, rate, publishers, clock, clock_hz, ack_timeout, stop,
                           result)
                result.loops += 1
                if not loop:
                    break
            result.wall_seconds = time.monotonic() - started
            for topic, publisher in publishers.items():
                if (publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                        and not publisher.wait_for_all_acked(Duration(seconds=ack_timeout))):
                    result.unacked.append(topic)
        finally:
            for publisher in [*publishers.values(), *([clock] if clock else [])]:
                player.destroy_publisher(publisher)
    return result


def _message_classes(bag: BagReader, topics: Sequence[str] | None, result: PlayResult, player: Node) -> dict:
    """Message class per played topic. Playing a whole bag skips (and reports) topics whose message package is
    not installed, as a robot's bag may hold types this machine lacks; a topic asked for by name must play."""
    classes = {}
    for topic in bag.topics if topics is None else topics:
        try:
            classes[topic] = message_class(bag.topics[topic].msgtype)
        except LookupError as err:
            if topics is not None:
                raise
            result.skipped[topic] = str(err)
            player.get_logger().warning(f"not playing {topic}: {err}")
    return classes


def _wait_for_subscribers(publishers: dict, timeout: float, stop: threading.Event) -> list[str]:
    """Topics still short of their subscriber count (publishers: topic -> (publisher, count)) after the wait."""
    deadline = time.monotonic() + timeout
    while True:
        unmatched = [t for t, (p, count) in publishers.items() if p.get_subscription_count() < count]
        if not unmatched or time.monotonic() >= deadline or stop.wait(0.01):
            return unmatched


def _play_once(bag: BagReader, played: list[str], latched: list[str], start_ns: int, rate: float,
               publishers: dict, clock, clock_hz: float | None, ack_timeout: float, stop: threading.Event,
               result: PlayResult) -> None:
    """One pass from `start_ns` to the end; returns early when `stop` is set."""
    # Latched topics' state at the start (their last message before it, all their messages at it) goes out before
    # the clock runs, acknowledged by every subscriber: a node needs e.g. its instruction before the first image,
    # and a subscriber that discovery has matched on our side only takes it a moment later.
    at_start: dict[str, list[bytes]] = {}
    for topic, stamp, data in bag.messages(latched):
        if stamp > start_ns:
            break
        at_start[topic] = [*at_start.get(topic, []), data] if stamp == start_ns else [data]
    tick_ns = round(1e9 / clock_hz) if clock_hz else None
    last_clock = -1

    def publish_clock(stamp: int) -> None:
        nonlocal last_clock
        if clock is not None and stamp > last_clock:
            clock.publish(_time_msg(stamp))
            last_clock = stamp

    publish_clock(start_ns)
    for topic, messages in at_start.items():
        for data in messages:
            publishers[topic].publish(data)
            result.counts[topic] += 1
    for topic in at_start:
        # What stays unacknowledged is reported after the pass.
        publishers[topic].wait_for_all_acked(Duration(seconds=ack_timeout))
    wall_start = next_tick = time.monotonic_ns()
    for topic, stamp, data in bag.messages(played, start_ns=start_ns):
        if stamp == start_ns and topic in at_start:
            continue
        due = wall_start + (stamp - start_ns) / rate
        while (now := time.monotonic_ns()) < due:
            if tick_ns is not None and now >= next_tick:
                publish_clock(start_ns + round((now - wall_start) * rate))
                next_tick = now + tick_ns
            wake = min(due, next_tick) if tick_ns is not None else due
            if stop.wait(max(0.0, (wake - now) / 1e9)):
                return
        publish_clock(stamp)
        publishers[topic].publish(data)
        result.counts[topic] += 1
        result.max_lag_ms = max(result.max_lag_ms, (time.monotonic_ns() - due) / 1e6)
