# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Real-time chunking in the running node: a converted GR1 episode's camera and instruction replayed on sim time
into nodes that differ only in `real_time_chunking`, each commanding a simulated robot that executes its
trajectories and reports its joint states (the loop closed, as on the robot: the recorded states would ignore
the commands, and a chunk of relative actions can only continue a plan near the state it starts from). The
commands are recorded and their chunk switches measured (evaluation/switches.py). Twice: the tiny model, whose
inference takes tens of ms, and a slower one (the tiny checkpoint with a DiT of 16 layers of width 512) whose
inference takes about 300 ms, six 50 ms steps, on this CPU with the node's one intra-op thread."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import yaml

from gr00t_npu_node.bag.dataset.convert import convert_dataset
from gr00t_npu_node.bag.dataset.episode import LeRobotDataset
from gr00t_npu_node.bag.dataset.layout import load_joint_layout, resolve_topic
from gr00t_npu_node.bag.evaluation.check import check_replay
from gr00t_npu_node.bag.evaluation.live import clock_slack_ns, replay_into_node
from gr00t_npu_node.bag.evaluation.trajectories import read_command_log, read_latencies
from gr00t_npu_node.model.config import preset
from gr00t_npu_node.tiny import write_tiny_checkpoint
from conftest import PACKAGE_ROOT
from sim_robot import SimulatedRobot

SECONDS = 6.0
HORIZON = 16
LATENCIES = ("tens of ms", "about 300 ms")
RATES = {"tens of ms": 0.5, "about 300 ms": 1.0}  # the tiny model at half speed: steps of 100 ms of wall time


def namespace(latency: str, rtc: bool) -> str:
    return f"rtc_{'on' if rtc else 'off'}_{'slow' if latency == 'about 300 ms' else 'fast'}"


@pytest.fixture(scope="module")
def episode_bag(shared_data, tmp_path_factory):
    layout = load_joint_layout()
    out = tmp_path_factory.mktemp("rtc_episode")
    return convert_dataset(shared_data / "gr1.PickNPlace", out, layout, episodes=[0], max_seconds=SECONDS)[0].path


@pytest.fixture(scope="module")
def robot_spec(shared_data) -> dict[str, dict[str, float]]:
    """The simulated robot's start (the episode's first state) and its joints' velocity limits (the config's)."""
    episode = LeRobotDataset.open(shared_data / "gr1.PickNPlace").episode(0, load_joint_layout())
    config = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())
    groups = config["/**"]["ros__parameters"]["joint_groups"]
    limited = [g for g in groups.values() if "velocity_max" in g]
    velocity_max = {joint: limit for g in limited for joint, limit in zip(g["joints"], g["velocity_max"])}
    return {"initial": dict(zip(episode.joint_names, episode.states[0])), "velocity_max": velocity_max}


@pytest.fixture(scope="module")
def nodes(shared_data, launch_gr00t_node, tiny_checkpoint, tmp_path_factory):
    tiny = preset("tiny")
    slow_dit = replace(tiny, hidden_size=512, input_embedding_dim=512, dit_num_layers=16, dit_num_attention_heads=16,
                       dit_attention_head_dim=32, dit_output_dim=512)
    checkpoints = {"tens of ms": tiny_checkpoint,
                   "about 300 ms": write_tiny_checkpoint(tmp_path_factory.mktemp("slow"), config=slow_dit)}
    processes = {
        (latency, rtc): launch_gr00t_node({"use_sim_time": True, "real_time_chunking": rtc},
                                          namespace=namespace(latency, rtc), model_path=checkpoints[latency])
        for latency in LATENCIES for rtc in (True, False)
    }
    yield processes
    for process in processes.values():
        process.stop()


def replay(nodes, latency: str, rtc: bool, bag, out, robot_spec: dict):
    """The replay's check, after the node's commands passed every check of check_replay, and its latencies."""
    layout, rate = replace(load_joint_layout(), real_time_chunking=rtc), RATES[latency]
    ns = namespace(latency, rtc)
    topics = {g: resolve_topic(t, ns) for g, t in layout.command_topics.items()}
    robot = SimulatedRobot(f"/{ns}", {g: layout.groups[g] for g in topics}, topics, **robot_spec)
    try:  # on the replayed clock: every node (/clock is global), the recorder and the robot
        robot.wait_connected(timeout_s=30.0)
        run = replay_into_node(bag, out, layout, namespace=ns, rate=rate, start_timeout=150.0,
                               joint_states_from_bag=False, clock_subscribers=len(nodes) + 2)
    finally:
        robot.close()
    nodes[latency, rtc].assert_running()
    # A replay at half speed leaves the node more frames behind where its timing is coarse: at the start, when
    # it notices that the clock went back (its watchdog runs every 50 ms of wall time), and at each inference.
    check = check_replay(read_command_log(run.recorded, run.command_topics), run.camera_stamps, layout,
                         horizon=HORIZON, clock_slack_ns=clock_slack_ns(rate), max_extra_frames=3 + round(2 * rate))
    assert check.problems == [], f"real_time_chunking {rtc}: " + "\n".join(check.problems) + "\n" + check.summary()
    return check, read_latencies(run.recorded, run.latency_topic)


@pytest.mark.parametrize("latency", LATENCIES)
def test_real_time_chunking_switches_at_least_three_times_smoother(nodes, episode_bag, robot_spec, tmp_path, latency):
    runs = {rtc: replay(nodes, latency, rtc, episode_bag, tmp_path / f"rtc_{rtc}", robot_spec) for rtc in (True, False)}
    checks = {rtc: check for rtc, (check, _) in runs.items()}
    jumps = {rtc: np.array([s.jump for switches in c.switches.values() for s in switches]) for rtc, c in checks.items()}
    assert min(len(j) for j in jumps.values()) >= 20, {rtc: len(j) for rtc, j in jumps.items()}
    with_rtc, without = float(np.median(jumps[True])), float(np.median(jumps[False]))
    node_latency = {rtc: float(np.median(latencies)) * RATES[latency] for rtc, (_, latencies) in runs.items()}
    print(f"\ninference latency {latency} (median of the replayed clock: with {node_latency[True]:.3f} s, without "
          f"{node_latency[False]:.3f} s): median switch jump {with_rtc:.4f} rad with real-time chunking, "
          f"{without:.4f} rad without; "
          + "; ".join(f"{'on' if rtc else 'off'} {c.summary()}" for rtc, c in checks.items()))
    assert with_rtc * 3 <= without, f"median switch jump {with_rtc:.4f} rad with, {without:.4f} rad without"
    for rtc, check in checks.items():
        for group, switches in check.switches.items():
            assert not any(s.gap for s in switches), f"real_time_chunking {rtc}: {group} ran out of chunk"
