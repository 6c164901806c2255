# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Evaluation of a policy on an episode: offline (the policy called directly at every chunk start, as fast as it
runs) or live (the episode replayed into the running node, its commanded chunks recorded and scored)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gr00t_npu_node.bag.progress import progress as show_progress
from gr00t_npu_node.guidance import ChunkGuidance
from gr00t_npu_node.bag.dataset.episode import Episode
from gr00t_npu_node.bag.dataset.layout import JointLayout
from gr00t_npu_node.bag.evaluation.live import LiveRun
from gr00t_npu_node.bag.evaluation.score import EvalReport, PredictedChunk, score_chunks
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log, read_latencies, observation_frame


def _guidance(running: PredictedChunk, frame: int, horizon: int, delay_steps: int, mode: str) -> ChunkGuidance:
    """What the chunk executing at `frame` plans for the new chunk's steps (step j targets frame + j)."""
    group = next(iter(running.positions))
    overlap = next((j for j in range(horizon) if running.at_frame(group, frame + j) is None), horizon)
    target = {
        g: np.stack([running.at_frame(g, frame + min(j, overlap - 1)) for j in range(horizon)])
        for g in running.positions
    } if overlap else {}
    # As in the node: the steps executed meanwhile and the first one the new chunk is executed from are frozen.
    return ChunkGuidance(target, frozen_steps=min(delay_steps + 1, overlap), overlap_steps=overlap, mode=mode)


def _instruction_at(episode: Episode, frame: int) -> str:
    return [text for start, text in episode.instructions if start <= frame][-1]


def evaluate_offline(policy, episode: Episode, layout: JointLayout, *, execute_steps: int = 8, delay_steps: int = 0,
                     rtc_mode: str | None = None, progress: bool = False) -> EvalReport:
    """Call `policy.get_action` on the observation of every `execute_steps`-th frame and score the chunks.

    `delay_steps` simulates an inference that takes that many steps: the first `delay_steps` steps of each chunk
    are never executed (the previous chunk runs on meanwhile). `rtc_mode` generates each chunk with real-time
    chunking against the previous one's plan, those steps and the first executed one frozen
    (gr00t_npu_node.guidance)."""
    groups = tuple(policy.action_dims)
    state_columns = episode.group_columns(layout, tuple(policy.state_dims))
    video_key = policy.video_keys[0]
    horizon = policy.action_horizon
    if not 0 <= delay_steps <= execute_steps:
        raise ValueError(f"delay_steps {delay_steps} must be in [0, execute_steps {execute_steps}]: a chunk must "
                         "arrive before the previous one has run out")
    chunks: list[PredictedChunk] = []
    latencies: list[float] = []
    started = time.perf_counter()
    frames = show_progress(episode.frames(), progress, total=episode.num_frames, desc=f"eval {episode.name}",
                           unit="frame", leave=False)
    for frame, rgb in enumerate(frames):
        if frame % execute_steps:
            continue
        observation = policy.observation(
            {video_key: rgb}, {g: episode.states[frame, c] for g, c in state_columns.items()},
            _instruction_at(episode, frame),
        )
        guidance = _guidance(chunks[-1], frame, horizon, delay_steps, rtc_mode) if rtc_mode and chunks else None
        call = time.perf_counter()
        actions = policy.get_action(observation, guidance=guidance) if guidance else policy.get_action(observation)
        latencies.append(time.perf_counter() - call)
        positions = {g: np.asarray(actions[g][0, delay_steps:], dtype=np.float64) for g in groups}
        chunks.append(PredictedChunk(frame, delay_steps, positions))
    return score_chunks(chunks, episode, layout, groups, horizon=policy.action_horizon, execute_steps=execute_steps,
                        latencies_s=latencies, policy=policy.description, mode="offline",
                        wall_seconds=time.perf_counter() - started)


def score_live_run(run: LiveRun, episode: Episode, layout: JointLayout, *, horizon: int,
                   wall_seconds: float) -> EvalReport:
    """Score the chunks the node commanded during `run` (a replay of `episode`)."""
    log = read_command_log(run.recorded, run.command_topics)
    step_ns = round(1e9 / layout.action_rate_hz)
    chunks = []
    for chunk in log.chunks:
        frame = observation_frame(chunk, run.camera_stamps, step_ns, horizon)
        if frame is None:
            raise ValueError(f"{run.recorded}: the chunk stamped {chunk.start_ns} ns matches no replayed image; "
                             "was the node on sim time (use_sim_time:=true)?")
        positions = {}
        for group, trajectory in chunk.groups.items():
            order = [trajectory.joint_names.index(j) for j in layout.groups[group]]
            positions[group] = trajectory.positions[:, order]
        chunks.append(PredictedChunk(frame, horizon - chunk.num_points, positions))
    return score_chunks(chunks, episode, layout, tuple(run.command_topics), horizon=horizon,
                        execute_steps=layout.execute_steps, latencies_s=read_latencies(run.recorded, run.latency_topic),
                        policy=f"gr00t_node commands recorded in {Path(run.recorded).name}", mode="live",
                        wall_seconds=wall_seconds)
