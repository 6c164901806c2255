# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`gr00t-npu-bag eval`: the scoring arithmetic on known chunks, episodes read back from bags, and offline
evaluation through the real (tiny) policy."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from gr00t_npu_node.bag.cli import main as bag_cli
from gr00t_npu_node.bag.evaluation.evaluate import evaluate_offline
from gr00t_npu_node.bag.dataset.from_bag import episode_from_bag
from gr00t_npu_node.bag.dataset.layout import load_joint_layout
from gr00t_npu_node.bag.evaluation.score import PredictedChunk, score_chunks
from gr00t_npu_node.bag.dataset.synth import synthetic_episode, write_synthetic_bag

HORIZON = 16
EXECUTE = 8


@pytest.fixture(scope="module")
def layout():
    return load_joint_layout()


@pytest.fixture(scope="module")
def episode(layout):
    return synthetic_episode(layout, seconds=2.0)


def chunks_from_actions(episode, layout, offset: float = 0.0) -> list[PredictedChunk]:
    """Chunks that repeat the recorded actions (plus `offset`), truncated at the episode's end."""
    columns = episode.group_columns(layout, layout.policy_groups)
    return [PredictedChunk(start, 0, {g: episode.actions[start:start + HORIZON, c] + offset
                                      for g, c in columns.items()})
            for start in range(0, episode.num_frames, EXECUTE)]


def score(chunks, episode, layout):
    return score_chunks(chunks, episode, layout, layout.policy_groups, horizon=HORIZON, execute_steps=EXECUTE,
                        latencies_s=[0.01, 0.02, 0.03], policy="known chunks", mode="offline", wall_seconds=1.0)


def test_chunks_equal_to_the_recording_score_zero_and_jump_like_the_recording(episode, layout):
    report = score(chunks_from_actions(episode, layout), episode, layout)
    assert report.chunks == math.ceil(episode.num_frames / EXECUTE)
    assert report.mae_all == 0 and all(v == 0 for v in report.mae_by_group.values())
    assert report.mae_by_step == [0.0] * HORIZON
    for group, measures in report.switches.items():
        assert measures["jump_median"] == measures["jump_p95"] == 0, group
    assert report.recorded_step > 0
    assert report.groups == {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6, "waist": 3}
    assert report.latency_ms["p50"] == pytest.approx(20.0) and report.latency_ms["count"] == 3


def test_an_offset_shows_in_every_group_and_step_and_a_skipped_start_shifts_the_steps(episode, layout):
    report = score(chunks_from_actions(episode, layout, offset=0.1), episode, layout)
    assert report.mae_all == pytest.approx(0.1)
    assert all(v == pytest.approx(0.1) for step in report.mae_by_group_step.values() for v in step)
    assert all(m["jump_p95"] == pytest.approx(0.0) for m in report.switches.values()), "an offset plan agrees"

    # A live chunk published 3 steps late: its points are horizon steps 3.. and target frames obs + 3 ...
    columns = episode.group_columns(layout, layout.policy_groups)
    late = PredictedChunk(0, 3, {g: episode.actions[3:HORIZON, c] for g, c in columns.items()})
    skipped = score([late], episode, layout)
    assert skipped.mae_all == 0 and skipped.mae_by_step[:3] == [None] * 3 and skipped.mae_by_step[3] == 0
    table = skipped.table()
    assert "MAE by horizon step: n/a n/a n/a 0.0000" in table


def test_a_converted_bag_reads_back_as_the_episode(tmp_path, episode, layout):
    bag = write_synthetic_bag(tmp_path / "synthetic", layout, seconds=2.0, storage="sqlite3").path
    read = episode_from_bag(bag)
    assert read.num_frames == episode.num_frames and read.joint_names == episode.joint_names
    np.testing.assert_array_equal(read.states, episode.states)
    np.testing.assert_array_equal(read.actions, episode.actions)
    np.testing.assert_allclose(read.timestamps, episode.timestamps - episode.timestamps[0], atol=1e-9)
    assert read.instructions == episode.instructions
    for got, expected in zip(read.frames(), episode.frames()):
        np.testing.assert_array_equal(got, expected)


def test_offline_eval_runs_the_policy_at_every_chunk_start(tiny_checkpoint, episode, layout):
    from gr00t_npu_node.policy import Gr00tPolicy

    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, optimize=False)
    report = evaluate_offline(policy, episode, layout, execute_steps=EXECUTE)
    assert report.chunks == math.ceil(episode.num_frames / EXECUTE) == report.latency_ms["count"]
    assert report.mode == "offline" and "tiny" in report.policy
    assert all(np.isfinite(v) and v > 0 for v in report.mae_by_group.values())
    assert all(v is not None and np.isfinite(v) for v in report.mae_by_step)
    assert all(m[k] is not None and m[k] > 0 for m in report.switches.values() for k in m), "random chunks jump"
    assert json.loads(report.to_json())["chunks"] == report.chunks

    # Scored against the recorded actions, not the states: shifting the recording by 5 rad shows in the error.
    shifted = replace(episode, actions=episode.actions + 5.0)
    assert evaluate_offline(policy, shifted, layout, execute_steps=EXECUTE).mae_all > 5.0 - report.mae_all - 0.5


def test_eval_cli_on_a_gr1_episode_writes_table_and_json(tmp_path, shared_data, tiny_checkpoint, capsys):
    out = tmp_path / "report.json"
    assert bag_cli(["eval", "--dataset", str(shared_data / "gr1.PickNPlace"), "--episode", "2", "--max-seconds",
                    "1.0", "--checkpoint", str(tiny_checkpoint), "--plain", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["frames"] == 21 and report["chunks"] == 3 and report["episode"].endswith("episode_000002")
    assert set(report["mae_by_group"]) == {"left_arm", "right_arm", "left_hand", "right_hand", "waist"}
    assert "3 chunks over 21 frames (offline" in printed and "latency p50" in printed


def test_eval_cli_needs_exactly_one_source(capsys):
    assert bag_cli(["eval"]) == 2
    assert "either a bag (--bag BAG) or a data set episode" in capsys.readouterr().err


def test_switch_measures_on_known_plans():
    from gr00t_npu_node.bag.evaluation.switches import Plan, switch

    step = 0.05
    times = np.arange(16) * step
    running = Plan(times, np.stack([times * 1.0, -times], axis=1))  # joint 0 at 1 rad/s, joint 1 at -1 rad/s
    # Takes over at 0.2 s: 0.1 rad above the running plan on joint 0, twice as fast on joint 1.
    new_times = times[4:]
    new = Plan(new_times, np.stack([new_times + 0.1, -0.2 - 2 * (new_times - 0.2)], axis=1))
    measured = switch(running, new, step)
    assert measured.jump == pytest.approx(0.1)
    assert measured.velocity_step == pytest.approx(1.0)  # joint 1: -2 rad/s after against -1 rad/s before
    # joint 0: (0.35 - 2 * 0.3 + 0.15) / step^2 = 0.1 / 0.0025
    assert measured.acceleration == pytest.approx(0.1 / step**2)
    # A running plan that ended before the switch rests at its last point.
    ended = Plan(times[:3], running.positions[:3])
    np.testing.assert_allclose(ended.at(1.0), running.positions[2])
    assert switch(ended, new, step).jump == pytest.approx(0.2)  # joint 0: 0.3 against the 0.1 it rests at
    assert switch(ended, new, step).gap and not measured.gap, "ended at 0.1 s, the next began at 0.2 s"
    # A new plan that starts with the running plan's own points (real-time chunking's frozen steps) takes over
    # where it departs from them: two points later here, where it is 0.1 rad off.
    continuing = Plan(times[2:14], np.concatenate([running.positions[2:4], new.positions[:10]]))
    assert switch(running, continuing, step).jump == pytest.approx(0.1)
    # Also when its frozen points are the running plan interpolated on another camera frame's grid, a micro-radian
    # off (not a takeover with a jump of 1e-6 rad at the first point).
    nudged = Plan(continuing.times, continuing.positions + np.array([[1e-6, -1e-6]] * 2 + [[0.0, 0.0]] * 10))
    assert switch(running, nudged, step).jump == pytest.approx(0.1, abs=1e-5)
    assert switch(running, nudged, step).start_offset == pytest.approx(1e-6), "its first point is the running plan's"
    assert measured.start_offset == measured.jump, "a new plan that departs at once starts with its jump"
