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
    start_ns: int  # header.stamp of every group's trajectory
    step_s: float
    skipped_steps: int
    positions: dict[str, np.ndarray]  # group -> float64 [N, D], N = horizon - skipped_steps
    reference: dict[str, np.ndarray]  # measured positions the chunk continues from (velocity limits, blend)

    @property
    def num_points(self) -> int:
        return next(iter(self.positions.values())).shape[0]


def steps_in_past(observation_stamp_ns: int, now_ns: int, step_s: float) -> int:
    """Number of steps (i + 1) * step_s after the observation that are already due at `now_ns`."""
    elapsed = (now_ns - observation_stamp_ns) * 1e-9
    return max(0, math.floor(elapsed / step_s + 1e-9))


def plan_chunk(
    actions: dict[str, np.ndarray],
    *,
    observation_stamp_ns: int,
    now_ns: int,
    step_s: float,
    measured: dict[str, np.ndarray],
    handover_steps: Optional[int],
) -> Optional[PlannedChunk]:
    """Plan the part of `actions` ({group: [horizon, D]}) still ahead of `now_ns`; None when all of it is past.

    `handover_steps` not None: the chunk starts exactly at the measured position and blends into the policy,
    weight of the policy `min(1, j / handover_steps)` at kept point j.
    """
    horizon = next(iter(actions.values())).shape[0]
    skipped = steps_in_past(observation_stamp_ns, now_ns, step_s)
    if skipped >= horizon:
        return None
    positions = {g: np.asarray(a[skipped:], dtype=np.float64) for g, a in actions.items()}
    if handover_steps is not None:
        n = horizon - skipped
        weight = np.minimum(1.0, np.arange(n) / handover_steps)[:, None]
        positions = {g: (1.0 - weight) * measured[g][None, :] + weight * p for g, p in positions.items()}
    start_ns = observation_stamp_ns + round(skipped * step_s * 1e9)
    return PlannedChunk(start_ns, step_s, skipped, positions, measured)
