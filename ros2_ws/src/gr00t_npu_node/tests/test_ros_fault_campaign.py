# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Adversarial fault campaign: gr00t_node as users run it (launch runner, tiny model, real rclpy over loopback in a
private domain) under a healthy stream (camera 25 Hz, full joint states 100 Hz, a latched instruction), with one
injected fault per scenario. Every message any controller receives during the whole module goes through
`InvariantChecker` (tests/invariants.py); each scenario also asserts what the node must do (hold, keep
commanding, diagnose) and every bad-input scenario must show in /diagnostics.

The figures (e-stop to hold latency under load, the node's peak memory across the image faults) are printed by
the last test: `pytest tests/test_ros_fault_campaign.py -s`.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Callable, Optional

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from lifecycle_msgs.msg import Transition
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Header, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from conftest import own_participant, wait_until
from crafted import png_header, string_cdr
from invariants import InvariantChecker
from node_rig import GROUPS, IMAGE, LATCHED, SPECS, NodeRig, healthy_positions, ros_time

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

NS = "/campaign"
RATE_HZ = 20.0
STEP_S = 1.0 / RATE_HZ
MAX_AGE_S = 0.3
TELEOP_TIMEOUT_S = 0.3
WATCHDOG_S = 0.05
ESTOP_BOUND_S = 0.05
BURST_CYCLES = 30
OVERRIDES = {
    "action_rate_hz": RATE_HZ,
    "execute_steps": 4,
    "handover_steps": 4,
    "max_observation_age": MAX_AGE_S,
    "teleop_timeout": TELEOP_TIMEOUT_S,
    "diagnostics_period": 0.1,
    "compressed_image_topic": "camera/image_raw/compressed",
}
MEMORY_MB: dict[str, float] = {}  # the node's peak resident memory after each image fault


@pytest.fixture(scope="module")
def campaign(ros_probe, launch_gr00t_node, tiny_checkpoint):
    process = launch_gr00t_node(OVERRIDES, namespace=NS.strip("/"), model_path=tiny_checkpoint)
    campaign = NodeRig(ros_probe, process, NS, step_s=STEP_S)
    campaign.start()
    yield campaign
    campaign.close()


@pytest.fixture
def rig(campaign):
    before = len(campaign.checker.violations)
    campaign.healthy()
    yield campaign
    campaign.process.assert_running()
    campaign.assert_no_violations(before)


# ---- the invariant checks themselves fail on messages built to violate them -------------------------------------
def trajectory(group: str, q: np.ndarray, times_s, stamp_ns: int = 0, v: Optional[np.ndarray] = None):
    q = np.atleast_2d(q)
    v = np.zeros_like(q) if v is None else v
    points = [
        JointTrajectoryPoint(positions=list(qi), velocities=list(vi),
                             time_from_start=Duration(sec=int(t), nanosec=int(round((t % 1) * 1e9))))
        for qi, vi, t in zip(q, v, times_s)
    ]
    return JointTrajectory(header=Header(stamp=ros_time(stamp_ns)), joint_names=list(GROUPS[group]["joints"]),
                           points=points)


def test_each_invariant_check_fails_on_a_message_built_to_violate_it():
    measured = healthy_positions()
    arm = np.array([measured[j] for j in GROUPS["left_arm"]["joints"]])
    spec = SPECS["left_arm"]

    def violations(msg, setup=lambda c: None, group="left_arm") -> set[str]:
        checker = InvariantChecker(SPECS)
        checker.measured(measured)
        setup(checker)
        return {v.rule for v in checker.check(group, msg)}

    assert violations(trajectory("left_arm", arm, [0.05])) == set(), "a hold at the measured position is fine"
    nan = arm.copy()
    nan[2] = np.nan
    assert "finite" in violations(trajectory("left_arm", nan, [0.05]))
    inf_v = trajectory("left_arm", arm, [0.05], v=np.full((1, 7), np.inf))
    assert "finite" in violations(inf_v)
    wrong_names = trajectory("left_arm", arm, [0.05])
    wrong_names.joint_names = wrong_names.joint_names[::-1]
    assert "joint names" in violations(wrong_names)
    assert "time_from_start" in violations(trajectory("left_arm", [arm, arm], [0.1, 0.1]))
    beyond = arm.copy()
    beyond[6] = spec.position_max[6] + 0.01
    assert "position limit" in violations(trajectory("left_arm", [arm, beyond], [1.0, 2.0]))
    assert "velocity limit" in violations(trajectory("left_arm", arm, [0.05], v=np.full((1, 7), 9.0)))
    jump = arm + np.array([0.5, 0, 0, 0, 0, 0, 0])
    assert "velocity limit" in violations(trajectory("left_arm", [arm, jump], [0.05, 0.10])), "between points"
    assert "velocity limit" in violations(trajectory("left_arm", jump, [0.05])), "from the measured position"
    past = trajectory("left_arm", arm, [0.05], stamp_ns=time.time_ns() - 10**9)
    assert "velocity limit" in violations(past), "a stamped point already due on arrival"
    chunk = trajectory("left_arm", [arm, arm], [0.05, 0.10], stamp_ns=time.time_ns())
    assert violations(chunk) == set()

    def estopped_after_hold(checker):
        checker.estop_engaged()
        checker.check("left_arm", trajectory("left_arm", arm, [0.05]))

    assert "e-stop" in violations(chunk, estopped_after_hold)
    assert "e-stop" in violations(trajectory("left_arm", arm + 0.01, [0.05]), estopped_after_hold), "hold elsewhere"

    def teleop_mode_after_hold(checker):
        checker.mode("teleop")
        checker.check("left_arm", trajectory("left_arm", arm, [0.05]))

    assert "mode" in violations(chunk, teleop_mode_after_hold)
    teleop_forward = trajectory("left_arm", [arm, arm], [0.05, 0.1])
    assert violations(teleop_forward, teleop_mode_after_hold) == set(), "teleop forwards (stamp 0) are allowed"


# ---- scenarios ---------------------------------------------------------------------------------------------------
SCENARIOS: dict[str, Callable[[NodeRig], None]] = {}


def scenario(function: Callable[[NodeRig], None]) -> Callable[[NodeRig], None]:
    SCENARIOS[function.__name__] = function
    return function


def faulted(c: NodeRig, inject: Callable[[], None], complaint: str, *, hold: bool = True,
            watch_s: float = 3 * STEP_S) -> str:
    """Inject a fault; the diagnostics must name it, and (`hold`) every group holds and the policy stays out
    (watched for `watch_s` after the hold) until `c.healthy()` clears the fault. Returns the diagnostic text."""
    since, diag = c.marks(), c.diagnostics.mark()
    inject()
    text = c.diagnostic(lambda t: complaint in t, since=diag)
    if hold:
        c.hold_times(since)
        time.sleep(watch_s)  # chunks the node might wrongly publish would arrive within this
        c.no_policy_after_hold(since)
    c.process.assert_running()
    return text


def keeps_commanding(c: NodeRig, inject: Callable[[], None]) -> None:
    """A valid but unusual input: the policy keeps commanding through it."""
    inject()
    time.sleep(2 * STEP_S)
    c.policy_chunk()
    c.policy_chunk()


def joint_hook(change: Callable[[JointState], Optional[JointState]]) -> Callable[[JointState], list[JointState]]:
    def hook(msg: JointState) -> list[JointState]:
        changed = change(msg)
        return [changed if changed is not None else msg]

    return hook


def with_value(joint: str, value: float) -> Callable[[JointState], None]:
    def change(msg: JointState) -> None:
        position = list(msg.position)
        position[msg.name.index(joint)] = value
        msg.position = position

    return change


def set_feeder(c: NodeRig, **values) -> Callable[[], None]:
    return lambda: [setattr(c.feeder, name, value) for name, value in values.items()]


# joint states
@scenario
def joint_state_nan(c):
    faulted(c, set_feeder(c, joint_hook=joint_hook(with_value("waist_pitch_joint", float("nan")))), "non-finite")


@scenario
def joint_state_inf(c):
    faulted(c, set_feeder(c, joint_hook=joint_hook(with_value("left_elbow_pitch_joint", float("inf")))), "non-finite")


def without(joint: str) -> Callable[[JointState], JointState]:
    def drop(msg):
        i = msg.name.index(joint)
        return JointState(header=msg.header, name=msg.name[:i] + msg.name[i + 1:],
                          position=list(msg.position[:i]) + list(msg.position[i + 1:]))

    return drop


@scenario
def joint_state_missing_joint(c):
    faulted(c, set_feeder(c, joint_hook=joint_hook(without("left_shoulder_pitch_joint"))), "left_shoulder_pitch_joint")


@scenario
def joint_state_missing_joint_with_stamps_behind_the_clock(c):
    """Sensors stamped at capture, 0.2 s before they reach the node, then a driver drops a joint: it is stale once
    max_observation_age old by the node's clock, for the watchdog's hold and for inference alike (judged against
    the image's stamp instead, inference went on commanding from it for another 0.2 s after the hold)."""
    set_feeder(c, joint_stamp_offset_s=-0.2, image_stamp_offset_s=-0.2)()
    c.policy_chunk()
    # watched for longer than the image-stamp rule went on
    faulted(c, set_feeder(c, joint_hook=joint_hook(without("left_shoulder_pitch_joint"))), "left_shoulder_pitch_joint",
            watch_s=0.4)


@scenario
def joint_state_duplicate_joint(c):
    def twice(msg):
        return JointState(header=msg.header, name=list(msg.name) + ["waist_yaw_joint"],
                          position=list(msg.position) + [0.0])

    faulted(c, set_feeder(c, joint_hook=joint_hook(twice)), "waist_yaw_joint more than once")


@scenario
def joint_state_length_mismatch(c):
    def short(msg):
        return JointState(header=msg.header, name=msg.name, position=list(msg.position)[:-3])

    faulted(c, set_feeder(c, joint_hook=joint_hook(short)), "names but")


@scenario
def joint_state_stamps_in_the_past(c):
    faulted(c, set_feeder(c, joint_stamp_offset_s=-1.0), "joint_states")


@scenario
def joint_state_stamps_running_backwards(c):
    start_ns = c.probe.now_ns()

    def backwards(msg):
        msg.header.stamp = ros_time(2 * start_ns - c.probe.now_ns())

    faulted(c, set_feeder(c, joint_hook=joint_hook(backwards)), "joint_states")


@scenario
def joint_state_stamps_in_the_future(c):
    text = faulted(c, set_feeder(c, joint_stamp_offset_s=3.0), "ahead of the node's clock")
    assert re.search(r"stamped (2\.9\d\d|3\.0\d\d) s ahead", text), text


@scenario
def joint_state_beyond_limits(c):
    since, diag = c.marks(), c.diagnostics.mark()
    c.feeder.set_position("left_shoulder_pitch_joint", 2.5)  # limit 1.9
    c.feeder.set_position("waist_pitch_joint", 1.5)  # limit 1.2
    text = c.diagnostic(lambda t: "left_shoulder_pitch_joint at 2.500" in t, since=diag)
    assert "[2]" in text and "waist_pitch_joint at 1.500" in text, text
    # Once the jump itself is forgotten the policy commands again, bringing the joints back within their limits
    # no faster than their velocity limits (the checker verifies every point).
    chunk = c.policy_chunk(since, timeout=5.0)
    assert chunk["left_arm"].points[0].positions[0] <= 2.5 + 1e-9


@scenario
def joint_state_conflicting_publishers(c):
    other = c.probe.publisher(JointState, f"{NS}/joint_states", qos_profile_sensor_data)
    stop = threading.Event()
    arm = GROUPS["left_arm"]["joints"]

    def disagree():
        while not stop.wait(0.01):
            values = [c.feeder.positions[j] + 0.3 for j in arm]
            other.publish(JointState(header=Header(stamp=c.probe.node.get_clock().now().to_msg()), name=arm,
                                     position=values))

    thread = threading.Thread(target=disagree, daemon=True)
    c.checker.measured({**c.feeder.positions, **{j: c.feeder.positions[j] + 0.3 for j in arm}})
    try:
        text = faulted(c, thread.start, "publisher(s) on")
        assert "2 publisher(s)" in text, text
    finally:
        stop.set()
        thread.join()
        c.probe.node.destroy_publisher(other)


@scenario
def joint_state_malformed_bytes(c):
    raw = c.probe.publisher(JointState, f"{NS}/joint_states", qos_profile_sensor_data)
    try:
        c.probe.wait_for_subscribers(raw)
        before = c.counter("rejected_joint_states")
        for _ in range(20):
            raw.publish(b"\x00\x01\x00\x00\xff\xff\xff\x7f truncated")
            time.sleep(0.01)
        c.counter_grows("rejected_joint_states", before)
        c.policy_chunk()
    finally:
        c.probe.node.destroy_publisher(raw)


@scenario
def joint_state_stream_stops_and_resumes(c):
    since = c.marks()
    c.feeder.joints_on = False
    stopped = time.time_ns()
    first_hold = min(c.hold_times(since).values())
    assert (first_hold - stopped) * 1e-9 <= MAX_AGE_S + 2 * WATCHDOG_S + 0.1, "hold within the staleness bound"
    c.feeder.joints_on = True
    c.policy_chunk()


def in_bursts(every: int) -> Callable[[JointState], list[JointState]]:
    """A link that batches (a bridge, a driver catching up after each stall): the joint states of `every` feeder
    ticks go out together at the last one, so a camera frame often arrives before the joint state of its
    instant."""
    held: list[JointState] = []

    def hook(msg: JointState) -> list[JointState]:
        held.append(msg)
        if len(held) < every:
            return []
        burst = list(held)
        held.clear()
        return burst

    return hook


@scenario
def joint_state_in_bursts_after_the_frames(c):
    # Bursts every 7 ticks of 10 ms, frames every 4: a frame 5 or 6 ticks after a burst is 50-60 ms from the
    # newest joint state, and its own comes 10-20 ms after it, well within max_sync_skew. The node waits for it
    # instead of holding. Without the wait it held in 6 to 9 of 30 cycles (4 runs of 4). With it, a joint state
    # still reaches the node more than 40 ms late now and then on this machine (0 or 1 of 30 cycles in 8 runs:
    # "closest joint state is 0.063 s from the image"), so up to 3 holds are left to the machine.
    since = c.marks()
    c.feeder.joint_hook = in_bursts(every=7)
    try:
        for _ in range(BURST_CYCLES):
            c.policy_chunk()
    finally:
        c.feeder.joint_hook = None
    held = {g: sum(c.held(m) for m in controller.since(since[g])) for g, controller in c.controllers.items()}
    assert max(held.values()) <= 3, f"holds in {BURST_CYCLES} cycles while the joint states came in bursts: {held}"


@scenario
def joint_state_huge_and_many_unknown_joints(c):
    before = c.counter("rejected_joint_states")
    names = [f"extra_joint_{i}" for i in range(60_000)]
    huge = JointState(name=names, position=[0.0] * len(names))

    def rejected_after_publishing() -> bool:
        # Best effort, like a driver's joint states: a 1.4 MB message's fragments may be lost on a loaded machine,
        # so the hostile sender goes on sending until one arrives.
        huge.header.stamp = c.probe.node.get_clock().now().to_msg()
        c.feeder.joint_pub.publish(huge)
        time.sleep(0.1)
        return c.counter("rejected_joint_states") > before

    wait_until(rejected_after_publishing, 10.0, "a 60,000-joint state to be rejected and counted")
    # joints the node does not use (a whole humanoid's worth and more) are ignored, not stored
    extra = [f"finger_{i}" for i in range(2000)]
    keeps_commanding(c, set_feeder(c, joint_hook=lambda m: [JointState(
        header=m.header, name=list(m.name) + extra, position=list(m.position) + [0.0] * len(extra))]))


# images
def image_hook(**fields) -> Callable[[Image], Image]:
    def hook(msg: Image) -> Image:
        for name, value in fields.items():
            setattr(msg, name, value)
        return msg

    return hook


@scenario
def image_wrong_step(c):
    faulted(c, set_feeder(c, image_hook=image_hook(step=IMAGE * 3 - 5)), "shorter than a row")


@scenario
def image_truncated(c):
    faulted(c, set_feeder(c, image_hook=image_hook(data=bytes(IMAGE * IMAGE))), "truncated")


@scenario
def image_unknown_encoding(c):
    faulted(c, set_feeder(c, image_hook=image_hook(encoding="yuv422_yuy2")), "not supported")


@scenario
def image_zero_size(c):
    faulted(c, set_feeder(c, image_hook=image_hook(width=0, height=0, step=0, data=b"")), "no pixels")


@scenario
def image_huge_header(c):
    faulted(c, set_feeder(c, image_hook=image_hook(width=20000, height=20000, step=60000)), "max_image_pixels")
    MEMORY_MB["after huge header"] = c.node_rss_mb()[1]


@scenario
def image_thin(c):
    MEMORY_MB.setdefault("before image faults", c.node_rss_mb()[1])
    thin = bytes(2000 * 3)
    faulted(c, set_feeder(c, image_hook=image_hook(width=1, height=2000, step=3, data=thin)), "aspect ratio")
    MEMORY_MB["after 1x2000 frames"] = c.node_rss_mb()[1]


@scenario
def image_large_valid(c):
    large = np.random.default_rng(2).integers(0, 256, (1080, 1920, 3), np.uint8).tobytes()
    diag = c.diagnostics.mark()
    keeps_commanding(c, set_feeder(c, image_hook=image_hook(width=1920, height=1080, step=1920 * 3, data=large)))
    c.diagnostic(lambda t: "1920x1080" in t, since=diag)
    MEMORY_MB["after 1920x1080 frames"] = c.node_rss_mb()[1]


@scenario
def image_mono8_valid(c):
    gray = c.feeder.pixels[..., 0].tobytes()
    keeps_commanding(c, set_feeder(c, image_hook=image_hook(encoding="mono8", step=IMAGE, data=gray)))


@scenario
def image_bgra8_padded_valid(c):
    bgra = cv2.cvtColor(c.feeder.pixels, cv2.COLOR_RGB2BGRA)
    padded = np.concatenate([bgra.reshape(IMAGE, -1), np.zeros((IMAGE, 12), np.uint8)], axis=1).tobytes()
    keeps_commanding(c, set_feeder(c, image_hook=image_hook(encoding="bgra8", step=IMAGE * 4 + 12, data=padded)))


@scenario
def image_stamps_in_the_future(c):
    faulted(c, set_feeder(c, image_stamp_offset_s=3.0), "ahead of the node's clock")


@scenario
def image_stamps_in_the_past(c):
    faulted(c, set_feeder(c, image_stamp_offset_s=-1.0), "old")


@scenario
def camera_stops_and_resumes(c):
    since = c.marks()
    c.feeder.camera_on = False
    stopped = time.time_ns()
    first_hold = min(c.hold_times(since).values())
    assert (first_hold - stopped) * 1e-9 <= MAX_AGE_S + 2 * WATCHDOG_S + 0.1, "hold within the staleness bound"
    c.feeder.camera_on = True
    c.policy_chunk()


@scenario
def image_burst_of_a_thousand_in_a_second(c):
    # The flood comes from a participant of its own, as from a camera driver's process. Sent through the probe's,
    # whose shared-memory segment the operator's e-stop goes through too, one e-stop took 1.09 s (once, in a
    # whole-suite run; likely the full segment: eProsima/Fast-DDS#1666 describes such stalls of about a second).
    with own_participant("flooding_camera_driver") as camera_driver:
        burst = camera_driver.create_publisher(Image, f"{NS}/camera/image_raw", qos_profile_sensor_data)

        def flood():
            start = time.monotonic()
            for i in range(1000):
                burst.publish(c.feeder.image(c.probe.node.get_clock().now().to_msg()))
                time.sleep(max(0.0, start + (i + 1) * 1e-3 - time.monotonic()))

        thread = threading.Thread(target=flood, daemon=True)
        try:
            c.probe.wait_for_subscribers(burst)
            thread.start()
            c.policy_chunk()
            latency = c.estop()
            assert latency <= ESTOP_BOUND_S * 4, f"e-stop during the burst took {latency:.3f} s"
        finally:
            if thread.is_alive():
                thread.join()


# compressed images (the raw camera off, compressed frames at 25 Hz instead)
def compressed_stream(c: NodeRig, make: Callable[[], CompressedImage]) -> Callable[[], None]:
    stop = threading.Event()

    def run():
        while not stop.wait(0.04):
            msg = make()
            msg.header.stamp = c.probe.node.get_clock().now().to_msg()
            c.feeder.compressed_pub.publish(msg)

    thread = threading.Thread(target=run, daemon=True)
    c.feeder.camera_on = False
    thread.start()

    def stop_stream():
        stop.set()
        thread.join()

    return stop_stream


def compressed_fault(c: NodeRig, make: Callable[[], CompressedImage], complaint: str) -> None:
    stops = []
    try:
        faulted(c, lambda: stops.append(compressed_stream(c, make)), complaint)
    finally:
        for stop in stops:
            stop()


@scenario
def compressed_garbage(c):
    compressed_fault(c, lambda: CompressedImage(format="jpeg", data=b"\xff\xd8 not a jpeg at all" * 50),
                     "no readable image header")


@scenario
def compressed_empty(c):
    compressed_fault(c, lambda: CompressedImage(format="jpeg", data=b""), "no data")


@scenario
def compressed_decompression_bomb(c):
    compressed_fault(c, lambda: CompressedImage(format="png", data=png_header(8000, 8000)), "max_image_pixels")


@scenario
def compressed_valid_png(c):
    png = cv2.imencode(".png", cv2.cvtColor(c.feeder.pixels, cv2.COLOR_RGB2BGR))[1].tobytes()
    stop = compressed_stream(c, lambda: CompressedImage(format="png", data=png))
    try:
        time.sleep(2 * STEP_S)
        c.policy_chunk()
        c.policy_chunk()
    finally:
        stop()


# instructions
@scenario
def instruction_empty(c):
    faulted(c, lambda: c.instruction.publish(String(data="")), "instruction is empty")


@scenario
def instruction_huge(c):
    huge = " ".join(["pick the pear and place it in the plate"] * 2500)  # about 100,000 characters
    faulted(c, lambda: c.instruction.publish(String(data=huge)), "max_instruction_tokens")


@scenario
def instruction_unicode(c):
    diag = c.diagnostics.mark()
    keeps_commanding(c, lambda: c.instruction.publish(String(data="把梨放到盘子里 🍐 pick the pear, s'il vous plaît")))
    c.diagnostic(lambda t: "instruction=把梨放到盘子里" in t, since=diag)


@scenario
def instruction_invalid_utf8(c):
    raw = c.probe.publisher(String, f"{NS}/instruction", LATCHED)
    try:
        c.probe.wait_for_subscribers(raw)
        faulted(c, lambda: raw.publish(string_cdr(b"pick the \xff\xfe pear")), "not valid UTF-8")
    finally:
        c.probe.node.destroy_publisher(raw)


@scenario
def instruction_from_a_volatile_publisher(c):
    diag = c.diagnostics.mark()
    keeps_commanding(c, lambda: c.instruction_volatile.publish(String(data="put the pear in the basket")))
    c.diagnostic(lambda t: "instruction=put the pear in the basket" in t, since=diag)


# e-stop
def assert_estopped(c: NodeRig, since: dict[str, int]) -> None:
    time.sleep(4 * STEP_S)
    c.no_policy_after_hold(since)
    assert not c.enter("policy"), "no policy while the e-stop is latched"
    assert c.mode_topic.wait_for(lambda m: m.data == "hold").data == "hold"


@scenario
def estop_mid_chunk(c):
    c.policy_chunk()
    time.sleep(STEP_S)
    since = c.marks()
    assert c.estop() <= ESTOP_BOUND_S * 4
    assert_estopped(c, since)


@scenario
def estop_pulse_of_5_ms(c):
    since = c.marks()
    c.estop(pulse_s=0.005)
    assert_estopped(c, since)


@scenario
def estop_from_a_volatile_publisher(c):
    since = c.marks()
    c.estop("volatile")
    assert_estopped(c, since)


@scenario
def estop_from_a_best_effort_publisher(c):
    since = c.marks()
    c.estop("best_effort")
    assert_estopped(c, since)


@scenario
def estop_released_without_resume(c):
    since = c.marks()
    c.estop()
    c.estop_pubs["latched"].publish(Bool(data=False))
    time.sleep(0.3)
    assert_estopped(c, since)


@scenario
def estop_during_a_flood_of_huge_teleop_trajectories(c):
    joints = GROUPS["left_arm"]["joints"]
    huge = JointTrajectory(joint_names=joints, points=[
        JointTrajectoryPoint(positions=list(c.feeder.measured("left_arm")),
                             time_from_start=Duration(nanosec=1000 * (i + 1)))
        for i in range(20_000)
    ])
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            c.teleop["left_arm"].publish(huge)

    diag = c.diagnostics.mark()
    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        c.diagnostic(lambda t: "larger than" in t and "teleop" in t, since=diag)
        c.policy_chunk()
        since = c.marks()
        assert c.estop() <= ESTOP_BOUND_S * 4
        assert_estopped(c, since)
    finally:
        stop.set()
        thread.join()


def estop_under(c: NodeRig, flood: Callable[[], None]) -> None:
    """E-stop while `flood` runs in a thread as fast as it can."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [flood() for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        c.policy_chunk()
        since = c.marks()
        assert c.estop() <= ESTOP_BOUND_S * 4
        assert_estopped(c, since)
    finally:
        stop.set()
        thread.join()


@scenario
def estop_during_a_joint_state_flood(c):
    names = list(c.feeder.positions)

    def publish():
        c.feeder.joint_pub.publish(JointState(header=Header(stamp=c.probe.node.get_clock().now().to_msg()),
                                              name=names, position=[c.feeder.positions[n] for n in names]))

    estop_under(c, publish)


@scenario
def estop_in_teleop_mode_forwards_nothing_after_it(c):
    teleop_mode(c)
    since = c.marks()
    for g in GROUPS:  # every group commanded, so that every group must hold again
        target = c.feeder.measured(g)
        c.teleop[g].publish(trajectory(g, [target, target], [0.5, 1.0]))
    for g, controller in c.controllers.items():
        controller.wait_for(lambda m: not c.held(m), since[g], 5.0)
    stop = threading.Event()

    def stream():
        while not stop.wait(0.005):
            target = c.feeder.measured("left_arm") + 0.01
            c.teleop["left_arm"].publish(trajectory("left_arm", [target], [0.5]))

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        time.sleep(0.05)
        since = c.marks()
        c.estop()
        time.sleep(0.3)
        for g, controller in c.controllers.items():
            messages = controller.since(since[g])
            first = next(i for i, m in enumerate(messages) if c.held(m))
            assert all(c.held(m) for m in messages[first:]), f"{g}: forwarded after the e-stop"
    finally:
        stop.set()
        thread.join()


# modes
@scenario
def mode_requests_while_estopped_are_refused(c):
    since = c.marks()
    c.estop()
    diag = c.diagnostics.mark()
    assert not c.enter("policy") and not c.enter("teleop")
    c.diagnostic(lambda t: "teleop refused: e-stop is latched" in t, since=diag)
    assert c.enter("hold"), "hold is always allowed"
    time.sleep(4 * STEP_S)
    c.no_policy_after_hold(since)


@scenario
def mode_each_valid_one(c):
    since = c.marks()
    assert c.enter("teleop")
    c.holds(since)
    c.mode_topic.wait_for(lambda m: m.data == "teleop")
    assert c.enter("hold")
    c.mode_topic.wait_for(lambda m: m.data == "hold")
    time.sleep(4 * STEP_S)
    c.no_policy_after_hold(since)
    assert c.enter("policy")
    c.policy_chunk()


# teleop
def teleop_mode(c: NodeRig) -> None:
    since = c.marks()
    assert c.enter("teleop")
    c.holds(since)


def teleop_message(c: NodeRig, targets: np.ndarray, times_s, stamp_ns: int = 0, names=None) -> JointTrajectory:
    return trajectory("left_arm", targets, times_s, stamp_ns) if names is None else JointTrajectory(
        header=Header(stamp=ros_time(stamp_ns)), joint_names=names,
        points=[JointTrajectoryPoint(positions=list(q), time_from_start=Duration(nanosec=int(t * 1e9)))
                for q, t in zip(targets, times_s)],
    )


def teleop_rejected(c: NodeRig, msg: JointTrajectory, complaint: str) -> None:
    teleop_mode(c)
    since, diag = c.marks(), c.diagnostics.mark()
    c.teleop["left_arm"].publish(msg)
    c.diagnostic(lambda t: complaint in t, since=diag)
    assert all(c.held(m) for m in c.controllers["left_arm"].since(since["left_arm"])), "nothing forwarded"


def teleop_forwarded(c: NodeRig, msg: JointTrajectory) -> JointTrajectory:
    teleop_mode(c)
    since = c.marks()["left_arm"]
    c.teleop["left_arm"].publish(msg)
    return c.controllers["left_arm"].wait_for(lambda m: not c.held(m), since, 5.0)[0]


@scenario
def teleop_nan(c):
    target = c.feeder.measured("left_arm")
    target[3] = np.nan
    teleop_rejected(c, teleop_message(c, [target], [0.1]), "NaN")


@scenario
def teleop_beyond_limits(c):
    target = c.feeder.measured("left_arm")
    target[6] = 5.0  # wrist pitch limit 0.7
    forwarded = teleop_forwarded(c, teleop_message(c, [target], [2.0]))
    assert forwarded.points[0].positions[6] == pytest.approx(0.7)


@scenario
def teleop_unknown_joints(c):
    names = list(GROUPS["left_arm"]["joints"][:-1]) + ["laser_joint"]
    teleop_rejected(c, teleop_message(c, [c.feeder.measured("left_arm")], [0.1], names=names), "unknown laser_joint")


@scenario
def teleop_wrong_point_size(c):
    msg = teleop_message(c, [c.feeder.measured("left_arm")], [0.1])
    msg.points[0].positions = list(msg.points[0].positions)[:6]
    teleop_rejected(c, msg, "needs 7 positions")


@scenario
def teleop_too_fast(c):
    target = c.feeder.measured("left_arm") + 1.0  # 1 rad in 60 ms: 17 rad/s asked, 3.5-4 allowed
    forwarded = teleop_forwarded(c, teleop_message(c, [target], [0.06]))
    moved = np.abs(np.array(forwarded.points[0].positions) - c.feeder.measured("left_arm"))
    assert np.all(moved <= SPECS["left_arm"].velocity_max * 0.06 + 1e-9)


@scenario
def teleop_stamped_in_the_past(c):
    target = c.feeder.measured("left_arm") + 0.01
    msg = teleop_message(c, [target, target], [0.05, 0.1], stamp_ns=c.probe.now_ns() - 10**9)
    teleop_rejected(c, msg, "already due")


@scenario
def teleop_stamped_zero_while_joint_stamps_run_ahead(c):
    teleop_mode(c)
    diag = c.diagnostics.mark()
    c.feeder.joint_stamp_offset_s = 0.3
    c.diagnostic(lambda t: "ahead of the node's clock" in t, since=diag)
    target = c.feeder.measured("left_arm") + 0.01
    since = c.marks()["left_arm"]
    time.sleep(MAX_AGE_S + 0.1)  # the node's newest accepted joint state is now too old to command from
    c.teleop["left_arm"].publish(teleop_message(c, [target, target], [0.05, 0.1]))
    c.diagnostic(lambda t: "teleop not forwarded" in t, since=diag)
    assert all(c.held(m) for m in c.controllers["left_arm"].since(since))


@scenario
def teleop_fifty_ms_late(c):
    measured = c.feeder.measured("left_arm")
    target = measured + 0.01
    times = [0.05, 0.10, 0.15, 0.20]
    forwarded = teleop_forwarded(c, teleop_message(c, [target] * 4, times, stamp_ns=c.probe.now_ns() - 50_000_000))
    q = np.array([p.positions for p in forwarded.points])
    assert len(q) <= 3, "the point already due was dropped"
    assert np.all(q >= measured - 1e-9) and np.all(q <= target + 1e-9), "never a move the wrong way"


@scenario
def teleop_huge_trajectory(c):
    target = c.feeder.measured("left_arm")
    teleop_rejected(c, teleop_message(c, [target] * 20_000, np.arange(1, 20_001) * 1e-3), "larger than")


@scenario
def teleop_stream_stops(c):
    teleop_mode(c)
    target = c.feeder.measured("left_arm") + 0.01
    for _ in range(5):
        c.teleop["left_arm"].publish(teleop_message(c, [target], [0.1]))
        time.sleep(0.05)
    since = c.marks()["left_arm"]
    stopped = time.time_ns()
    _, held_ns = c.controllers["left_arm"].wait_for(c.held, since, 5.0)
    assert (held_ns - stopped) * 1e-9 <= TELEOP_TIMEOUT_S + 2 * WATCHDOG_S + 0.1


# lifecycle
@scenario
def deactivate_and_activate_while_commanding(c):
    for _ in range(3):
        c.policy_chunk()
        time.sleep(STEP_S * np.random.default_rng().uniform(0, 4))  # at any point of the cycle
        since = c.marks()
        assert c.change_state(Transition.TRANSITION_DEACTIVATE)
        c.holds(since)
        time.sleep(4 * STEP_S)
        for g, controller in c.controllers.items():
            messages = controller.since(since[g])
            first = next(i for i, m in enumerate(messages) if c.held(m))
            assert not messages[first + 1:], f"{g}: commanded after the deactivation hold"
        assert c.change_state(Transition.TRANSITION_ACTIVATE)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(rig, name):
    SCENARIOS[name](rig)


def test_campaign_summary_and_shutdown(campaign):
    """No violation in any message of the campaign; SIGINT holds first and exits cleanly; the figures."""
    c = campaign
    c.healthy()
    since = c.marks()
    assert c.process.stop() == 0, c.process.log()[-3000:]
    c.holds(since, timeout=2.0)
    for g, controller in c.controllers.items():
        messages = controller.since(since[g])
        first = next(i for i, m in enumerate(messages) if c.held(m))
        assert not messages[first + 1:], f"{g}: commanded after the shutdown hold"
    latencies = np.array(c.estop_latencies_s) * 1e3
    print(f"\nfault campaign: {len(SCENARIOS)} scenarios, {c.checker.messages_checked} controller messages checked, "
          f"{len(c.checker.violations)} violations")
    print(f"e-stop -> hold on all five controllers: n={len(latencies)} p50 {np.percentile(latencies, 50):.1f} ms "
          f"p99 {np.percentile(latencies, 99):.1f} ms max {latencies.max():.1f} ms")
    print("node peak memory (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in MEMORY_MB.items()))
    assert not c.checker.violations, "\n".join(map(str, c.checker.violations[:10]))
    assert c.checker.messages_checked > 500
    assert np.percentile(latencies, 99) <= ESTOP_BOUND_S * 1e3, f"e-stop to hold p99 {np.percentile(latencies, 99)} ms"
    assert MEMORY_MB["after 1x2000 frames"] - MEMORY_MB["before image faults"] < 200, MEMORY_MB
