# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""What every message a joint controller receives from gr00t_node must satisfy, checked from outside the node
(the fault campaign subscribes to the controller topics and feeds each message to `InvariantChecker`).

Per message: finite positions and velocities; exactly the group's joints; strictly increasing positive
`time_from_start`; within the position limits (a joint measured outside them: no further out than measured);
within the velocity limits, point to point and from the measured position to the first point (the time a
stamped trajectory leaves for that is counted from its arrival at this process's middleware, less
`delivery_slack_s`: the node cannot know the delivery delay). Per state: only holds at the measured position
from the first hold after an e-stop until ~/resume; no policy trajectory (stamped, more than one point) in
teleop or hold mode from the first hold after the switch. A measured position is any the robot reported within
`measured_window_s` before the message: the node commands from its newest joint state, which lags the test's by
up to a cycle.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

NS = 1_000_000_000
EPS = 1e-6


@dataclass
class GroupSpec:
    joints: tuple[str, ...]
    position_min: np.ndarray
    position_max: np.ndarray
    velocity_max: np.ndarray


@dataclass
class Violation:
    group: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.group}: {self.rule}: {self.detail}"


@dataclass
class _Authority:
    """A state the test put the node in (e-stop, teleop or hold mode) and whether its first hold was seen."""

    since_ns: int
    held: set[str] = field(default_factory=set)


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


def _times_s(msg) -> np.ndarray:
    return np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])


def is_hold(msg, hold_time_s: Optional[float] = None) -> bool:
    """One point at rest, on receipt (and, given `hold_time_s`, at that time: a one-point teleop forward has the
    same shape)."""
    if len(msg.points) != 1 or _stamp_ns(msg) != 0 or np.any(msg.points[0].velocities):
        return False
    return hold_time_s is None or abs(_times_s(msg)[0] - hold_time_s) < 1e-9


class InvariantChecker:
    def __init__(self, groups: dict[str, GroupSpec], *, delivery_slack_s: float = 0.02, measured_window_s: float = 1.0):
        self.groups = groups
        self.delivery_slack_s = delivery_slack_s
        self.measured_window_s = measured_window_s
        self.violations: list[Violation] = []
        self.messages_checked = 0
        self._lock = threading.Lock()
        self._measured: deque[tuple[int, dict[str, float]]] = deque(maxlen=4096)
        self._estop: Optional[_Authority] = None
        self._no_policy: Optional[_Authority] = None

    # ---- what the test tells the checker ----------------------------------------------------------------------
    def measured(self, positions: dict[str, float], at_ns: Optional[int] = None) -> None:
        """The robot reports `positions` (joint -> rad) from `at_ns` (wall clock) on."""
        with self._lock:
            if not self._measured or self._measured[-1][1] != positions:
                self._measured.append((at_ns or time.time_ns(), dict(positions)))

    def estop_engaged(self) -> None:
        with self._lock:
            self._estop = self._estop or _Authority(time.time_ns())

    def estop_resumed(self) -> None:
        with self._lock:
            self._estop = None

    def mode(self, mode: str) -> None:
        """Call once the node has accepted the mode."""
        with self._lock:
            if mode == "policy":
                self._no_policy = None
            elif self._no_policy is None:
                self._no_policy = _Authority(time.time_ns())

    # ---- checking ---------------------------------------------------------------------------------------------
    def check(self, group: str, msg, received_ns: Optional[int] = None) -> list[Violation]:
        received_ns = received_ns or time.time_ns()
        with self._lock:
            found = [Violation(group, rule, detail) for rule, detail in self._problems(group, msg, received_ns)]
            self.violations += found
            self.messages_checked += 1
        return found

    def _candidates(self, received_ns: int) -> list[dict[str, float]]:
        window_start = received_ns - int(self.measured_window_s * NS)
        entries = list(self._measured)
        candidates = [p for (t, p) in entries if t >= window_start]
        before = [p for (t, p) in entries if t < window_start]
        if before:
            candidates.append(before[-1])  # the position that still held at the window's start
        return candidates

    def _problems(self, group: str, msg, received_ns: int):
        spec = self.groups[group]
        if tuple(msg.joint_names) != spec.joints:
            yield "joint names", f"{list(msg.joint_names)} instead of {list(spec.joints)}"
            return
        if not msg.points:
            yield "points", "an empty trajectory"
            return
        width = len(spec.joints)
        if any(len(p.positions) != width or len(p.velocities) != width for p in msg.points):
            yield "point size", f"every point needs {width} positions and velocities"
            return
        q = np.array([p.positions for p in msg.points], dtype=float)
        v = np.array([p.velocities for p in msg.points], dtype=float)
        t = _times_s(msg)
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(v))):
            yield "finite", "NaN or inf in positions or velocities"
            return
        if t[0] <= 0 or np.any(np.diff(t) <= 0):
            yield "time_from_start", f"not positive and strictly increasing: {t[:4].tolist()}"
        if np.any(np.abs(v) > spec.velocity_max + EPS):
            k = int(np.argmax(np.max(np.abs(v) - spec.velocity_max, axis=0)))
            yield "velocity limit", f"{spec.joints[k]} velocity {np.max(np.abs(v[:, k])):.3f} > {spec.velocity_max[k]}"
        steps = np.abs(np.diff(q, axis=0))
        allowed = spec.velocity_max * np.diff(t)[:, None] + EPS
        if np.any(steps > allowed):
            i, k = np.unravel_index(int(np.argmax(steps - allowed)), steps.shape)
            yield "velocity limit", (
                f"{spec.joints[k]} moves {steps[i, k]:.4f} rad between points {i} and {i + 1} "
                f"({steps[i, k] / (t[i + 1] - t[i]):.2f} rad/s > {spec.velocity_max[k]})"
            )
        candidates = [np.array([c[j] for j in spec.joints]) for c in self._candidates(received_ns)]
        stamp_ns = _stamp_ns(msg)
        # Stamp 0 starts on arrival: the first segment has exactly time_from_start.
        first_s = t[0] if stamp_ns == 0 else (stamp_ns - received_ns) * 1e-9 + t[0] + self.delivery_slack_s
        if candidates:
            yield from self._against_measured(spec, q, first_s, candidates)
        yield from self._authority(group, msg, q, candidates)

    def _against_measured(self, spec: GroupSpec, q: np.ndarray, first_s: float, candidates: list[np.ndarray]):
        lo, hi = spec.position_min, spec.position_max
        outside = [
            k for k in range(len(spec.joints))
            if not np.all((q[:, k] >= lo[k] - EPS) & (q[:, k] <= hi[k] + EPS))
            and not any(
                np.all((q[:, k] >= min(lo[k], m[k]) - EPS) & (q[:, k] <= max(hi[k], m[k]) + EPS)) for m in candidates
            )
        ]
        if outside:
            k = outside[0]
            yield "position limit", (
                f"{spec.joints[k]} commanded to {q[np.argmax(np.abs(q[:, k])), k]:.3f} outside [{lo[k]}, {hi[k]}] "
                "and further out than measured"
            )
        if first_s <= 0:
            yield "velocity limit", f"the first point was already due {-first_s:.3f} s before it arrived"
            return
        reachable = [np.all(np.abs(q[0] - m) <= spec.velocity_max * first_s + EPS) for m in candidates]
        if not any(reachable):
            m = candidates[-1]
            k = int(np.argmax(np.abs(q[0] - m) / spec.velocity_max))
            yield "velocity limit", (
                f"{spec.joints[k]} first point {q[0, k]:.3f} is {abs(q[0, k] - m[k]):.3f} rad from the measured "
                f"{m[k]:.3f} with {first_s:.3f} s to get there ({abs(q[0, k] - m[k]) / first_s:.2f} rad/s > "
                f"{spec.velocity_max[k]})"
            )

    def _authority(self, group: str, msg, q: np.ndarray, candidates: list[np.ndarray]):
        hold = is_hold(msg)
        if self._estop is not None:
            # The e-stop's hold is at the measured position; anything before it may have been in flight.
            if hold and any(np.allclose(q[0], m, atol=1e-9) for m in candidates):
                self._estop.held.add(group)
            elif group in self._estop.held:
                shape = "a hold away from the measured position" if hold else f"a {len(msg.points)}-point trajectory"
                yield "e-stop", f"{shape} after the e-stop hold"
        if self._no_policy is not None:
            if hold:
                self._no_policy.held.add(group)
            elif group in self._no_policy.held and _stamp_ns(msg) != 0:
                yield "mode", "a policy trajectory in teleop or hold mode"
