# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Scoring predicted action chunks against an episode's recorded actions.

Step i of a chunk predicted from the observation at frame k is compared with the recorded action of frame k + i
(the node executes it at the observation's stamp + (i + 1) steps). At each switch from a chunk to the next one
(the next one's first executed point, frame f): the jump, velocity step and acceleration of
evaluation/switches.py per group, median and 95th percentile, beside the recording's own step
|action[f] - action[f - 1]|.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from gr00t_npu_node.bag.dataset.episode import Episode
from gr00t_npu_node.bag.dataset.layout import JointLayout
from gr00t_npu_node.bag.evaluation.switches import Plan, summarize, switches


@dataclass(frozen=True)
class PredictedChunk:
    obs_frame: int                    # frame of the observation the chunk was predicted from
    first_step: int                   # horizon step of the first point (> 0 when the node skipped due steps)
    positions: dict[str, np.ndarray]  # group -> [points, D], joints in the layout's order

    @property
    def first_frame(self) -> int:
        return self.obs_frame + self.first_step

    def at_frame(self, group: str, frame: int) -> np.ndarray | None:
        point = frame - self.first_frame
        values = self.positions[group]
        return values[point] if 0 <= point < len(values) else None


@dataclass(frozen=True)
class EvalReport:
    episode: str
    policy: str
    mode: str
    frames: int
    chunks: int
    horizon: int
    execute_steps: int
    groups: dict[str, int]                      # group -> joints
    mae_by_group: dict[str, float]
    mae_all: float
    mae_by_step: list[float | None]             # over all groups' joints, per horizon step
    mae_by_group_step: dict[str, list[float | None]]
    switches: dict[str, dict[str, float | None]]  # group -> median/p95 of start_offset, jump, velocity_step, ...
    recorded_step: float | None                 # mean |action[f] - action[f-1]| at the switches
    latency_ms: dict[str, float]                # p50, p95, max, count
    wall_seconds: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def table(self) -> str:
        def fmt(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        lines = [f"{self.episode}: {self.chunks} chunks over {self.frames} frames ({self.mode}, execute "
                 f"{self.execute_steps} of {self.horizon} steps), policy {self.policy}",
                 f"{'group':<12}{'joints':>7}{'MAE rad':>10}   switch jump rad, velocity step rad/s, acceleration "
                 "rad/s^2 (median / p95)"]
        for group, joints in self.groups.items():
            m = self.switches[group]
            lines.append(f"{group:<12}{joints:>7}{fmt(self.mae_by_group[group]):>10}   "
                         + ",  ".join(f"{fmt(m[f'{k}_median'])} / {fmt(m[f'{k}_p95'])}"
                                      for k in ("jump", "velocity_step", "acceleration")))
        lines.append(f"{'all':<12}{sum(self.groups.values()):>7}{fmt(self.mae_all):>10}")
        lines.append("MAE by horizon step: " + " ".join(fmt(v) for v in self.mae_by_step))
        lines.append(f"the recording's own step at the switches: {fmt(self.recorded_step)} rad")
        if self.latency_ms.get("count"):
            lines.append(f"latency p50 {self.latency_ms['p50']:.1f} ms, p95 {self.latency_ms['p95']:.1f} ms, max "
                         f"{self.latency_ms['max']:.1f} ms ({int(self.latency_ms['count'])} calls); "
                         f"wall {self.wall_seconds:.1f} s")
        return "\n".join(lines)


def _mean(values: list[np.ndarray]) -> float | None:
    return float(np.mean(np.concatenate(values))) if values else None


def score_chunks(chunks: list[PredictedChunk], episode: Episode, layout: JointLayout, groups: tuple[str, ...], *,
                 horizon: int, execute_steps: int, latencies_s: list[float], policy: str, mode: str,
                 wall_seconds: float) -> EvalReport:
    """Errors of `chunks` (ordered by observation) against `episode.actions` for the joints of `groups`."""
    if not chunks:
        raise ValueError(f"{episode.name}: no chunks to score")
    columns = episode.group_columns(layout, groups)
    actions = {g: episode.actions[:, columns[g]] for g in groups}
    frames = episode.num_frames
    errors_by_group_step: dict[str, list[list[np.ndarray]]] = {g: [[] for _ in range(horizon)] for g in groups}
    for chunk in chunks:
        for group in groups:
            for point, predicted in enumerate(chunk.positions[group]):
                frame, step = chunk.first_frame + point, chunk.first_step + point
                if frame < frames and step < horizon:
                    errors_by_group_step[group][step].append(np.abs(predicted - actions[group][frame]))
    recorded = [np.abs(actions[g][after.first_frame] - actions[g][after.first_frame - 1])
                for after in chunks[1:] if 0 < after.first_frame < frames for g in groups]
    step_s = 1.0 / layout.action_rate_hz  # frame f is executed at f steps
    plans = {g: [Plan((c.first_frame + np.arange(len(c.positions[g]))) * step_s, c.positions[g]) for c in chunks]
             for g in groups}
    by_group_step = {g: [_mean(errors_by_group_step[g][s]) for s in range(horizon)] for g in groups}
    latency = np.array(latencies_s) * 1e3
    return EvalReport(
        episode=episode.name, policy=policy, mode=mode, frames=frames, chunks=len(chunks), horizon=horizon,
        execute_steps=execute_steps, groups={g: len(columns[g]) for g in groups},
        mae_by_group={g: _mean([e for step in errors_by_group_step[g] for e in step]) for g in groups},
        mae_all=_mean([e for g in groups for step in errors_by_group_step[g] for e in step]),
        mae_by_step=[_mean([e for g in groups for e in errors_by_group_step[g][s]]) for s in range(horizon)],
        mae_by_group_step=by_group_step,
        switches={g: summarize(switches(plans[g], step_s)) for g in groups},
        recorded_step=_mean(recorded),
        latency_ms={"p50": float(np.percentile(latency, 50)), "p95": float(np.percentile(latency, 95)),
                    "max": float(latency.max()), "count": float(len(latency))} if len(latency) else {"count": 0.0},
        wall_seconds=wall_seconds,
    )
