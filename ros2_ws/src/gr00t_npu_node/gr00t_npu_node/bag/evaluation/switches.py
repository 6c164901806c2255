# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""How smoothly one chunk hands over to the next. The robot executes the running plan until t0, the new plan's
first point that departs from it (a chunk generated with real-time chunking starts with the running chunk's own
points, the steps executed during its inference; otherwise t0 is the new plan's first point), and the new plan
from t0 on. At t0, from planned positions (so that offline predictions and recorded commands are measured alike):

    start offset   |q_new(t1) - q_run(t1)| at the new plan's first point t1: 0 when the controller switches at a
                   point of the running plan (the new plan continues it), the jump itself otherwise
    jump           |q_new(t0) - q_run(t0)|
    velocity step  |(q_new(t0 + dt) - q_new(t0)) - (q_run(t0) - q_run(t0 - dt))| / dt
    acceleration   |q_new(t0 + dt) - 2 q_new(t0) + q_run(t0 - dt)| / dt^2, the executed path across the switch

each the largest over the group's joints; dt is one step. A plan past its last point rests there (a robot whose
chunk ran out before the next one came stopped). Real-time chunking exists to make these small."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASURES = ("start_offset", "jump", "velocity_step", "acceleration")


@dataclass(frozen=True)
class Plan:
    """One group's planned positions [points, joints], point i due at times[i] (any unit, as long as the step is)."""

    times: np.ndarray
    positions: np.ndarray

    def at(self, t: float) -> np.ndarray:
        """Interpolated between points; before the first point, the first; past the last, the last."""
        return np.array([np.interp(t, self.times, column) for column in self.positions.T])


@dataclass(frozen=True)
class Switch:
    start_offset: float
    jump: float
    velocity_step: float
    acceleration: float
    gap: bool  # the running plan ended more than a step before the new one began: the robot stopped between them


# rad: a point this close to the running plan is that plan's own point. Not zero: the new chunk's steps sit on its
# own camera frame's grid, a few hundred ns off the running chunk's, and its frozen steps are the running plan
# interpolated there (about 1e-6 rad at 3 rad/s); a point this close would also be no jump worth measuring.
TAKEOVER_TOLERANCE = 1e-4


def takeover_time(running: Plan, new: Plan) -> float:
    """The first point of `new` that departs from the running plan while that plan lasts; `new`'s first point if
    none does (the two are one continuous path)."""
    for t, q in zip(new.times, new.positions):
        if t > running.times[-1]:
            break
        if np.max(np.abs(q - running.at(t))) > TAKEOVER_TOLERANCE:
            return float(t)
    return float(new.times[0])


def switch(running: Plan, new: Plan, step: float) -> Switch:
    t0 = takeover_time(running, new)
    q0, q1 = new.at(t0), new.at(t0 + step)
    r0, r_before = running.at(t0), running.at(t0 - step)
    return Switch(
        start_offset=float(np.max(np.abs(new.positions[0] - running.at(new.times[0])))),
        jump=float(np.max(np.abs(q0 - r0))),
        velocity_step=float(np.max(np.abs((q1 - q0) - (r0 - r_before))) / step),
        acceleration=float(np.max(np.abs(q1 - 2 * q0 + r_before)) / step**2),
        gap=bool(new.times[0] > running.times[-1] + step * (1 + 1e-6)),
    )


def switches(plans: list[Plan], step: float) -> list[Switch]:
    """The switches between consecutive plans."""
    return [switch(running, new, step) for running, new in zip(plans, plans[1:])]


def summarize(found: list[Switch]) -> dict[str, float | None]:
    """Median and 95th percentile of each measure (None without switches)."""
    out: dict[str, float | None] = {}
    for measure in MEASURES:
        values = [getattr(s, measure) for s in found]
        out[f"{measure}_median"] = float(np.median(values)) if values else None
        out[f"{measure}_p95"] = float(np.percentile(values, 95)) if values else None
    return out
