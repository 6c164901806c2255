"""The only writer to the joint controllers. Every outgoing command (policy chunk, teleop forward, hold) goes
through `SafetyGate`, which owns the controller publishers (no other object has them) and enforces, under one
lock:

* authority: lifecycle active, the mode (teleop / policy / hold), the e-stop latch, the policy-enable deadman,
  and an *epoch* that every interruption advances, so a chunk computed before a hold, mode switch or e-stop is
  discarded instead of published after it;
* NaN/inf never leave (the chunk or teleop message is dropped and counted);
* per-joint position limits (clamp and count) and velocity limits: each segment between consecutive points
  (the first from the measured position) moves at most `velocity_max * dt`, and velocities are clamped to
  `velocity_max` (count);
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
from gr00t_npu_node.ros.monitor import ERROR, Monitor
from gr00t_npu_node.ros.params import MODES, JointGroup

# Reliable and deep enough that a hold published right after a chunk is never replaced in the writer's history
# before delivery (each trajectory replaces the controller's future anyway, in order).
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class Limits:
    """Per-joint limits of one or several groups, concatenated in group order."""

    position_min: np.ndarray
    position_max: np.ndarray
    velocity_max: np.ndarray

    @classmethod
    def of(cls, groups: Sequence[JointGroup]) -> "Limits":
        fields = ("position_min", "position_max", "velocity_max")
        return cls(*(np.concatenate([getattr(group, field) for group in groups]) for field in fields))


@dataclass
class LimitResult:
    positions: np.ndarray
    velocities: np.ndarray
    position_clamps: int
    velocity_clamps: int


def limit_trajectory(
    limits: Limits,
    reference: np.ndarray,
    point_times_s: np.ndarray,
    positions: np.ndarray,
    velocities: Optional[np.ndarray] = None,
) -> LimitResult:
    """Apply `limits` to points at `point_times_s` (seconds after the `reference` measurement).

    `velocities` None: finite differences of the limited positions. Otherwise the given ones, clamped.
    """
    lo, hi, vmax = limits.position_min, limits.position_max, limits.velocity_max
    clamped = np.clip(positions, lo, hi)
    position_clamps = int(np.count_nonzero(clamped != positions))
    max_steps = np.diff(point_times_s, prepend=0.0)[:, None] * vmax
    too_fast = np.abs(np.diff(clamped, axis=0, prepend=reference[None, :])) > max_steps
    velocity_clamps = 0
    limited = clamped
    if too_fast.any():
        # Sequential from the first violation on: each bounded point is the origin of the next step.
        first = int(np.argmax(too_fast.any(axis=1)))
        limited = clamped.copy()
        previous = limited[first - 1] if first else reference
        for i in range(first, len(limited)):
            row = limited[i]
            np.maximum(row, previous - max_steps[i], out=row)
            np.minimum(row, previous + max_steps[i], out=row)
            previous = row
        velocity_clamps = int(np.count_nonzero(limited != clamped))
        # A reference outside the position limits (robot pushed past them) can drag the bounded steps outside
        # too; position limits win.
        np.clip(limited, lo, hi, out=limited)
    if velocities is None:
        velocities = _finite_difference(reference, point_times_s, limited)
    else:
        bounded_v = np.clip(velocities, -vmax, vmax)
        velocity_clamps += int(np.count_nonzero(bounded_v != velocities))
        velocities = bounded_v
    return LimitResult(limited, velocities, position_clamps, velocity_clamps)


def _finite_difference(reference: np.ndarray, times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    q = np.concatenate((reference[None, :], positions))
    t = np.concatenate(([0.0], times))
    velocities = np.zeros_like(positions)
    if len(positions) > 1:
        velocities[:-1] = (q[2:] - q[:-2]) / (t[2:] - t[:-2])[:, None]
    return velocities


class SafetyGate:
    """Owns the controller publishers and the authority state; see the module docstring."""

    def __init__(
        self,
        node: Node,
        groups: dict[str, JointGroup],
        *,
        step_s: float,
        dry_run: bool,
        measured: Callable[[], Optional[MeasuredPositions]],
        now_ns: Callable[[], int],
        monitor: Monitor,
    ):
        self._groups = groups
        self._step_ns = round(step_s * 1e9)
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
        # A chunk is limited for all groups at once (one pass over its points instead of one per group).
        self._chunk_limits = Limits.of(list(groups.values()))
        self._chunk_splits = np.cumsum([len(group.joints) for group in groups.values()])[:-1]
        self._active = False
        self._mode = "hold"
        self._estop_signal = False
        self._estop_latched = False
        self._policy_enabled = True
        self._epoch = 0
        self._holding = {g: False for g in groups}

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

    def unsubscribed_controllers(self) -> list[str]:
        """Groups whose command topic has no matched subscriber (controller not loaded, wrong topic or QoS)."""
        return [g for g, publisher in self.__publishers.items() if publisher.get_subscription_count() == 0]

    def holding(self, group: str | None = None) -> bool:
        return all(self._holding.values()) if group is None else self._holding[group]

    def policy_epoch(self) -> Optional[int]:
        """The epoch a chunk must carry to be published, or None while the policy may not command."""
        with self._lock:
            return self._epoch if self.policy_may_command else None

    def activate(self, mode: str) -> None:
        with self._lock:
            self._active = True
            self._epoch += 1
            self._mode = "hold" if self._estop_latched else mode

    def deactivate(self) -> None:
        with self._lock:
            if self._active:
                self._hold_locked("node deactivated", self._groups)
            self._active = False
            self._epoch += 1

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
                self._monitor.fault("estop", f"engaged ({reason}); call ~/resume after releasing it", ERROR)
                if self._active:
                    self._hold_locked("e-stop", self._groups)

    def resume(self) -> tuple[bool, str]:
        with self._lock:
            if self._estop_signal:
                return False, "the e-stop signal is still true: release it first"
            if not self._estop_latched:
                return True, "e-stop not engaged"
            self._estop_latched = False
            self._epoch += 1
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
    def publish_policy_chunk(self, epoch: int, plan: PlannedChunk) -> bool:
        """Publish one trajectory per group if `epoch` is still current; False (counted) otherwise."""
        if not all(np.all(np.isfinite(p)) for p in plan.positions.values()):
            self._monitor.count("dropped_chunks")
            self._monitor.fault("policy", "chunk has NaN/inf actions: dropped, nothing published", ERROR)
            return False
        offset_s = (plan.start_ns - plan.reference_stamp_ns) * 1e-9
        point_times = offset_s + np.arange(1, plan.num_points + 1) * (self._step_ns * 1e-9)
        with self._lock:
            if epoch != self.policy_epoch():
                self._monitor.count("superseded_chunks")
                return False
            groups = list(self._groups)
            result = limit_trajectory(
                self._chunk_limits,
                np.concatenate([plan.reference[g] for g in groups]),
                point_times,
                np.concatenate([plan.positions[g] for g in groups], axis=1),
            )
            self._count_clamps(result)
            positions = np.split(result.positions, self._chunk_splits, axis=1)
            velocities = np.split(result.velocities, self._chunk_splits, axis=1)
            self._send({
                g: self._chunk_writers[g].fill(plan.start_ns, q, v) for g, q, v in zip(groups, positions, velocities)
            })
            self._monitor.count("chunks_published")
            return True

    def forward_teleop(self, group_name: str, msg: JointTrajectory) -> bool:
        """Forward one teleop trajectory for `group_name` (reordered to the group's joints) if in teleop mode."""
        group = self._groups[group_name]
        try:
            positions, velocities, times_ns = messages.trajectory_arrays(msg, group.joints)
        except ValueError as err:
            self._monitor.count("rejected_teleop")
            self._monitor.fault("teleop", f"{group_name}: {err}")
            return False
        if not (np.all(np.isfinite(positions)) and (velocities is None or np.all(np.isfinite(velocities)))):
            self._monitor.count("rejected_teleop")
            self._monitor.fault("teleop", f"{group_name}: NaN/inf in the teleop trajectory: dropped")
            return False
        measured = self._measured()
        if measured is None:
            self._monitor.fault("teleop", f"{group_name}: no valid joint state yet: teleop not forwarded")
            return False
        start_ns = messages.to_ns(msg.header.stamp) or self._now_ns()
        offset_s = (start_ns - measured.stamp_ns) * 1e-9
        with self._lock:
            if not (self._active and self._mode == "teleop" and not self._estop_latched):
                self._monitor.count("ignored_teleop")
                return False
            result = limit_trajectory(
                self._limits[group_name], measured.positions[group_name], offset_s + times_ns * 1e-9, positions,
                velocities,
            )
            self._count_clamps(result)
            outgoing = messages.joint_trajectory(
                group.joints, messages.to_ns(msg.header.stamp), times_ns.tolist(), result.positions,
                result.velocities,
            )
            self._send({group_name: outgoing})
            self._monitor.count("teleop_forwarded")
            self._monitor.clear("teleop")
            return True

    def hold(self, reason: str, groups: Sequence[str] | None = None) -> bool:
        """Command each group not already holding to stay at its measured position; interrupts the policy."""
        with self._lock:
            self._epoch += 1
            if not self._active:
                return False
            return self._hold_locked(reason, self._groups if groups is None else groups)

    def _hold_locked(self, reason: str, groups: Sequence[str]) -> bool:
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
            group = self._groups[g]
            q = measured.positions[g][None, :]
            result = limit_trajectory(self._limits[g], q[0], np.array([self._step_ns * 1e-9]), q, np.zeros_like(q))
            self._count_clamps(result)
            outgoing[g] = messages.joint_trajectory(
                group.joints, 0, [self._step_ns], result.positions, result.velocities
            )
        self._send(outgoing)
        for g in pending:
            self._holding[g] = True
        self._monitor.count("holds")
        self._monitor.count("held_groups", len(pending))
        return True

    def close(self, node: Node) -> None:
        for publisher in self.__publishers.values():
            node.destroy_publisher(publisher)
        self.__publishers = {}

    def _count_clamps(self, result: LimitResult) -> None:
        if result.position_clamps:
            self._monitor.count("position_clamps", result.position_clamps)
        if result.velocity_clamps:
            self._monitor.count("velocity_clamps", result.velocity_clamps)

    def _send(self, outgoing: dict[str, JointTrajectory]) -> None:
        for g, msg in outgoing.items():
            self._holding[g] = False
            if self._dry_run:
                self._monitor.count("dry_run_suppressed")
            else:
                self.__publishers[g].publish(msg)
