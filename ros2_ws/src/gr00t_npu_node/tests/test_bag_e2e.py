# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The replay regression test: a converted GR1 episode replayed into the running gr00t_node (tiny model, sim time
from the bag's /clock), its commanded trajectories recorded to a bag, and the recorded bag checked: number of
chunks for the episode length and cadence, joint names, monotonic stamps, position limits, chunk timing against
the replayed clock; then the same recording scored against the episode's recorded actions."""
from __future__ import annotations

import pytest

from gr00t_npu_node.bag.evaluation.check import check_replay
from gr00t_npu_node.bag.dataset.convert import convert_dataset
from gr00t_npu_node.bag.dataset.episode import LeRobotDataset
from gr00t_npu_node.bag.evaluation.evaluate import score_live_run
from gr00t_npu_node.bag.dataset.layout import load_joint_layout
from gr00t_npu_node.bag.evaluation.live import clock_slack_ns, replay_into_node
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log, read_latencies

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

NAMESPACE = "bag_e2e"
SECONDS = 3.0
# Half speed: the tiny model's CPU latency (tens of ms, more when the machine is busy) stays under a 50 ms step
# of bag time, so the node's cadence, not its latency, decides when chunks start.
RATE = 0.5
HORIZON = 16


@pytest.fixture(scope="module")
def gr00t_node(shared_data, launch_gr00t_node, tiny_checkpoint):
    process = launch_gr00t_node({"use_sim_time": True}, namespace=NAMESPACE, model_path=tiny_checkpoint)
    yield process
    process.stop()


def test_replayed_episode_commands_follow_the_cadence_limits_and_clock(tmp_path, shared_data, gr00t_node):
    layout = load_joint_layout()
    dataset = shared_data / "gr1.PickNPlace"
    bag = convert_dataset(dataset, tmp_path / "replayed", layout, episodes=[0], max_seconds=SECONDS)[0].path
    run = replay_into_node(bag, tmp_path / "commands", layout, namespace=NAMESPACE, rate=RATE, start_timeout=150.0)
    gr00t_node.assert_running()

    log = read_command_log(run.recorded, run.command_topics)
    check = check_replay(log, run.camera_stamps, layout, horizon=HORIZON, clock_slack_ns=clock_slack_ns(RATE))
    assert check.problems == [], check.summary() + "\n" + "\n".join(check.problems) + "\n" + gr00t_node.log()[-3000:]
    assert check.frames == 61 and check.chunks >= 5
    assert all(count == 0 for count in check.holds.values()), check.holds
    assert len(read_latencies(run.recorded, run.latency_topic)) >= check.chunks

    episode = LeRobotDataset.open(dataset).episode(0, layout).head(SECONDS)
    report = score_live_run(run, episode, layout, horizon=HORIZON, wall_seconds=0.0)
    assert report.chunks == check.chunks and report.mode == "live"
    assert all(value is not None for value in report.mae_by_group.values())


def test_replaying_the_same_episode_twice_into_one_node_gives_the_same_chunks(tmp_path, shared_data, gr00t_node):
    """The second replay starts the node's sim clock over: the node restarts its timeline instead of waiting for
    a chunk due at the first replay's time."""
    layout = load_joint_layout()
    bag = convert_dataset(shared_data / "gr1.PickNPlace", tmp_path / "replayed", layout, episodes=[0],
                          max_seconds=SECONDS)[0].path
    chunks = []
    for replay in range(2):
        run = replay_into_node(bag, tmp_path / f"commands_{replay}", layout, namespace=NAMESPACE, rate=RATE,
                               start_timeout=150.0)
        check = check_replay(read_command_log(run.recorded, run.command_topics), run.camera_stamps, layout,
                             horizon=HORIZON, clock_slack_ns=clock_slack_ns(RATE))
        assert check.problems == [], f"replay {replay}: " + "\n".join(check.problems) + gr00t_node.log()[-6000:]
        chunks.append(check.chunks)
    assert min(chunks) >= 5 and abs(chunks[0] - chunks[1]) <= 1, chunks
    assert "the clock went back" in gr00t_node.log()
