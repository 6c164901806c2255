"""How smoothly one chunk hands over to the next, at the new chunk's first point t0 (all from planned positions,
so that offline predictions and recorded commands are measured alike):

    jump           |q_new(t0) - q_run(t0)|: the new plan against the running plan at that time
    velocity step  |(q_new(t0 + dt) - q_new(t0)) - (q_run(t0 + dt) - q_run(t0))| / dt
    acceleration   |q_new(t0 + dt) - 2 q_new(t0) + q_run(t0 - dt)| / dt^2, the executed path across the switch

each the largest over the group's joints; dt is one step. A plan past its last point rests there. Real-time
chunking exists to make these small."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MEASURES = ("jump", "velocity_step", "acceleration")


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
    jump: float
    velocity_step: float
    acceleration: float


def switch(running: Plan, new: Plan, step: float) -> Switch:
    t0 = float(new.times[0])
    q0, q1 = new.at(t0), new.at(t0 + step)
    r0, r1, r_before = running.at(t0), running.at(t0 + step), running.at(t0 - step)
    return Switch(
        jump=float(np.max(np.abs(q0 - r0))),
        velocity_step=float(np.max(np.abs((q1 - q0) - (r1 - r0))) / step),
        acceleration=float(np.max(np.abs(q1 - 2 * q0 + r_before)) / step**2),
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
