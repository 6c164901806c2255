# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""QoS between a bag's `offered_qos_profiles` (rosbags' `Qos`) and rclpy, adapted the way rosbag2 does it.

Play offers what the recording's publishers offered: best effort if any of them was best effort, transient local
(latched) only if all of them were. Record subscribes so that it matches every publisher it finds.
"""
from __future__ import annotations

from collections.abc import Sequence

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

# What rosbag2 writes for an unset (infinite) deadline, lifespan or lease duration.
INFINITE = QosTime(9223372036, 854775807)
# History of best-effort playback, where nothing is resent anyway.
PLAY_DEPTH = 10
# rclcpp's ClockQoS, what `ros2 bag play --clock` uses and sim-time subscribers expect.
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def bag_qos(*, reliable: bool, transient_local: bool, depth: int) -> Qos:
    """A publisher's offered QoS as `ros2 bag record` stores it."""
    return Qos(QosHistory.KEEP_LAST, depth,
               QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
               QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
               INFINITE, INFINITE, QosLiveliness.AUTOMATIC, INFINITE, False)


def _time(duration: Duration) -> QosTime:
    nanoseconds = duration.nanoseconds
    if nanoseconds <= 0 or nanoseconds >= INFINITE.sec * 10**9 + INFINITE.nsec:
        return INFINITE
    return QosTime(nanoseconds // 10**9, nanoseconds % 10**9)


def _bag_enum(bag_enum, rclpy_enum, value):
    try:
        return bag_enum[rclpy_enum(value).name]
    except (KeyError, ValueError):
        return bag_enum.UNKNOWN


def qos_from_endpoint(profile: QoSProfile) -> Qos:
    """A discovered publisher's QoS (rclpy) in the bag's form."""
    return Qos(_bag_enum(QosHistory, HistoryPolicy, profile.history), profile.depth,
               _bag_enum(QosReliability, ReliabilityPolicy, profile.reliability),
               _bag_enum(QosDurability, DurabilityPolicy, profile.durability),
               _time(profile.deadline), _time(profile.lifespan),
               _bag_enum(QosLiveliness, LivelinessPolicy, profile.liveliness),
               _time(profile.liveliness_lease_duration), profile.avoid_ros_namespace_conventions)


def is_latched(offers: Sequence[Qos]) -> bool:
    return bool(offers) and all(o.durability == QosDurability.TRANSIENT_LOCAL for o in offers)


def playback_profile(offers: Sequence[Qos]) -> QoSProfile:
    """The QoS to republish a recorded topic with (reliable and volatile when the bag recorded no offer)."""
    best_effort = any(o.reliability == QosReliability.BEST_EFFORT for o in offers)
    reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
    if is_latched(offers):
        # As many samples as it was offered with (Humble records depth 0 with history UNKNOWN), for late joiners.
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max([1] + [o.depth for o in offers]),
                          reliability=reliability, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if best_effort:
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=PLAY_DEPTH, reliability=reliability,
                          durability=DurabilityPolicy.VOLATILE)
    # A reliable writer with a bounded history overwrites samples a slow reader has not taken yet (measured: of a
    # 3,000-message burst at depth 10, a keep-all reader got 2,153); keep-all holds them until every reader has.
    return QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def recording_profile(offers: Sequence[QoSProfile]) -> QoSProfile:
    """A subscription QoS compatible with every discovered publisher that loses nothing while writing: keep-all,
    so a burst waits in the middleware (reliable publishers resend what the recorder has not taken yet)."""
    reliable = all(o.reliability == ReliabilityPolicy.RELIABLE for o in offers)
    latched = bool(offers) and all(o.durability == DurabilityPolicy.TRANSIENT_LOCAL for o in offers)
    return QoSProfile(history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
