# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The only writer to the joint controllers. Every outgoing command (policy chunk, teleop forward, hold) goes
through `SafetyGate`, which owns the controller publishers (no other object has them) and enforces:

* authority, under one lock: lifecycle active, the mode (teleop / policy / hold), the e-stop latch, the
  policy-enable deadman, and an *epoch* that every interruption advances, so a chunk computed before a hold,
  mode switch or e-stop is discarded instead of published after it (limits are computed outside the lock, so an
  e-stop never waits for them);
* NaN/inf never leave (the chunk or teleop message is dropped and counted);
* time as a joint_trajectory_controller applies it: points already due when the command can reach the
  controller are dropped (never turned into a move in no time); a command stamped further ahead of the node's
  clock than `max_clock_skew` is refused;
* per-joint position limits (clamp and count) and velocity limits: each segment between consecutive points, the
  first from the newest measured position over the time actually left until it is due (and, while a policy chunk
  runs, also from where it has the controller then: the measurement lags the controller), moves at most
  `velocity_max * dt`, and velocities are clamped to `velocity_max` (count). A joint measured outside its
  limits is never commanded further out and comes back no faster than its velocity limit; a hold leaves it
  where it is;
* `dry_run`: everything is computed and counted but nothing reaches a controller.

Velocities are finite differences of the limited positions (central, the first point from the measured
position); the last point has velocity 0 so the arm comes to rest if no newer command replaces the trajectory.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory

from gr00t_npu_node.ros import messages
from gr00t_npu_node.ros.chunk_plan import PlannedChunk
from gr00t_npu_node.ros.inputs import MeasuredPositions
from gr00t_npu_node.ros.limits import LimitResult, Limits, limit_trajectory
from gr00t_npu_node.ros.monitor import ERROR, Monitor
from gr00t_npu_node.ros.params import MODES, JointGroup

# Reliable and deep enough that a hold published right after a chunk is never replaced in the writer's history
# before delivery (each trajectory replaces the controller's future anyway, in order).
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Commands are limited as if they reached the controller this long after they are published, and points due
# before then are dropped: the first segment, from the measured position, then has at least the time it is
# limited for whenever delivery is that fast (loopback: about 1 ms).
DELIVERY_MARGIN_NS = 10_000_000


@dataclass(frozen=True)
class CommandTiming:
    """What the gate needs to know about time: the chunk step, how far ahead of the node's clock a command may
    start, how old a joint state may be to command from, and the size of a trajectory it will take."""

    step_s: float
    max_clock_skew_s: float
    max_observation_age_s: float
    max_trajectory_points: int


class SafetyGate:
    """Owns the controller publishers and the authority state; see the module docstring."""

    def __init__(
        self,
        node: Node,
        groups: dict[str, JointGroup],
        *,
        timing: CommandTiming,
        dry_run: bool,
        measured: Callable[[], Optional[MeasuredPositions]],
        now_ns: Callable[[], int],
        monitor: Monitor,
    ):
        self._groups = groups
        self._timing = timing
        self._step_ns = round(timing.step_s * 1e9)
        self._dry_run = dry_run
        self._measured = measured
        self._now_ns = now_ns
        self._monitor = monitor
        self._lock = threading.RLock()
        self.__publishers = {
            g: node.create_publisher(JointTrajectory, group.topic, COMMAND_QOS) for g, group in groups.items()
        }
        self._chunk_writers = {
            g: messages.ChunkTrajectoryWriter(group.joints, self._step_ns) for g, group in groups.items()
        }
        self._limits = {g: Limits.of([group]) for g, group in groups.items()}
        # A chunk is limited for all groups at once (one pass over its points instead of one per group), in the
        # joint order of PlannedChunk: the groups' joints in `groups` order.
        self._chunk_limits = Limits.of(list(groups.values()))
        self._chunk_splits = np.cumsum([len(group.joints) for group in groups.values()])[:-1]
        self._active = False
        self._mode = "hold"
        self._estop_signal = False
        self._estop_latched = False
        self._policy_enabled = True
        self._epoch = 0  # advanced by every interruption (holds included): a policy chunk must carry the current one
        self._authority = 0  # advanced by mode, e-stop and lifecycle changes: a teleop forward must not straddle one
        self._holding = {g: False for g in groups}
        self._running: Optional[PlannedChunk] = None  # the policy chunk the controllers execute, if they do

    # ---- authority -------------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    @property
    def estop_engaged(self) -> bool:
        return self._estop_latched

    @property
    def policy_enabled(self) -> bool:
        return self._policy_enabled

    @property
    def dry_run(self) -> bool:
        return self._dry_run

    @property
    def policy_may_command(self) -> bool:
        """Lock-free peek at `policy_epoch() is not None`, for wait predicates (the gate re-checks on publish)."""
        return self._active and self._mode == "policy" and not self._estop_latched and self._policy_enabled

    @property
    def _teleop_may_command(self) -> bool:
        return self._active and self._mode == "teleop" and not self._estop_latched

    def unsubscribed_controllers(self) -> list[str]:
        """Groups whose command topic has no matched subscriber (controller not loaded, wrong topic or QoS)."""
        return [g for g, publisher in self.__publishers.items() if publisher.get_subscription_count() == 0]

    def holding(self, group: str | None = None) -> bool:
        return all(self._holding.values()) if group is None else self._holding[group]

    @property
    def running_chunk(self) -> Optional[PlannedChunk]:
        """The policy chunk the controllers execute, as published (None: holding, teleop, or none since)."""
        return self._running

    def policy_epoch(self) -> Optional[int]:
        """The epoch a chunk must carry to be published, or None while the policy may not command."""
        with self._lock:
            return self._epoch if self.policy_may_command else None

    def activate(self, mode: str) -> None:
        with self._lock:
            self._active = True
            self._epoch += 1
            self._authority += 1
            self._mode = "hold" if self._estop_latched else mode

    def deactivate(self) -> None:
        with self._lock:
            if self._active:
                self._hold_locked("node deactivated", self._groups)
            self._active = False
            self._epoch += 1
            self._authority += 1

    def set_mode(self, mode: str) -> tuple[bool, str]:
        if mode not in MODES:
            return False, f"unknown mode {mode!r}; use one of {', '.join(MODES)}"
        with self._lock:
            if self._estop_latched and mode != "hold":
                return False, "e-stop is latched: release it and call ~/resume first"
            if mode == self._mode:
                return True, f"already in {mode}"
            previous, self._mode = self._mode, mode
            self._epoch += 1
            self._authority += 1
            if mode != "policy" and self._active:
                # A JTC keeps executing the rest of the last chunk unless the future of it is replaced now.
                self._hold_locked(f"mode {previous} -> {mode}", self._groups)
            return True, f"mode {previous} -> {mode}"

    def set_estop(self, engaged: bool, reason: str) -> None:
        with self._lock:
            self._estop_signal = engaged
            if engaged and not self._estop_latched:
                self._estop_latched = True
                self._mode = "hold"
                self._epoch += 1
                self._authority += 1
                if self._active:
                    self._hold_locked("e-stop", self._groups)
        if engaged:  # logging after the hold: the hold must not wait for it
            self._monitor.fault("estop", f"engaged ({reason}); call ~/resume after releasing it", ERROR)

    def resume(self) -> tuple[bool, str]:
        with self._lock:
            if self._estop_signal:
                return False, "the e-stop signal is still true: release it first"
            if not self._estop_latched:
                return True, "e-stop not engaged"
            self._estop_latched = False
            self._epoch += 1
            self._authority += 1
            self._monitor.clear("estop")
            return True, "e-stop released; mode is hold: set the mode to resume operation"

    def set_policy_enabled(self, enabled: bool, reason: str) -> None:
        with self._lock:
            if enabled == self._policy_enabled:
                return
            self._policy_enabled = enabled
            self._epoch += 1
            if not enabled:
                self._monitor.fault("policy_enable", reason)
                if self._active and self._mode == "policy":
                    self._hold_locked("policy enable lapsed", self._groups)
            else:
                self._monitor.clear("policy_enable")

    # ---- commands ------------------------------------------------------------------------------------------
    def publish_policy_chunk(self, epoch: int, plan: PlannedChunk) -> Optional[PlannedChunk]:
        """Publish one trajectory per group if `epoch` is still current: the chunk as published (points still
        ahead, limited), or None (counted) when nothing was published.

        Points due before the trajectory can reach the controllers are dropped (as a joint_trajectory_controller
        would); the limits are applied outside the lock so that an e-stop never waits for them."""
        if not np.all(np.isfinite(plan.positions)):
            self._monitor.count("dropped_chunks")
            self._monitor.fault("policy", "chunk has NaN/inf actions: dropped, nothing published", ERROR)
            return None
        now = self._now_ns()
        ahead_s = (plan.start_ns - now) * 1e-9
        if ahead_s > self._timing.max_clock_skew_s:
            self._monitor.count("dropped_chunks")
            self._monitor.fault(
                "policy",
                f"chunk would start {ahead_s:.3f} s after the node's clock, more than max_clock_skew: dropped",
                ERROR,
            )
            return None
        due_ns = plan.start_ns + np.arange(1, plan.num_points + 1, dtype=np.int64) * self._step_ns
        ready_ns = now + DELIVERY_MARGIN_NS
        first = int(np.searchsorted(due_ns, ready_ns, side="right"))
        if first == plan.num_points:
            self._monitor.count("late_chunks")
            self._monitor.fault("policy", "every step of the chunk was due before it could be published: dropped")
            return None
        groups = list(self._groups)
        reference = self._reference(plan)
        running = self._running
        commanded = None if running is None else running.positions_at(np.array([ready_ns]))[0]
        times_s = (due_ns[first:] - ready_ns) * 1e-9
        result = limit_trajectory(self._chunk_limits, reference, times_s, plan.positions[first:], commanded=commanded)
        positions = np.split(result.positions, self._chunk_splits, axis=1)
        velocities = np.split(result.velocities, self._chunk_splits, axis=1)
        start_ns = plan.start_ns + first * self._step_ns
        published = PlannedChunk(start_ns, plan.step_s, plan.skipped_steps + first, result.positions, reference)
        with self._lock:
            if epoch != self.policy_epoch():
                self._monitor.count("superseded_chunks")
                return None
            self._send({
                g: self._chunk_writers[g].fill(start_ns, q, v) for g, q, v in zip(groups, positions, velocities)
            }, published)
        self._count_clamps(result)
        self._monitor.count("chunks_published")
        return published

    def _reference(self, plan: PlannedChunk) -> np.ndarray:
        """The origin of a chunk's first segment: the newest measured position (the robot has moved on since the
        observation the chunk was computed from, by as much as the inference took)."""
        measured = self._measured()
        if measured is None:
            return plan.reference
        return np.concatenate([measured.positions[g] for g in self._groups])

    def forward_teleop(self, group_name: str, msg: JointTrajectory) -> bool:
        """Forward one teleop trajectory for `group_name` (reordered to the group's joints) if in teleop mode.

        As a joint_trajectory_controller treats it: stamp 0 starts now, points already due are dropped. What is
        forwarded starts on receipt (stamp 0), each kept point at its original time, so that transport delay can
        only slow a move down, never speed it up."""
        if not self._teleop_may_command:
            self._monitor.count("ignored_teleop")
            return False
        with self._lock:
            authority = self._authority
        try:
            times_s, reference, positions, velocities = self._teleop_points(group_name, msg)
        except ValueError as err:
            self._monitor.count("rejected_teleop")
            self._monitor.fault("teleop", f"{group_name}: {err}")
            return False
        result = limit_trajectory(self._limits[group_name], reference, times_s, positions, velocities)
        outgoing = messages.joint_trajectory(
            self._groups[group_name].joints, 0, np.round(times_s * 1e9).astype(np.int64).tolist(),
            result.positions, result.velocities,
        )
        with self._lock:
            if authority != self._authority or not self._teleop_may_command:
                self._monitor.count("ignored_teleop")
                return False
            self._send({group_name: outgoing})
        self._count_clamps(result)
        self._monitor.count("teleop_forwarded")
        self._monitor.clear("teleop")
        return True

    def _teleop_points(
        self, group_name: str, msg: JointTrajectory
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """(seconds from receipt, measured positions, positions, velocities or None) of the points still ahead;
        ValueError naming what makes the trajectory unusable."""
        timing = self._timing
        if len(msg.points) > timing.max_trajectory_points:
            raise ValueError(
                f"teleop trajectory has {len(msg.points)} points, more than max_trajectory_points "
                f"({timing.max_trajectory_points}): dropped"
            )
        positions, velocities, times_ns = messages.trajectory_arrays(msg, self._groups[group_name].joints)
        if not (np.all(np.isfinite(positions)) and (velocities is None or np.all(np.isfinite(velocities)))):
            raise ValueError("NaN/inf in the teleop trajectory: dropped")
        now = self._now_ns()
        start_ns = messages.to_ns(msg.header.stamp) or now
        ahead_s = (start_ns - now) * 1e-9
        if ahead_s > timing.max_clock_skew_s:
            raise ValueError(
                f"teleop trajectory stamped {ahead_s:.3f} s ahead of the node's clock (max_clock_skew "
                f"{timing.max_clock_skew_s} s): check the sender's clock; dropped"
            )
        ready_ns = now + DELIVERY_MARGIN_NS
        due_ns = start_ns + times_ns
        keep = due_ns > ready_ns
        if not keep.any():
            raise ValueError(
                f"every point of the teleop trajectory is already due (the last {(ready_ns - due_ns[-1]) * 1e-9:.3f} s "
                "ago): nothing forwarded; stamp it 0 or with the sender's current time"
            )
        dropped = len(keep) - int(np.count_nonzero(keep))
        if dropped:
            self._monitor.count("teleop_points_due", dropped)
        measured = self._measured()
        if measured is None:
            raise ValueError("no valid joint state yet: teleop not forwarded")
        age_s = (now - measured.stamp_ns) * 1e-9
        if age_s > timing.max_observation_age_s:
            raise ValueError(
                f"the newest valid joint state is {age_s:.3f} s old (max_observation_age): teleop not forwarded"
            )
        # Forwarded with stamp 0, a point's time counts from the controller's receipt, whatever the delay: the
        # limits then hold for exactly these times.
        return (
            (due_ns[keep] - now) * 1e-9,
            measured.positions[group_name],
            positions[keep],
            velocities[keep] if velocities is not None else None,
        )

    def supersede_chunks(self) -> None:
        """Chunks computed so far are not published (their inputs are no longer valid); nothing is commanded, and
        the chunk published last no longer says where the controllers are (the clock went back)."""
        with self._lock:
            self._epoch += 1
            self._running = None

    def hold(self, reason: str, groups: Sequence[str] | None = None) -> bool:
        """Command each group not already holding to stay at its measured position; interrupts the policy."""
        with self._lock:
            self._epoch += 1
            if not self._active:
                return False
            return self._hold_locked(reason, self._groups if groups is None else groups)

    def _hold_locked(self, reason: str, groups: Sequence[str]) -> bool:
        """One point at the measured position, at rest, one step after receipt. Not limited: it commands no motion
        (a joint measured outside its limits is held where it is, never pulled in at once)."""
        pending = [g for g in groups if not self._holding[g]]
        if not pending:
            return True
        measured = self._measured()
        if measured is None:
            self._monitor.count("failed_holds")
            self._monitor.fault("safety", "cannot hold: no valid joint state received yet")
            return False
        outgoing = {}
        for g in pending:
            q = measured.positions[g][None, :]
            outgoing[g] = messages.joint_trajectory(self._groups[g].joints, 0, [self._step_ns], q, np.zeros_like(q))
        self._send(outgoing)
        for g in pending:
            self._holding[g] = True
        self._monitor.count("holds")
        self._monitor.count("held_groups", len(pending))
        return True

    def check_measured_limits(self) -> None:
        """An ERROR fault naming every joint measured outside its position limits (cleared once all are inside)."""
        measured = self._measured()
        if measured is None:
            return
        outside = []
        for g, group in self._groups.items():
            q = measured.positions[g]
            for k in np.flatnonzero((q < group.position_min) | (q > group.position_max)):
                outside.append(
                    f"{group.joints[k]} at {q[k]:.3f} (limits {group.position_min[k]:g}..{group.position_max[k]:g})"
                )
        if outside:
            self._monitor.fault(
                "joint_limits",
                f"measured outside its limits: {', '.join(outside)}; commands never move it further out and bring it "
                "back no faster than its velocity limit",
                ERROR,
            )
        else:
            self._monitor.clear("joint_limits")

    def close(self, node: Node) -> None:
        for publisher in self.__publishers.values():
            node.destroy_publisher(publisher)
        self.__publishers = {}

    def _count_clamps(self, result: LimitResult) -> None:
        if result.position_clamps:
            self._monitor.count("position_clamps", result.position_clamps)
        if result.velocity_clamps:
            self._monitor.count("velocity_clamps", result.velocity_clamps)

    def _send(self, outgoing: dict[str, JointTrajectory], chunk: Optional[PlannedChunk] = None) -> None:
        """Publish `outgoing`; `chunk` the policy chunk it is (None: a hold or a teleop forward)."""
        self._running = chunk
        for g, msg in outgoing.items():
            self._holding[g] = False
            if self._dry_run:
                self._monitor.count("dry_run_suppressed")
            else:
                self.__publishers[g].publish(msg)
