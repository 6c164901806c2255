# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Regression checks on the node's commands recorded during a replay: chunk count for the episode length and
cadence, joint names, monotonic stamps, position limits, and chunk timing against the replayed clock; and how
smoothly each chunk hands over to the next (evaluation/switches.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gr00t_npu_node.bag.dataset.layout import JointLayout
from gr00t_npu_node.bag.evaluation.switches import Plan, Switch, summarize, switches
from gr00t_npu_node.bag.evaluation.trajectories import CommandChunk, CommandLog, observation_frame

TIME_TOLERANCE_NS = 1_000


@dataclass
class ReplayCheck:
    chunks: int
    frames: int
    observation_frames: list[int | None]
    skipped_steps: list[int]
    holds: dict[str, int]                 # per group: holds during the replay
    holds_at_start: dict[str, int]        # per group: holds as the replay's clock started (see check_replay)
    switches: dict[str, list[Switch]] = field(default_factory=dict)  # per group: each chunk's handover
    problems: list[str] = field(default_factory=list)

    def switch_summary(self) -> dict[str, dict[str, float | None]]:
        """Per group: median and 95th percentile of the jump, velocity step and acceleration at switches."""
        return {g: summarize(s) for g, s in self.switches.items()}

    def summary(self) -> str:
        switches = "; ".join(
            f"{g} start offset {m['start_offset_median']:.2e}/{m['start_offset_p95']:.2e} rad, jump "
            f"{m['jump_median']:.4f}/{m['jump_p95']:.4f} rad, velocity step {m['velocity_step_median']:.3f}/"
            f"{m['velocity_step_p95']:.3f} rad/s, acceleration {m['acceleration_median']:.1f}/"
            f"{m['acceleration_p95']:.1f} rad/s^2"
            for g, m in self.switch_summary().items() if m["jump_median"] is not None
        )
        return (f"{self.chunks} chunks for {self.frames} frames, observations at frames {self.observation_frames}, "
                f"skipped steps {self.skipped_steps}, holds {self.holds} (at the start {self.holds_at_start}); "
                f"switches (median/p95): {switches or 'none'}; "
                + ("all checks passed" if not self.problems else f"{len(self.problems)} problems"))


def check_replay(log: CommandLog, camera_stamps: list[int], layout: JointLayout, *, horizon: int,
                 clock_slack_ns: int, max_extra_frames: int = 3) -> ReplayCheck:
    """Check `log` (the node's commands during a replay of `camera_stamps`) against the node's contract.

    `clock_slack_ns` is how far the recorder's sim clock may trail or lead the node's (a couple of /clock ticks);
    `max_extra_frames` is how many frames late an inference may start beyond the cadence (latency, scheduling).
    """
    step_ns = round(1e9 / layout.action_rate_hz)
    execute = layout.execute_steps
    frames = len(camera_stamps)
    chunks = log.chunks
    # When the replay's clock starts, the images and joint states the node kept from before (an earlier replay)
    # are suddenly old, and it may hold once before the bag's first image reaches it: that hold is not the bag's.
    started_ns = (camera_stamps[0] if camera_stamps else 0) + clock_slack_ns
    check = ReplayCheck(len(chunks), frames, [], [],
                        {g: sum(t > started_ns for t in times) for g, times in log.hold_times.items()},
                        {g: sum(t <= started_ns for t in times) for g, times in log.hold_times.items()})
    problem = check.problems.append
    if not chunks:
        problem("the node published no chunk during the replay")
        return check
    if held := {g: n for g, n in check.holds.items() if n}:
        problem(f"the node held during the replay {held} (stale or missing inputs; see its diagnostics)")
    limits = layout.limits(layout.policy_groups)
    for index, chunk in enumerate(chunks):
        label = f"chunk {index} (stamp {chunk.start_ns})"
        points = {g.times_from_start_ns.size for g in chunk.groups.values()}
        if len(points) != 1 or not 0 < chunk.num_points <= horizon:
            problem(f"{label}: point counts {sorted(points)} differ between groups or exceed the horizon {horizon}")
            continue
        expected_times = (np.arange(chunk.num_points) + 1) * step_ns
        for group, trajectory in chunk.groups.items():
            if trajectory.joint_names != layout.groups[group]:
                problem(f"{label}: {group} joints {list(trajectory.joint_names)} != configured "
                        f"{list(layout.groups[group])}")
                continue
            if not np.array_equal(trajectory.times_from_start_ns, expected_times):
                problem(f"{label}: {group} time_from_start {trajectory.times_from_start_ns.tolist()} is not "
                        f"(i + 1) * {step_ns} ns")
            # A joint the robot holds beyond its limits is brought back, never moved further out: a chunk may
            # start beyond a limit (from the measured position) but never go past where it starts.
            first = trajectory.positions[0]
            low_limit = np.minimum([limits[j][0] for j in trajectory.joint_names], first)
            high_limit = np.maximum([limits[j][1] for j in trajectory.joint_names], first)
            outside = (trajectory.positions < low_limit - 1e-9) | (trajectory.positions > high_limit + 1e-9)
            if outside.any():
                joints = sorted({trajectory.joint_names[j] for j in np.nonzero(outside)[1]})
                problem(f"{label}: {group} commands {joints} beyond the configured position limits")
            if not -clock_slack_ns <= trajectory.receive_ns - chunk.start_ns < step_ns + clock_slack_ns:
                problem(f"{label}: {group} arrived at sim time {trajectory.receive_ns}, "
                        f"{(trajectory.receive_ns - chunk.start_ns) / 1e6:.1f} ms after its start; the node plans "
                        "from the clock, so it must arrive within one step")
        skipped = horizon - chunk.num_points
        frame = observation_frame(chunk, camera_stamps, step_ns, horizon, TIME_TOLERANCE_NS)
        check.observation_frames.append(frame)
        check.skipped_steps.append(skipped)
        if frame is None:
            problem(f"{label}: start - {skipped} skipped steps matches no replayed image stamp")
    check.switches = {g: _switches(chunks, g, step_ns) for g in chunks[0].groups}
    # With real-time chunking the next inference starts before the running chunk's execute steps are done, by
    # its measured latency: any earlier frame may start it.
    earliest_gap = 1 if layout.real_time_chunking else None
    _check_count(check, execute, max_extra_frames, earliest_gap)
    _check_order(check, log)
    _check_cadence(check, camera_stamps, chunks, execute, step_ns, max_extra_frames, earliest_gap)
    return check


def _switches(chunks: list[CommandChunk], group: str, step_ns: int) -> list[Switch]:
    plans = [Plan(c.groups[group].times_ns * 1e-9, c.groups[group].positions) for c in chunks]
    return switches(plans, step_ns * 1e-9)


def _check_count(check: ReplayCheck, execute: int, max_extra_frames: int, earliest_gap: int | None) -> None:
    """Chunks start every `execute` frames (or earlier, `earliest_gap`), later by the steps a slow inference
    skipped and a little slack."""
    frames, skipped = check.frames, sum(check.skipped_steps)
    low = math.ceil((frames - skipped) / (execute + 1 + max_extra_frames))
    high = math.ceil(frames / max(1, earliest_gap or execute - 1))
    if not low <= check.chunks <= high:
        check.problems.append(f"{check.chunks} chunks for {frames} frames at {execute} executed steps (skipped "
                              f"{skipped} steps in all); expected {low}..{high}")


def _check_order(check: ReplayCheck, log: CommandLog) -> None:
    """Each chunk starts later than the one that arrived before it. Messages recorded at the same (sim) time, as
    after the replayed clock stopped, have no order to check."""
    for group, arrivals in log.arrivals.items():
        if any(b_stamp <= a_stamp for (a_time, a_stamp), (b_time, b_stamp) in zip(arrivals, arrivals[1:])
               if b_time > a_time):
            check.problems.append(f"{group}: chunk stamps are not strictly increasing in the order they arrived")
    for group in log.chunks[0].groups:
        receive = [c.groups[group].receive_ns for c in log.chunks]
        if any(b < a for a, b in zip(receive, receive[1:])):
            check.problems.append(f"{group}: recorded (sim) receive times run backwards")


def _check_cadence(check: ReplayCheck, camera_stamps: list[int], chunks, execute: int, step_ns: int,
                   max_extra_frames: int, earliest_gap: int | None) -> None:
    if None in check.observation_frames:
        return
    # In the order of their observations: two chunks may start at the same step (one from a newer frame that
    # skipped fewer steps), which makes stamp order and observation order differ by a frame or two.
    frames, skipped = map(list, zip(*sorted(zip(check.observation_frames, check.skipped_steps))))
    if frames[0] > max_extra_frames:
        check.problems.append(f"the first chunk came from frame {frames[0]}, not one of the first frames")
    for i in range(1, len(frames)):
        gap = frames[i] - frames[i - 1]
        # The next inference starts once execute steps of the previous chunk are due; the newest image then may
        # be stamped just before that due time (the data set's stamps sit a few hundred ns under the 50 ms grid),
        # or be older still when the frames due since have not been delivered yet on a loaded machine.
        latest = execute + skipped[i - 1] + max_extra_frames
        earliest = earliest_gap or max(1, execute + skipped[i - 1] - 1 - max_extra_frames)
        if not earliest <= gap <= latest:
            check.problems.append(f"chunks {i - 1} and {i} are {gap} frames apart; the cadence allows "
                                  f"{earliest}..{latest}")
    if chunks[-1].start_ns + execute * step_ns <= camera_stamps[-1] - (max_extra_frames + 1) * step_ns:
        check.problems.append("the node stopped commanding before the replay ended")
