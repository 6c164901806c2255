# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The command-line replay regression workflow of the README, against a running gr00t_node (tiny model, sim time):
`gr00t-npu-bag record --use-sim-time -o OUT <command topics>` -> `play BAG --clock 200 --wait-for <inputs> /clock:2`
-> `check OUT BAG`, ten times in a row into the same node. Play starts only once the node and the recorder are
both on /clock (the recorder subscribes to it last), so the recorder never misses the node's first chunk nor
stamps a message without the replayed clock; `check` passes every time."""
from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory

from conftest import wait_until
from gr00t_npu_node.bag.cli import main
from gr00t_npu_node.bag.dataset.convert import write_episode_bag
from gr00t_npu_node.bag.dataset.layout import Topics, load_joint_layout
from gr00t_npu_node.bag.evaluation.live import NODE_NAME, replayed_camera_stamps
from gr00t_npu_node.bag.dataset.synth import SYNTH_EPISODE_INDEX, synthetic_episode
from gr00t_npu_node.ros.messages import to_ns

NAMESPACE = "bag_cli"
BAG_CLI = Path(sys.executable).with_name("gr00t-npu-bag")
RUNS = 10
SECONDS = 0.8
# Half speed, as in test_bag_e2e: the tiny model's latency and a busy machine's scheduling stay well inside a step
# of bag time, so the node's cadence, not the machine, decides when chunks start.
RATE = "0.5"


@pytest.fixture(scope="module")
def gr00t_node(launch_gr00t_node, tiny_checkpoint):
    process = launch_gr00t_node({"use_sim_time": True}, namespace=NAMESPACE, model_path=tiny_checkpoint)
    yield process
    process.stop()


def test_record_play_check_from_the_command_line_passes_ten_times_in_a_row(tmp_path, gr00t_node, ros_isolation,
                                                                           ros_probe, capsys):
    layout = load_joint_layout()
    topics = Topics()
    inputs = [topics.camera, topics.joint_states, topics.instruction]
    command_topics = list(layout.resolved_command_topics(NAMESPACE).values())
    step_ns = round(1e9 / layout.action_rate_hz)
    commanded = {t: ros_probe.collect(JointTrajectory, t, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
                 for t in command_topics}
    episode = synthetic_episode(layout, seconds=SECONDS)
    for run in range(RUNS):
        # Each bag in a later slot of the bag time base: the node's sim time jumps ahead from one replay to the next.
        bag = write_episode_bag(dataclasses.replace(episode, index=SYNTH_EPISODE_INDEX + 1 + run),
                                tmp_path / f"replayed_{run}").path
        _, last_input_ns = replayed_camera_stamps(bag, topics)
        recorded = tmp_path / f"commands_{run}"
        marks = {t: c.mark() for t, c in commanded.items()}
        recorder = subprocess.Popen([str(BAG_CLI), "record", "--use-sim-time", "-o", str(recorded), *command_topics,
                                     f"/{NAMESPACE}/{NODE_NAME}/inference_latency"],
                                    env=ros_isolation, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            play = subprocess.run([str(BAG_CLI), "play", str(bag), "--clock", "200", "--rate", RATE,
                                   "--topics", *inputs, "--remap", *[f"{t}:=/{NAMESPACE}{t}" for t in inputs],
                                   "--wait-for", *inputs, "/clock:2", "--wait-timeout", "150"],
                                  env=ros_isolation, capture_output=True, text=True, timeout=300)
            assert play.returncode == 0, play.stdout + play.stderr
            # Stop recording once the node's last chunk of this bag is out: no later inference can start.
            wait_until(lambda: all(any(to_ns(m.header.stamp) + layout.execute_steps * step_ns > last_input_ns
                                       for m in c.messages[marks[t]:]) for t, c in commanded.items()),
                       30, f"run {run}: the node's last chunk")
        finally:
            recorder.send_signal(signal.SIGINT)
            recording, _ = recorder.communicate(timeout=60)
        assert recorder.returncode == 0 and "written at time 0" not in recording, recording
        # check only reads the two bags: the command's own code, without a process of its own.
        status = main(["check", str(recorded), str(bag), "--namespace", NAMESPACE, "--rate", RATE])
        checked = capsys.readouterr()
        assert status == 0 and "all checks passed" in checked.out, (
            f"run {run}:\n{play.stdout}{recording}{checked.out}{checked.err}{gr00t_node.log()[-3000:]}")
    gr00t_node.assert_running()
