"""Real-time chunking in the running node: a converted GR1 episode replayed on sim time into two nodes that differ
only in `real_time_chunking`, the commands they sent recorded and their chunk switches measured
(evaluation/switches.py). Also with an inference latency of about 300 ms: the bag played eight times faster, the
tiny model's inference (30-50 ms on this CPU) spans about six 50 ms steps of the replayed clock."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gr00t_npu_node.bag.dataset.convert import convert_dataset
from gr00t_npu_node.bag.dataset.layout import load_joint_layout
from gr00t_npu_node.bag.evaluation.check import check_replay
from gr00t_npu_node.bag.evaluation.live import clock_slack_ns, replay_into_node
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log

SECONDS = 4.0
HORIZON = 16
NAMESPACES = {True: "rtc_on", False: "rtc_off"}


@pytest.fixture(scope="module")
def episode_bag(shared_data, tmp_path_factory):
    layout = load_joint_layout()
    out = tmp_path_factory.mktemp("rtc_episode")
    return convert_dataset(shared_data / "gr1.PickNPlace", out, layout, episodes=[0], max_seconds=SECONDS)[0].path


@pytest.fixture(scope="module")
def nodes(shared_data, launch_gr00t_node, tiny_checkpoint):
    processes = {
        rtc: launch_gr00t_node({"use_sim_time": True, "real_time_chunking": rtc}, namespace=ns,
                               model_path=tiny_checkpoint)
        for rtc, ns in NAMESPACES.items()
    }
    yield processes
    for process in processes.values():
        process.stop()


def replay(nodes, rtc: bool, bag, out, rate: float):
    layout = replace(load_joint_layout(), real_time_chunking=rtc)
    run = replay_into_node(bag, out, layout, namespace=NAMESPACES[rtc], rate=rate, start_timeout=150.0)
    nodes[rtc].assert_running()
    check = check_replay(read_command_log(run.recorded, run.command_topics), run.camera_stamps, layout,
                         horizon=HORIZON, clock_slack_ns=clock_slack_ns(rate))
    assert check.problems == [], f"real_time_chunking {rtc}: " + "\n".join(check.problems) + "\n" + check.summary()
    return check


@pytest.mark.parametrize("rate", [0.5, 8.0], ids=["tens of ms", "about 300 ms"])
def test_real_time_chunking_switches_at_least_three_times_smoother(nodes, episode_bag, tmp_path, rate):
    checks = {rtc: replay(nodes, rtc, episode_bag, tmp_path / f"rtc_{rtc}", rate) for rtc in NAMESPACES}
    jumps = {rtc: np.array([s.jump for switches in c.switches.values() for s in switches]) for rtc, c in checks.items()}
    assert min(len(j) for j in jumps.values()) >= 20, {rtc: len(j) for rtc, j in jumps.items()}
    with_rtc, without = float(np.median(jumps[True])), float(np.median(jumps[False]))
    print(f"\nrate {rate}: median switch jump {with_rtc:.4f} rad with real-time chunking, {without:.4f} rad without; "
          + "; ".join(f"{'on' if rtc else 'off'} {c.summary()}" for rtc, c in checks.items()))
    assert with_rtc * 3 <= without, f"median switch jump {with_rtc:.4f} rad with, {without:.4f} rad without"
    for rtc, check in checks.items():
        for group, switches in check.switches.items():
            assert not any(s.gap for s in switches), f"real_time_chunking {rtc}: {group} ran out of chunk"
