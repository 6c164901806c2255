# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Position and velocity limits applied to a trajectory: each point within the joint's range and within
`velocity_max * dt` of the point before it, the first from the measured position; velocities the finite
differences of the limited positions (or the given ones, clamped). Pure numpy: the safety gate applies it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from gr00t_npu_node.ros.params import JointGroup


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
    commanded: Optional[np.ndarray] = None,
) -> LimitResult:
    """Apply `limits` to points at `point_times_s`, seconds after the moment the robot is at `reference`.

    Each point stays within the position limits and within `velocity_max * dt` of the point before it (the first
    of `reference`). A joint at a reference outside its limits is never commanded further out: it is brought back
    towards its range no faster than its velocity limit. `commanded`: where the controller's running trajectory
    has it at that moment, when known; the first point is then within reach of both (a controller moves from
    its own state, and the measurement lags it), per joint where the two reaches overlap. `velocities` None:
    finite differences of the limited positions; otherwise the given ones, clamped. ValueError if the times are
    not positive and increasing (the callers drop points already due; a negative time would turn the step bound
    into a move towards a limit).
    """
    if len(point_times_s) == 0 or point_times_s[0] <= 0 or np.any(np.diff(point_times_s) <= 0):
        raise ValueError(f"point times must be positive and strictly increasing, got {point_times_s.tolist()[:4]}")
    lo, hi, vmax = limits.position_min, limits.position_max, limits.velocity_max
    clamped = np.clip(positions, lo, hi)
    position_clamps = int(np.count_nonzero(clamped != positions))
    max_steps = np.diff(point_times_s, prepend=0.0)[:, None] * vmax
    first_low, first_high = reference - max_steps[0], reference + max_steps[0]
    if commanded is not None:
        low, high = np.maximum(first_low, commanded - max_steps[0]), np.minimum(first_high, commanded + max_steps[0])
        overlap = low <= high
        first_low, first_high = np.where(overlap, low, first_low), np.where(overlap, high, first_high)
    too_fast = np.abs(np.diff(clamped, axis=0, prepend=reference[None, :])) > max_steps
    too_fast[0] |= (clamped[0] < first_low) | (clamped[0] > first_high)
    limited = clamped
    if too_fast.any():
        # Sequential from the first violation on: each bounded point is the origin of the next step. The range a
        # point may take is widened to include its origin, so a joint outside its limits only moves back in.
        first = int(np.argmax(too_fast.any(axis=1)))
        limited = clamped.copy()
        previous = limited[first - 1] if first else reference
        for i in range(first, len(limited)):
            row = np.clip(positions[i], np.minimum(lo, previous), np.maximum(hi, previous))
            if i == 0:
                np.clip(row, first_low, first_high, out=row)
            else:
                np.clip(row, previous - max_steps[i], previous + max_steps[i], out=row)
            limited[i] = previous = row
    velocity_clamps = int(np.count_nonzero(limited != clamped))
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
