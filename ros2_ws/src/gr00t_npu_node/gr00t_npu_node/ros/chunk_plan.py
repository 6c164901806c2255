# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Timing of a decoded action chunk: which steps are still in the future, when the trajectory starts, and the
bumpless blend from the measured position after a handover.

Step i of a chunk (0-based) is due at `observation_stamp + (i + 1) * step_s`. When inference finishes, the steps
due before then are dropped, and the trajectory starts at `observation_stamp + skipped * step_s`, so each kept
step keeps its original due time (`time_from_start = (j + 1) * step_s`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class PlannedChunk:
    """One chunk for all commanded groups at once: joints in the order of `policy_groups`, group after group."""

    start_ns: int  # header.stamp of every group's trajectory
    step_s: float
    skipped_steps: int
    positions: np.ndarray  # float64 [N, J], N = horizon - skipped_steps
    reference: np.ndarray  # float64 [J]: the measured positions the chunk continues from (velocity limits, blend)

    @property
    def num_points(self) -> int:
        return self.positions.shape[0]

    def positions_at(self, times_ns: np.ndarray) -> np.ndarray:
        """[len(times_ns), J]: where a controller executing this chunk is at each time, linear from `reference`
        at `start_ns` through the points, at rest at the last one after it."""
        step_ns = round(self.step_s * 1e9)
        due_ns = self.start_ns + np.arange(self.num_points + 1, dtype=np.int64) * step_ns
        points = np.concatenate((self.reference[None, :], self.positions))
        return np.stack([np.interp(times_ns, due_ns, q) for q in points.T], axis=1)


def steps_in_past(observation_stamp_ns: int, now_ns: int, step_s: float) -> int:
    """Number of steps (i + 1) * step_s after the observation that are already due at `now_ns`."""
    elapsed = (now_ns - observation_stamp_ns) * 1e-9
    return max(0, math.floor(elapsed / step_s + 1e-9))


def plan_chunk(
    chunk: np.ndarray,
    *,
    observation_stamp_ns: int,
    now_ns: int,
    step_s: float,
    measured: np.ndarray,
    handover_steps: Optional[int],
) -> Optional[PlannedChunk]:
    """Plan the part of `chunk` (float64 [horizon, J]) still ahead of `now_ns`; None when all of it is past.

    `handover_steps` not None: the chunk starts exactly at `measured` [J] and blends into the policy, weight of
    the policy `min(1, j / handover_steps)` at kept point j.
    """
    horizon = chunk.shape[0]
    skipped = steps_in_past(observation_stamp_ns, now_ns, step_s)
    if skipped >= horizon:
        return None
    positions = chunk[skipped:]
    if handover_steps is not None:
        weight = np.minimum(1.0, np.arange(horizon - skipped) / handover_steps)[:, None]
        positions = (1.0 - weight) * measured[None, :] + weight * positions
    start_ns = observation_stamp_ns + round(skipped * step_s * 1e9)
    return PlannedChunk(start_ns, step_s, skipped, positions, measured)
