# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The node's lifecycle in this process: a failing configure (bad checkpoint path, bad config) is reported on
/diagnostics and leaves the node up and unconfigured instead of crashing (a crash under a respawning launch is a
crash loop); deactivating or stopping it while an inference is in flight holds at once and drops that chunk; what
a configuration keeps alive is frozen out of the garbage collector's way until cleanup."""
from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String
from trajectory_msgs.msg import JointTrajectory

from conftest import PACKAGE_ROOT, wait_until, write_config
from gr00t_npu_node.ros.node import Gr00tNode, spin
from gr00t_npu_node.ros.params import SCALAR_DEFAULTS
from node_rig import GROUPS, LATCHED, healthy_positions

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")


@pytest.mark.parametrize(
    "name, overrides, complaint",
    [
        ("bad_model", ["model_path:=/nonexistent/checkpoint"], "model_path '/nonexistent/checkpoint' is not a folder"),
        ("bad_limits", ["joint_groups.waist.velocity_max:=[1.0, 2.0]"],
         "joint_groups.waist.velocity_max needs one number per joint"),
        ("bad_mode", ["initial_mode:=auto"], "initial_mode is 'auto'; use one of teleop, policy, hold"),
        # weight_dtype reaches Gr00tPolicy.from_pretrained, which names what it takes.
        ("bad_weights", ["weight_dtype:=int4"], "weight_dtype 'int4' is not supported: use 'int8'"),
    ],
)
def test_configure_failure_is_diagnosed_and_the_node_stays_up(ros_probe, name, overrides, complaint):
    namespace = f"/lifecycle_{name}"
    cli = ["--ros-args", "-r", f"__ns:={namespace}", "--params-file", str(PACKAGE_ROOT / "config" / "gr1.yaml"),
           "-p", "diagnostics_period:=0.1"]
    for override in overrides:
        cli += ["-p", override]
    diagnostics = ros_probe.collect(DiagnosticArray, "/diagnostics")
    node = Gr00tNode(context=ros_probe.context, cli_args=cli)
    try:
        node.autostart()
        ros_probe.executor.add_node(node)

        def reports_failure(array):
            return any(
                s.name == f"{namespace}/gr00t_node: policy" and s.level == DiagnosticStatus.ERROR
                and "configure failed" in s.message and complaint in s.message
                for s in array.status
            )

        diagnostics.wait_for(reports_failure)
        state = ros_probe.call(GetState, f"{namespace}/gr00t_node/get_state", GetState.Request())
        assert state.current_state.label == "unconfigured"
    finally:
        ros_probe.executor.remove_node(node)
        node.destroy_node()
        ros_probe.node.destroy_subscription(diagnostics.subscription)


def test_gr00t_node_help_lists_every_parameter_and_exits_0():
    script = Path(sys.executable).parent / "gr00t_node"
    for flag in ("--help", "-h"):
        result = subprocess.run([str(script), flag], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("usage: gr00t_node")
        for name, (default, _) in SCALAR_DEFAULTS.items():
            assert any(line.split()[:2] == [name, repr(default)] for line in lines), name


def test_misspelled_parameters_are_reported_with_the_closest_known_name(ros_probe, tmp_path):
    namespace = "/lifecycle_typos"
    config = write_config(tmp_path / "config.yaml", {"max_observaton_age": 0.5, "joint_groups.waist.velocity_maxx": 1})
    cli = ["--ros-args", "-r", f"__ns:={namespace}", "--params-file", str(config), "-p", "diagnostics_period:=0.1",
           "-p", "model_path:=/nonexistent", "-p", "dry_rn:=true"]
    diagnostics = ros_probe.collect(DiagnosticArray, "/diagnostics")
    node = Gr00tNode(context=ros_probe.context, cli_args=cli)
    try:
        node.autostart()
        ros_probe.executor.add_node(node)
        array = diagnostics.wait_for(lambda a: any("max_observaton_age" in s.message for s in a.status))
        (message,) = [s.message for s in array.status if "max_observaton_age" in s.message]
        for typo, meant in [("max_observaton_age", "max_observation_age"), ("dry_rn", "dry_run"),
                            ("joint_groups.waist.velocity_maxx", "joint_groups.waist.velocity_max")]:
            assert f"{typo} (did you mean {meant}?)" in message, message
    finally:
        ros_probe.executor.remove_node(node)
        node.destroy_node()
        ros_probe.node.destroy_subscription(diagnostics.subscription)


def test_what_a_configuration_keeps_alive_is_out_of_the_garbage_collectors_way_until_cleanup(
    ros_probe, tiny_checkpoint, tmp_path
):
    config = write_config(tmp_path / "config.yaml", {"model_path": str(tiny_checkpoint)})
    node = Gr00tNode(context=ros_probe.context, cli_args=["--ros-args", "-r", "__ns:=/frozen", "--params-file",
                                                          str(config)])
    try:
        gc.unfreeze()
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        policy = node._policy
        assert not any(o is policy for o in gc.get_objects()), "the policy is frozen, not scanned by every collection"
        assert gc.get_freeze_count() > 100_000, gc.get_freeze_count()
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert gc.get_freeze_count() == 0, "after cleanup the old configuration can be collected"
        assert any(o is policy for o in gc.get_objects())
    finally:
        node.destroy_node()


class BlockingPolicy:
    """The real policy, whose second `get_action` waits until the test lets it finish: an inference in flight
    while the first chunk runs (so the gate is commanding, not holding)."""

    def __init__(self, policy):
        self._policy = policy
        self._calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self._policy, name)

    def get_action(self, observation, **kwargs):
        self._calls += 1
        if self._calls == 2:
            self.entered.set()
            assert self.release.wait(60), "the test never released the inference"
        return self._policy.get_action(observation, **kwargs)


@pytest.mark.parametrize("stop_by", ["deactivate", "shutdown"])
def test_stopping_during_an_inference_holds_at_once_and_the_chunk_never_leaves(
    ros_probe, tiny_checkpoint, monkeypatch, tmp_path, stop_by
):
    import gr00t_npu_node.ros.node as node_module

    policies: list[BlockingPolicy] = []
    real_load = node_module.load_policy

    def load_blocking(params):
        policies.append(BlockingPolicy(real_load(params)))
        return policies[-1]

    monkeypatch.setattr(node_module, "load_policy", load_blocking)
    namespace = f"/inflight_{stop_by}"
    config = write_config(tmp_path / "config.yaml", {"model_path": str(tiny_checkpoint)})
    node = Gr00tNode(context=ros_probe.context, cli_args=["--ros-args", "-r", f"__ns:={namespace}", "--params-file",
                                                          str(config)])
    controllers = {
        g: ros_probe.collect(JointTrajectory, f"{namespace}/{spec['controller']}/joint_trajectory")
        for g, spec in GROUPS.items()
    }
    image_pub = ros_probe.publisher(Image, f"{namespace}/camera/image_raw", qos_profile_sensor_data)
    joint_pub = ros_probe.publisher(JointState, f"{namespace}/joint_states", qos_profile_sensor_data)
    ros_probe.publisher(String, f"{namespace}/instruction", LATCHED).publish(String(data="pick the pear"))
    positions = healthy_positions()
    stop_requested, feeding = threading.Event(), threading.Event()
    spinner = threading.Thread(target=spin, args=(node, stop_requested), daemon=True)

    def feed():
        pixels = bytes(256 * 256 * 3)
        while not feeding.wait(0.05):
            stamp = ros_probe.node.get_clock().now().to_msg()
            joint_pub.publish(JointState(header=Header(stamp=stamp), name=list(positions),
                                         position=list(positions.values())))
            image_pub.publish(Image(header=Header(stamp=stamp), height=256, width=256, encoding="rgb8", step=768,
                                    data=pixels))

    feeder = threading.Thread(target=feed, daemon=True)
    spinner.start()
    feeder.start()
    try:
        wait_until(lambda: policies and policies[0].entered.is_set(), 120, "the second inference to start")
        policy = policies[0]
        marks = {g: c.mark() for g, c in controllers.items()}
        assert all(any(len(m.points) > 1 for m in c.messages) for c in controllers.values()), "the first chunk ran"
        if stop_by == "deactivate":
            client = ros_probe.node.create_client(ChangeState, f"{namespace}/gr00t_node/change_state")
            assert client.wait_for_service(timeout_sec=20)
            reply = client.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
        else:
            stop_requested.set()
        holds = {g: c.wait_for(lambda m: len(m.points) == 1, since=marks[g], timeout=5.0)
                 for g, c in controllers.items()}
        assert not policy.release.is_set() and all(holds.values()), "the holds went out while inference ran"
        policy.release.set()
        if stop_by == "deactivate":
            wait_until(reply.done, 30, "the deactivation to finish")
            assert reply.result().success
        else:
            spinner.join(30)
            assert not spinner.is_alive()
        time.sleep(0.5)  # a chunk wrongly published after the hold would arrive within this
        for g, c in controllers.items():
            after_stop = c.messages[marks[g]:]
            assert all(len(m.points) == 1 for m in after_stop), f"{g}: the chunk in flight reached the controller"
    finally:
        for policy in policies:
            policy.release.set()
        feeding.set()
        feeder.join()
        stop_requested.set()
        spinner.join(30)
        node.destroy_node()
        for c in controllers.values():
            ros_probe.node.destroy_subscription(c.subscription)
