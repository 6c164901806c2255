# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The safety gate: limits, NaN, authority (mode, e-stop, deadman, epoch), dry run, teleop forwarding and holds,
checked on what real subscribers receive (rclpy, loopback, private domain)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import rclpy
import yaml
from builtin_interfaces.msg import Duration
from rclpy.logging import get_logger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from conftest import PACKAGE_ROOT, wait_until
from gr00t_npu_node.ros.chunk_plan import PlannedChunk
from gr00t_npu_node.ros.inputs import MeasuredPositions
from gr00t_npu_node.ros.monitor import Monitor
from gr00t_npu_node.ros.params import JointGroup
from gr00t_npu_node.ros.limits import Limits, limit_trajectory
from gr00t_npu_node.ros.safety import COMMAND_QOS, CommandTiming, SafetyGate

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

STEP_S = 0.05
CONFIG = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())["/**"]["ros__parameters"]
_topic_prefix = itertools.count()


def make_groups(prefix: str) -> dict[str, JointGroup]:
    groups = {}
    for g in CONFIG["policy_groups"]:
        spec = CONFIG["joint_groups"][g]
        groups[g] = JointGroup(
            g, tuple(spec["joints"]), f"{prefix}/{spec['controller']}/joint_trajectory", f"{prefix}/teleop/{g}",
            *(np.array(spec[k], dtype=float) for k in ("position_min", "position_max", "velocity_max")),
        )
    return groups


def mid(group: JointGroup) -> np.ndarray:
    return (group.position_min + group.position_max) / 2


# ---- limit_trajectory (pure) ---------------------------------------------------------------------------------
def test_limits_clamp_positions_and_steps_and_count_them():
    group = make_groups("/x")["waist"]  # position [-1, 1], [-0.5, 1.2], [-0.7, 0.7]; velocity_max 2.0
    limits = Limits.of([group])
    reference = np.array([0.0, 0.0, 0.0])
    times = np.array([0.05, 0.10, 0.15])
    wanted = np.array([[0.05, 5.0, 0.0], [0.10, 5.0, -0.69], [0.15, 5.0, -0.69]])
    result = limit_trajectory(limits, reference, times, wanted)
    # joint 1 is clamped to 1.2 three times, then rate-limited to 0.1 per 0.05 s step; joint 2 rate-limited twice
    np.testing.assert_allclose(result.positions[:, 1], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(result.positions[:, 2], [0.0, -0.1, -0.2])
    np.testing.assert_allclose(result.positions[:, 0], wanted[:, 0])
    assert result.position_clamps == 3
    assert result.velocity_clamps == 5
    # central differences from the reference, the last point at rest
    np.testing.assert_allclose(result.velocities[0], (result.positions[1] - reference) / 0.10)
    np.testing.assert_allclose(result.velocities[1], (result.positions[2] - result.positions[0]) / 0.10)
    np.testing.assert_array_equal(result.velocities[2], 0.0)
    assert np.all(np.abs(result.velocities) <= group.velocity_max + 1e-12)


def test_a_joint_measured_outside_its_limits_comes_back_no_faster_than_its_velocity_limit():
    limits = Limits.of([make_groups("/x")["waist"]])  # waist_yaw limits [-1, 1], velocity 2.0
    reference = np.array([1.5, 0.0, 0.0])
    times = np.array([0.05, 0.10, 0.15])
    wanted = np.array([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [3.0, 0.0, 0.0]])
    result = limit_trajectory(limits, reference, times, wanted)
    # back towards the range at 2 rad/s; a target further out leaves it where it is (never further out)
    np.testing.assert_allclose(result.positions[:, 0], [1.4, 1.3, 1.3])
    assert np.all(np.abs(result.velocities) <= 2.0 + 1e-12)
    held = limit_trajectory(limits, reference, np.array([0.05]), reference[None, :].copy())
    assert held.positions[0, 0] == 1.5, "asked to stay, it stays: pulling it in at once would break the velocity limit"


def test_the_first_point_is_within_reach_of_the_measurement_and_of_the_running_command():
    limits = Limits.of([make_groups("/x")["waist"]])  # velocity 2.0: 0.1 rad in the first 0.05 s
    measured = np.zeros(3)
    commanded = np.array([0.05, -0.05, 1.0])  # the controller ahead of the lagging measurement; joint 2 far off
    wanted = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    result = limit_trajectory(limits, measured, np.array([0.05, 0.10]), wanted, commanded=commanded)
    # joints 0 and 1: within 0.1 of both; joint 2: the reaches do not overlap, the measurement alone bounds it
    np.testing.assert_allclose(result.positions[0], [0.1, 0.05, 0.1])
    np.testing.assert_allclose(result.positions[1], [0.2, 0.15, 0.2])
    alone = limit_trajectory(limits, measured, np.array([0.05, 0.10]), -wanted, commanded=commanded)
    np.testing.assert_allclose(alone.positions[0], [-0.05, -0.1, -0.1])


@pytest.mark.parametrize("times", [[0.0, 0.05], [-0.5, 0.05], [0.05, 0.05], [0.1, 0.05]])
def test_point_times_that_are_not_ahead_and_increasing_are_refused(times):
    limits = Limits.of([make_groups("/x")["waist"]])
    with pytest.raises(ValueError, match="positive and strictly increasing"):
        limit_trajectory(limits, np.zeros(3), np.array(times), np.zeros((2, 3)))


def test_given_velocities_are_clamped_not_recomputed():
    limits = Limits.of([make_groups("/x")["waist"]])
    result = limit_trajectory(limits, np.zeros(3), np.array([0.5]), np.zeros((1, 3)), np.array([[9.0, -1.0, 0.5]]))
    np.testing.assert_allclose(result.velocities, [[2.0, -1.0, 0.5]])
    assert result.velocity_clamps == 1


# ---- the gate over real topics ----------------------------------------------------------------------------------
class GateRig:
    def __init__(self, probe, *, dry_run: bool = False, prefix: str | None = None):
        self.prefix = prefix or f"/safety_{next(_topic_prefix)}"
        self.groups = make_groups(self.prefix)
        self.node = rclpy.create_node(f"gate_{self.prefix.strip('/')}_{int(dry_run)}", context=probe.context)
        self.monitor = Monitor(get_logger("test_gate"))
        self.measured = MeasuredPositions({g: mid(grp) for g, grp in self.groups.items()}, probe.now_ns())
        self.gate = SafetyGate(
            self.node, self.groups, timing=CommandTiming(STEP_S, 0.1, 0.5, 1000), dry_run=dry_run,
            measured=lambda: self.measured, now_ns=probe.now_ns, monitor=self.monitor,
        )
        self.probe = probe
        self.received = {g: probe.collect(JointTrajectory, grp.topic, COMMAND_QOS) for g, grp in self.groups.items()}

    def wait_matched(self):
        wait_until(lambda: not self.gate.unsubscribed_controllers(), 20, f"subscribers on {self.prefix}")

    def plan(self, positions: dict[str, np.ndarray] | None = None, points: int = 16) -> PlannedChunk:
        """A chunk starting now, `positions` by group (default: a slow ramp from the middle of each range)."""
        now = self.probe.now_ns()
        if positions is None:
            ramp = np.linspace(0.0, 0.02, points)[:, None]
            positions = {g: mid(grp)[None, :] + ramp for g, grp in self.groups.items()}
        joined = np.concatenate([positions[g] for g in self.groups], axis=1)
        return PlannedChunk(now, STEP_S, 0, joined, np.concatenate([self.measured.positions[g] for g in self.groups]))

    def fault(self, source: str) -> str:
        return self.monitor.status("test", "test", (source,), {}).message

    def close(self):
        self.gate.close(self.node)
        self.node.destroy_node()


@pytest.fixture
def gate_rig(ros_probe):
    rig = GateRig(ros_probe)
    rig.gate.activate("policy")
    rig.wait_matched()
    yield rig
    rig.close()


def test_policy_chunk_reaches_every_group_with_limits(gate_rig):
    rig = gate_rig
    positions = {g: mid(grp)[None, :] + np.linspace(0, 0.02, 16)[:, None] for g, grp in rig.groups.items()}
    positions["left_arm"][5:, 6] = 50.0  # a wrist pitch target far beyond its limit
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan(positions))
    for g, group in rig.groups.items():
        msg = rig.received[g].wait_for()
        assert list(msg.joint_names) == list(group.joints) and len(msg.points) == 16
        q = np.array([p.positions for p in msg.points])
        assert np.all(q <= group.position_max + 1e-12) and np.all(q >= group.position_min - 1e-12)
        steps = np.abs(np.diff(np.concatenate([mid(group)[None], q]), axis=0))
        assert np.all(steps <= group.velocity_max * STEP_S + 1e-9)
    assert rig.monitor.counters["position_clamps"] == 11
    assert rig.monitor.counters["chunks_published"] == 1


def test_nan_chunk_is_dropped_and_counted(gate_rig):
    rig = gate_rig
    positions = {g: np.tile(mid(grp), (16, 1)) for g, grp in rig.groups.items()}
    positions["waist"][3, 1] = np.nan
    assert not rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan(positions))
    good = rig.plan()
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), good)
    for g in rig.groups:
        first = rig.received[g].wait_for()
        assert first.header.stamp.sec * 10**9 + first.header.stamp.nanosec == good.start_ns, "the NaN chunk never left"
    assert rig.monitor.counters["dropped_chunks"] == 1
    assert "NaN" in rig.fault("policy")


def test_chunk_computed_before_an_interruption_is_discarded(gate_rig):
    rig = gate_rig
    epoch = rig.gate.policy_epoch()
    assert rig.gate.set_mode("hold")[0]
    assert rig.gate.set_mode("policy")[0]
    assert not rig.gate.publish_policy_chunk(epoch, rig.plan()), "an epoch from before the hold is stale"
    hold = rig.received["left_arm"].wait_for()
    assert len(hold.points) == 1
    np.testing.assert_allclose(hold.points[0].positions, mid(rig.groups["left_arm"]))
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan())
    assert len(rig.received["left_arm"].wait_for(lambda m: len(m.points) > 1).points) == 16
    assert rig.monitor.counters["superseded_chunks"] == 1


def test_hold_is_sent_once_until_something_else_is_commanded(gate_rig):
    rig = gate_rig
    assert rig.gate.hold("test") and rig.gate.hold("test again")
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan())
    assert rig.gate.hold("after the chunk")
    rig.received["waist"].wait_for(lambda m: len(m.points) == 1, since=2)
    sizes = [len(m.points) for m in rig.received["waist"].messages]
    assert sizes == [1, 16, 1]
    assert rig.monitor.counters["holds"] == 2


def test_estop_latches_and_only_holds_pass(gate_rig):
    rig = gate_rig
    rig.gate.set_estop(True, "test")
    assert rig.gate.mode == "hold" and rig.gate.policy_epoch() is None
    assert rig.gate.set_mode("policy") == (False, "e-stop is latched: release it and call ~/resume first")
    assert rig.gate.set_mode("teleop")[0] is False
    assert rig.gate.resume()[0] is False, "the signal is still true"
    rig.gate.set_estop(False, "released")
    assert rig.gate.set_mode("policy")[0] is False, "release alone does not resume"
    ok, message = rig.gate.resume()
    assert ok and rig.gate.mode == "hold", message
    assert rig.gate.set_mode("policy")[0]
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan())
    rig.received["right_hand"].wait_for(lambda m: len(m.points) == 16)
    assert [len(m.points) for m in rig.received["right_hand"].messages] == [1, 16], "only the e-stop hold before"


def test_policy_enable_deadman(gate_rig):
    rig = gate_rig
    rig.gate.set_policy_enabled(False, "deadman released")
    assert rig.gate.policy_epoch() is None
    assert len(rig.received["left_hand"].wait_for().points) == 1
    rig.gate.set_policy_enabled(True, "pressed")
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan())


def test_teleop_forwarding_reorders_limits_and_rejects(gate_rig):
    rig = gate_rig
    group = rig.groups["left_arm"]
    names = list(group.joints)[::-1]
    target = mid(group) + 0.01
    target[6] = 9.0  # beyond the wrist pitch limit 0.7
    msg = JointTrajectory(joint_names=names, points=[
        JointTrajectoryPoint(positions=list(target[::-1]), time_from_start=Duration(sec=2))
    ])
    assert not rig.gate.forward_teleop("left_arm", msg), "not in teleop mode"
    assert rig.gate.set_mode("teleop")[0]
    assert rig.gate.forward_teleop("left_arm", msg)
    forwarded = rig.received["left_arm"].wait_for(lambda m: m.points[0].time_from_start.sec == 2)
    assert list(forwarded.joint_names) == list(group.joints)
    expected = target.copy()
    expected[6] = 0.7
    np.testing.assert_allclose(forwarded.points[0].positions, expected)

    one_second = Duration(sec=1)
    wrong = JointTrajectory(
        joint_names=names[:-1], points=[JointTrajectoryPoint(positions=[0.0] * 6, time_from_start=one_second)]
    )
    assert not rig.gate.forward_teleop("left_arm", wrong)
    assert "missing" in rig.fault("teleop")
    nan = JointTrajectory(
        joint_names=names, points=[JointTrajectoryPoint(positions=[np.nan] * 7, time_from_start=one_second)]
    )
    assert not rig.gate.forward_teleop("left_arm", nan)
    assert rig.monitor.counters["rejected_teleop"] == 2


def test_dry_run_commands_no_controller(ros_probe):
    dry = GateRig(ros_probe, dry_run=True)
    live = GateRig(ros_probe, prefix=dry.prefix)  # same controller topics: the first message seen must be live's
    try:
        for rig in (dry, live):
            rig.gate.activate("policy")
        live.wait_matched()
        assert dry.gate.publish_policy_chunk(dry.gate.policy_epoch(), dry.plan())
        assert dry.gate.hold("dry hold") is True
        marker = live.plan(points=3)
        assert live.gate.publish_policy_chunk(live.gate.policy_epoch(), marker)
        first = live.received["waist"].wait_for()
        assert len(first.points) == 3, "nothing from the dry-run gate reached the controller"
        assert dry.monitor.counters["dry_run_suppressed"] == 10
    finally:
        dry.close()
        live.close()


def test_a_deactivated_gate_sends_nothing(gate_rig):
    rig = gate_rig
    rig.gate.deactivate()  # holds once on the way out
    assert rig.gate.policy_epoch() is None
    assert not rig.gate.hold("inactive")
    rig.gate.activate("policy")
    assert rig.gate.publish_policy_chunk(rig.gate.policy_epoch(), rig.plan())
    rig.received["waist"].wait_for(lambda m: len(m.points) == 16)
    assert [len(m.points) for m in rig.received["waist"].messages] == [1, 16]
