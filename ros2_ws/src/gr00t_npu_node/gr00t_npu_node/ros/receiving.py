# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""How the node takes in a message from the world: raw, under a size cap, read only if it fits, stamped no
further ahead of the node's clock than `max_clock_skew`; anything else is a counted fault of its source (a
hostile or broken publisher never raises in the executor)."""
from __future__ import annotations

from typing import Any, Callable, Optional

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from gr00t_npu_node.ros.messages import to_ns
from gr00t_npu_node.ros.monitor import Monitor

LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# A latched subscription cannot match a volatile publisher, nor a reliable one a best-effort publisher: an e-stop
# or instruction is heard from any of them through these three (duplicates are harmless: both are idempotent).
ANY_PUBLISHER_QOS = (
    LATCHED_QOS,
    QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT),
)
# Caps on serialized sizes, checked before a message is read: room for the largest frame allowed (4 bytes a
# pixel) or trajectory allowed, plus headers; far above what a robot's joint states or instructions take.
HEADER_BYTES = 64 * 1024
MAX_JOINT_STATE_BYTES = 1 << 20
MAX_INSTRUCTION_BYTES = 1 << 20


def image_bytes(max_image_pixels: int) -> int:
    return max_image_pixels * 4 + HEADER_BYTES


def trajectory_bytes(max_points: int, joints: int) -> int:
    return max_points * (4 * (4 + 8 * joints) + 16) + HEADER_BYTES  # four arrays and a duration a point


def expected_mismatch(node: Node, topic: str, qos: QoSProfile) -> Optional[SubscriptionEventCallbacks]:
    """For the latched one of a topic's ANY_PUBLISHER_QOS subscriptions: a volatile publisher cannot match it,
    which is expected (another subscription hears it), not the warning rclpy would log."""
    if qos is not LATCHED_QOS:
        return None

    def incompatible(event) -> None:
        node.get_logger().debug(f"a publisher on {topic} is not latched; the volatile subscription hears it")

    return SubscriptionEventCallbacks(incompatible_qos=incompatible)


class Receiver:
    def __init__(self, node: Node, monitor: Monitor, max_clock_skew_s: float, keep: Callable[[Any], Any]):
        """`keep` is handed every subscription made (the node destroys them on cleanup)."""
        self._node = node
        self._monitor = monitor
        self._max_clock_skew_s = max_clock_skew_s
        self._keep = keep

    def subscribe(
        self,
        msg_type: type,
        topic: str,
        qos: QoSProfile,
        source: str,
        max_bytes: int,
        handler: Callable[[Any, dict], None],
        on_malformed: Optional[Callable[[str], None]] = None,
    ) -> None:
        """Subscribe raw; `handler(msg, message_info)` gets each message that is at most `max_bytes` and reads."""

        def receive(data: bytes, info: dict) -> None:
            if len(data) > max_bytes:
                self.reject(source, f"a {len(data)}-byte message on {topic} is larger than the {max_bytes} allowed")
                return
            try:
                msg = deserialize_message(data, msg_type)
            except (RuntimeError, UnicodeDecodeError, ValueError) as err:
                problem = f"a message on {topic} cannot be read ({type(err).__name__}: {err})"
                self.reject(source, problem)
                if on_malformed is not None:
                    on_malformed(problem)
                return
            handler(msg, info)

        self._keep(self._node.create_subscription(
            msg_type, topic, receive, qos, raw=True, event_callbacks=expected_mismatch(self._node, topic, qos),
        ))

    def reject(self, source: str, problem: str) -> None:
        self._monitor.count(f"rejected_{source}_messages")
        self._monitor.fault(source, f"{problem}: dropped")

    def stamp_ns(self, source: str, stamp, now_ns: int) -> Optional[int]:
        """A message's stamp (zero: the arrival time); None, counted and reported, when it is further ahead of
        the node's clock than max_clock_skew."""
        stamp_ns = to_ns(stamp) or now_ns
        ahead_s = (stamp_ns - now_ns) * 1e-9
        if ahead_s > self._max_clock_skew_s:
            self.reject(
                source,
                f"message stamped {ahead_s:.3f} s ahead of the node's clock (max_clock_skew "
                f"{self._max_clock_skew_s} s): synchronise the sender's clock with the node's (chrony, PTP)",
            )
            return None
        return stamp_ns
