# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""gr00t_node end to end over real rclpy (loopback, private domain): one node process for the module, started
through the launch runner with the tiny checkpoint at one step per second (the tiny model, 0.1-0.5 s, finishes
well within a step, so no step is skipped), fed by the rig's robot. Every controller message is checked by the
rig's invariant checker; the faults themselves are the fault campaign's (test_ros_fault_campaign.py)."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64, Header
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from node_rig import GROUPS, HAND_JOINTS, IMAGE, NodeRig, is_policy

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

NS = "/gr00t_test"
RATE_HZ = 1.0
STEP_NS = int(1e9 / RATE_HZ)
HANDOVER_STEPS = 4
OVERRIDES = {
    "action_rate_hz": RATE_HZ,
    "execute_steps": 1,
    "handover_steps": HANDOVER_STEPS,
    "teleop_timeout": 0.3,
    "diagnostics_period": 0.2,
}


@pytest.fixture(scope="module")
def node(ros_probe, launch_gr00t_node, tiny_checkpoint):
    rig = NodeRig(ros_probe, launch_gr00t_node(OVERRIDES, namespace=NS.strip("/"), model_path=tiny_checkpoint), NS,
                  step_s=1.0 / RATE_HZ, joint_hz=20.0, camera_hz=20.0)
    rig.chunk = ros_probe.collect(Float32MultiArray, f"{rig.node_name}/action_chunk", 10)
    rig.latency = ros_probe.collect(Float64, f"{rig.node_name}/inference_latency", 10)
    rig.overhead = ros_probe.collect(Float64, f"{rig.node_name}/node_overhead", 10)
    try:
        rig.start()
        yield rig
    finally:
        for collector in (rig.chunk, rig.latency, rig.overhead):
            ros_probe.node.destroy_subscription(collector.subscription)
        assert rig.close() == 0, rig.process.log()[-4000:]


@pytest.fixture
def rig(node):
    """Each test starts in policy mode with clean inputs and a flowing chunk stream, and ends without a single
    controller message breaking an invariant."""
    before = len(node.checker.violations)
    node.healthy()
    yield node
    node.process.assert_running()
    node.assert_no_violations(before)


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_observation_in_five_timed_trajectories_out(rig):
    chunk_mark = rig.chunk.mark()
    chunk = rig.policy_chunk()
    assert len({stamp_ns(m) for m in chunk.values()}) == 1, "all groups of one chunk share the planned start"
    assert stamp_ns(chunk["left_arm"]) in set(rig.feeder.image_stamps), "with no step due yet, the image's stamp"
    for msg in chunk.values():
        assert len(msg.points) == 16
        times = [p.time_from_start.sec * 1_000_000_000 + p.time_from_start.nanosec for p in msg.points]
        assert times == [(i + 1) * STEP_NS for i in range(16)]
        q = np.array([p.positions for p in msg.points])
        v = np.array([p.velocities for p in msg.points])
        central = (q[2:] - q[:-2]) / (2 * STEP_NS * 1e-9)
        np.testing.assert_allclose(v[1:-1], central, atol=1e-9, err_msg="central differences")
        assert np.all(v[-1] == 0), "the chunk ends at rest"
    monitor = rig.chunk.wait_for(since=chunk_mark)
    assert [(d.label, d.size) for d in monitor.layout.dim] == [("step", 16), ("joint", 29)]
    assert len(monitor.data) == 16 * 29 and np.all(np.isfinite(monitor.data))
    assert rig.latency.wait_for(lambda m: m.data > 0).data < 30
    assert 0 < rig.overhead.wait_for().data < 1.0
    rig.diagnostic(lambda text: "node_overhead_p50_ms=" in text and "node_overhead_p50_ms=n/a" not in text)


def test_switch_to_policy_is_bumpless_and_maps_joints_by_name(rig):
    assert rig.enter("hold")
    since = rig.marks()
    assert rig.enter("policy")
    for g, msg in rig.policy_chunk(since).items():
        np.testing.assert_allclose(msg.points[0].positions, rig.feeder.measured(g), atol=1e-6, err_msg=g)


def test_teleop_forwarding_timeout_and_handback(rig):
    since = rig.marks()
    assert rig.enter("teleop")
    for g, msg in rig.holds(since).items():
        np.testing.assert_allclose(msg.points[0].positions, rig.feeder.measured(g), atol=1e-6)
    rig.mode_topic.wait_for(lambda m: m.data == "teleop")

    # Teleop for the left arm, joints in reverse order; the node reorders to the controller's joint order.
    joints = GROUPS["left_arm"]["joints"]
    target = rig.feeder.measured("left_arm") + 0.05
    teleop = JointTrajectory(joint_names=joints[::-1], points=[
        JointTrajectoryPoint(positions=list(target[::-1]), time_from_start=Duration(nanosec=200_000_000))
    ])
    since = rig.marks()
    rig.teleop["left_arm"].publish(teleop)
    forwarded, _ = rig.controllers["left_arm"].wait_for(
        lambda m: m.points[0].time_from_start.nanosec == 200_000_000, since["left_arm"], 10.0
    )
    assert stamp_ns(forwarded) == 0, "forwarded to start on receipt"
    np.testing.assert_allclose(forwarded.points[0].positions, target, atol=1e-9)
    # Silence: after teleop_timeout the left arm holds at the measured position.
    hold = rig.holds(since, groups=["left_arm"])["left_arm"]
    np.testing.assert_allclose(hold.points[0].positions, rig.feeder.measured("left_arm"), atol=1e-6)
    rig.diagnostic(lambda text: "teleop" in text and "silent" in text)

    since = rig.marks()
    assert rig.enter("policy")
    chunk = rig.policy_chunk(since)
    np.testing.assert_allclose(chunk["left_arm"].points[0].positions, rig.feeder.measured("left_arm"), atol=1e-6)

    since = rig.marks()
    assert rig.enter("teleop")
    first_after = {g: c.wait_for(lambda m: True, since[g], 10.0)[0] for g, c in rig.controllers.items()}
    assert all(rig.held(m) for m in first_after.values()), "switching to teleop stops the policy at once"


def test_estop_latches_until_resume(rig):
    since = rig.marks()
    rig.estop()
    rig.mode_topic.wait_for(lambda m: m.data == "hold")
    rig.diagnostic(lambda text: "estop" in text and "engaged" in text)
    assert not rig.enter("policy"), "no policy while the e-stop is engaged"
    rig.estop_pubs["latched"].publish(Bool(data=False))
    assert not rig.enter("policy"), "releasing the e-stop alone does not resume"
    diag_mark = rig.diagnostics.mark()
    rig.diagnostic(lambda text: "safety" in text and "mode=hold" in text and "estop=True" in text, since=diag_mark)
    reply = rig.call(Trigger, "resume", Trigger.Request())
    assert reply.success, reply.message
    rig.checker.estop_resumed()
    rig.mode_topic.wait_for(lambda m: m.data == "hold")
    rig.no_policy_after_hold(since)
    since = rig.marks()
    assert rig.enter("policy")
    chunk = rig.policy_chunk(since)
    np.testing.assert_allclose(chunk["waist"].points[0].positions, rig.feeder.measured("waist"), atol=1e-6)


def test_frame_of_another_size_is_used_and_reported(rig):
    def narrower(msg):
        msg.width, msg.step = IMAGE // 2, IMAGE * 3 // 2
        msg.data = bytes(msg.data)[: IMAGE * IMAGE * 3 // 2]
        return msg

    diag_mark = rig.diagnostics.mark()
    rig.feeder.image_hook = narrower
    text = rig.diagnostic(lambda t: "128x256" in t and "warmed up for 256x256" in t, since=diag_mark)
    assert "[1]" in text and "unexpected_size_images=0" not in text, text
    rig.policy_chunk()
    rig.feeder.image_hook = None
    diag_mark = rig.diagnostics.mark()
    rig.diagnostic(lambda t: ": inputs" in t and "warmed up" not in t, since=diag_mark)


def split_by_driver(hands: bool = True):
    """Like separate arm and hand drivers: one message without the hands and (`hands`) one with only them."""
    def split(msg):
        pairs = list(zip(msg.name, msg.position))
        parts = [[(n, q) for n, q in pairs if (n in HAND_JOINTS) == is_hand] for is_hand in (False, True)]
        messages = [JointState(header=Header(stamp=msg.header.stamp), name=[n for n, _ in p],
                               position=[q for _, q in p]) for p in parts]
        return messages if hands else messages[:1]

    return split


def test_joint_states_split_across_publishers_are_merged_and_a_silent_one_holds(rig):
    rig.feeder.joint_hook = split_by_driver()
    chunk = rig.policy_chunk(rig.marks())
    assert all(is_policy(m) for m in chunk.values())
    since = rig.marks()
    diag_mark = rig.diagnostics.mark()
    rig.feeder.joint_hook = split_by_driver(hands=False)
    text = rig.diagnostic(lambda t: "not updated within max_observation_age" in t, since=diag_mark)
    assert HAND_JOINTS[0] in text and "left_shoulder_pitch_joint" not in text, text
    rig.holds(since)
    rig.no_policy_after_hold(since)
    rig.feeder.joint_hook = None
    rig.policy_chunk(rig.marks())
