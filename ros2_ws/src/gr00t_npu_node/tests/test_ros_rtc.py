"""Real-time chunking in the running node: a converted GR1 episode's camera and instruction replayed on sim time
into two nodes that differ only in `real_time_chunking`, each commanding a simulated robot that executes its
trajectories and reports its joint states (the loop closed, as on the robot: the recorded states would ignore
the commands, and a chunk of relative actions can only continue a plan near the state it starts from). The
commands are recorded and their chunk switches measured (evaluation/switches.py). Also with an inference latency
of about 300 ms of the replayed clock (six 50 ms steps): the bag played as many times faster than real time as
300 ms is longer than the node's own median inference latency, measured by a first replay (the tiny model's
guided inference takes 40-150 ms on this CPU, depending on its load)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gr00t_npu_node.bag.dataset.convert import convert_dataset
from gr00t_npu_node.bag.dataset.episode import LeRobotDataset
from gr00t_npu_node.bag.dataset.layout import load_joint_layout, resolve_topic
from gr00t_npu_node.bag.evaluation.check import check_replay
from gr00t_npu_node.bag.evaluation.live import clock_slack_ns, replay_into_node
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log, read_latencies
from sim_robot import SimulatedRobot

SECONDS = 4.0
HORIZON = 16
NAMESPACES = {True: "rtc_on", False: "rtc_off"}
SLOW_LATENCY_S = 0.3  # of the replayed clock


@pytest.fixture(scope="module")
def episode_bag(shared_data, tmp_path_factory):
    layout = load_joint_layout()
    out = tmp_path_factory.mktemp("rtc_episode")
    return convert_dataset(shared_data / "gr1.PickNPlace", out, layout, episodes=[0], max_seconds=SECONDS)[0].path


@pytest.fixture(scope="module")
def first_state(shared_data) -> dict[str, float]:
    episode = LeRobotDataset.open(shared_data / "gr1.PickNPlace").episode(0, load_joint_layout())
    return dict(zip(episode.joint_names, episode.states[0]))


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


def replay(nodes, rtc: bool, bag, out, rate: float, first_state: dict[str, float]):
    """The replay's check, after the node's commands passed every check of check_replay."""
    layout = replace(load_joint_layout(), real_time_chunking=rtc)
    namespace = NAMESPACES[rtc]
    topics = {g: resolve_topic(t, namespace) for g, t in layout.command_topics.items()}
    robot = SimulatedRobot(f"/{namespace}", {g: layout.groups[g] for g in topics}, topics, first_state)
    try:  # on the replayed clock: both nodes (/clock is global), the recorder and the robot
        robot.wait_connected(timeout_s=30.0)
        run = replay_into_node(bag, out, layout, namespace=namespace, rate=rate, start_timeout=150.0,
                               joint_states_from_bag=False, clock_subscribers=len(nodes) + 2)
    finally:
        robot.close()
    nodes[rtc].assert_running()
    # A faster replay leaves the node more frames behind where its timing is coarse: at the start, when it
    # notices that the clock went back (its watchdog runs every 50 ms of wall time), and at each inference.
    check = check_replay(read_command_log(run.recorded, run.command_topics), run.camera_stamps, layout,
                         horizon=HORIZON, clock_slack_ns=clock_slack_ns(rate), max_extra_frames=3 + round(2 * rate))
    assert check.problems == [], f"real_time_chunking {rtc}: " + "\n".join(check.problems) + "\n" + check.summary()
    return check, read_latencies(run.recorded, run.latency_topic)


@pytest.fixture(scope="module")
def replays(nodes, episode_bag, first_state, tmp_path_factory):
    """Each replay's checks by (latency label, real_time_chunking): first at half speed, then as many times faster
    as makes the real-time-chunking node's median latency there about SLOW_LATENCY_S of the replayed clock."""
    out = tmp_path_factory.mktemp("rtc_replays")
    results, rates = {}, {"tens of ms": 0.5}
    for rtc in NAMESPACES:
        results["tens of ms", rtc], latencies = replay(nodes, rtc, episode_bag, out / f"fast_{rtc}", 0.5, first_state)
        if rtc:
            rates["about 300 ms"] = float(np.clip(SLOW_LATENCY_S / np.median(latencies), 1.0, 8.0))
    for rtc in NAMESPACES:
        rate = rates["about 300 ms"]
        results["about 300 ms", rtc], _ = replay(nodes, rtc, episode_bag, out / f"slow_{rtc}", rate, first_state)
    return results, rates


@pytest.mark.parametrize("latency", ["tens of ms", "about 300 ms"])
def test_real_time_chunking_switches_at_least_three_times_smoother(replays, latency):
    results, rates = replays
    checks = {rtc: results[latency, rtc] for rtc in NAMESPACES}
    jumps = {rtc: np.array([s.jump for switches in c.switches.values() for s in switches]) for rtc, c in checks.items()}
    assert min(len(j) for j in jumps.values()) >= 20, {rtc: len(j) for rtc, j in jumps.items()}
    with_rtc, without = float(np.median(jumps[True])), float(np.median(jumps[False]))
    print(f"\nlatency {latency} (replay rate {rates[latency]:.2f}): median switch jump {with_rtc:.4f} rad with "
          f"real-time chunking, {without:.4f} rad without; "
          + "; ".join(f"{'on' if rtc else 'off'} {c.summary()}" for rtc, c in checks.items()))
    assert with_rtc * 3 <= without, f"median switch jump {with_rtc:.4f} rad with, {without:.4f} rad without"
    for rtc, check in checks.items():
        for group, switches in check.switches.items():
            assert not any(s.gap for s in switches), f"real_time_chunking {rtc}: {group} ran out of chunk"
