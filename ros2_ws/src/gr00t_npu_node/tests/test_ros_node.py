"""gr00t_node end to end over real rclpy (loopback, private domain): one node process for the module, started
through the launch runner with the tiny checkpoint, fed by a synthetic camera and joint-state publisher."""
from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from conftest import PACKAGE_ROOT, wait_until

NS = "/gr00t_test"
INSTRUCTION = "pick the pear from the counter and place it in the plate"
RATE_HZ = 1.0  # one step per second: the tiny model (0.1-0.5 s) finishes well within a step, so no step is skipped
STEP_NS = int(1e9 / RATE_HZ)
HANDOVER_STEPS = 4
IMAGE_SIZE = 256  # the resolution the policy warms up (compiles) for
OVERRIDES = {
    "action_rate_hz": RATE_HZ,
    "execute_steps": 1,
    "handover_steps": HANDOVER_STEPS,
    "teleop_timeout": 0.3,
    "diagnostics_period": 0.2,
}
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
CONFIG = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())["/**"]["ros__parameters"]
GROUPS = {g: CONFIG["joint_groups"][g] for g in CONFIG["policy_groups"]}
HAND_JOINTS = [j for g in ("left_hand", "right_hand") for j in CONFIG["joint_groups"][g]["joints"]]
EPS = 1e-6


def measured_positions() -> dict[str, float]:
    """Distinct in-range positions per joint (so a mix-up of names shows), legs and neck included."""
    positions = {}
    for group in CONFIG["joint_groups"].values():
        lo = group.get("position_min", [-0.5] * len(group["joints"]))
        hi = group.get("position_max", [0.5] * len(group["joints"]))
        for k, (joint, a, b) in enumerate(zip(group["joints"], lo, hi)):
            positions[joint] = a + (b - a) * (0.3 + 0.05 * k)
    return positions


class SensorFeeder:
    """Publishes a camera image (raw, or PNG on the compressed topic) and the robot's joint states at 20 Hz with
    equal stamps; the joint order is shuffled on every message and an unrelated joint is added. Tests switch
    faults on and off."""

    def __init__(self, probe, ns: str, compressed: bool = False):
        self.probe = probe
        self.compressed = compressed
        if compressed:
            topic = f"{ns}/camera/image_raw/compressed"
            self.image_pub = probe.publisher(CompressedImage, topic, qos_profile_sensor_data)
        else:
            self.image_pub = probe.publisher(Image, f"{ns}/camera/image_raw", qos_profile_sensor_data)
        self.joint_pub = probe.publisher(JointState, f"{ns}/joint_states", qos_profile_sensor_data)
        self.positions = measured_positions()
        self.camera_on = True
        self.image_fault = None  # None, "step", "encoding" or "size"
        self.joint_fault = None  # None, "nan", "missing", "split" (hands in their own messages) or "hands_silent"
        self.image_stamps: deque[int] = deque(maxlen=2000)
        self._rng = np.random.default_rng(0)
        pixels = np.random.default_rng(1).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        self._pixels = pixels.tobytes()
        self._png = cv2.imencode(".png", pixels)[1].tobytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _image(self, stamp) -> Image | CompressedImage:
        if self.compressed:
            return CompressedImage(header=Header(stamp=stamp), format="png", data=self._png)
        msg = Image(height=IMAGE_SIZE, width=IMAGE_SIZE, encoding="rgb8", step=IMAGE_SIZE * 3)
        msg.header.stamp = stamp
        msg.data = self._pixels
        if self.image_fault == "step":
            msg.step = IMAGE_SIZE * 3 - 5
        elif self.image_fault == "encoding":
            msg.encoding = "yuv422_yuy2"
        elif self.image_fault == "size":  # a valid frame, narrower than the configured camera
            msg.width, msg.step = IMAGE_SIZE // 2, IMAGE_SIZE * 3 // 2
            msg.data = self._pixels[: IMAGE_SIZE * IMAGE_SIZE * 3 // 2]
        return msg

    def _joint_state(self, stamp) -> JointState:
        names = list(self.positions) + ["unrelated_joint"]
        values = list(self.positions.values()) + [9.0]
        if self.joint_fault == "missing":
            names, values = names[1:], values[1:]  # drops left_shoulder_pitch_joint
        if self.joint_fault == "nan":
            values[names.index("waist_pitch_joint")] = float("nan")
        order = self._rng.permutation(len(names))
        return JointState(
            header=Header(stamp=stamp), name=[names[i] for i in order], position=[values[i] for i in order]
        )

    def _joint_states(self, stamp) -> list[JointState]:
        """One message with every joint, or, like separate arm and hand drivers, one without the hands and one with
        only the hands (or none at all: "hands_silent")."""
        msg = self._joint_state(stamp)
        if self.joint_fault not in ("split", "hands_silent"):
            return [msg]
        hands = set(HAND_JOINTS)
        pairs = list(zip(msg.name, msg.position))
        parts = [[(n, q) for n, q in pairs if (n in hands) == is_hand] for is_hand in (False, True)]
        split = [JointState(header=msg.header, name=[n for n, _ in p], position=[q for _, q in p]) for p in parts]
        return split[:1] if self.joint_fault == "hands_silent" else split

    def _run(self):
        while not self._stop.wait(0.05):
            now = self.probe.node.get_clock().now()
            stamp = now.to_msg()
            for msg in self._joint_states(stamp):
                self.joint_pub.publish(msg)
            if self.camera_on:
                self.image_stamps.append(now.nanoseconds)
                self.image_pub.publish(self._image(stamp))


class Rig:
    """The test side of one gr00t_node process in namespace `ns`."""

    def __init__(self, probe, process, ns: str, compressed: bool = False):
        self.probe = probe
        self.process = process
        self.node_name = f"{ns}/gr00t_node"
        self.controllers = {
            g: probe.collect(JointTrajectory, f"{ns}/{spec['controller']}/joint_trajectory", 10)
            for g, spec in GROUPS.items()
        }
        self.chunk = probe.collect(Float32MultiArray, f"{self.node_name}/action_chunk", 10)
        self.latency = probe.collect(Float64, f"{self.node_name}/inference_latency", 10)
        self.overhead = probe.collect(Float64, f"{self.node_name}/node_overhead", 10)
        self.mode = probe.collect(String, f"{self.node_name}/mode", LATCHED)
        self.diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 10)
        self.instruction = probe.publisher(String, f"{ns}/instruction", LATCHED)
        self.estop = probe.publisher(Bool, f"{ns}/estop", LATCHED)
        self.teleop = {
            g: probe.publisher(JointTrajectory, f"{ns}/teleop/{spec['controller']}/joint_trajectory", 10)
            for g, spec in GROUPS.items()
        }
        self.feeder = SensorFeeder(probe, ns, compressed)

    def start(self) -> None:
        self.feeder.start()
        self.instruction.publish(String(data=INSTRUCTION))
        def active() -> bool:
            self.process.assert_running()
            return bool(self.mode.messages) and self.mode.messages[-1].data == "policy"

        wait_until(active, 120, "gr00t_node to configure and activate")

    def close(self) -> None:
        self.feeder.stop()
        code = self.process.stop()
        monitors = (self.chunk, self.latency, self.overhead, self.mode, self.diagnostics)
        for collector in (*self.controllers.values(), *monitors):
            self.probe.node.destroy_subscription(collector.subscription)
        assert code == 0, self.process.log()[-4000:]

    def marks(self) -> dict[str, int]:
        return {g: c.mark() for g, c in self.controllers.items()}

    def set_mode(self, mode: str) -> bool:
        request = ChangeState.Request(transition=Transition(label=mode))
        return self.probe.call(ChangeState, f"{self.node_name}/set_mode", request).success

    def change_state(self, transition: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition))
        return self.probe.call(ChangeState, f"{self.node_name}/change_state", request).success

    def next_chunk(self, since: dict[str, int] | None = None, timeout: float = 15.0) -> dict[str, JointTrajectory]:
        """The next policy trajectory (more than one point) of every group, all from the same chunk."""
        since = since or self.marks()
        first = self.controllers["left_arm"].wait_for(
            lambda m: len(m.points) > 1, since=since["left_arm"], timeout=timeout
        )
        stamp = first.header.stamp
        return {
            g: c.wait_for(lambda m: m.header.stamp == stamp and len(m.points) > 1, since=since[g], timeout=5.0)
            for g, c in self.controllers.items()
        }

    def holds(self, since: dict[str, int], groups=None, timeout: float = 10.0) -> dict[str, JointTrajectory]:
        return {
            g: self.controllers[g].wait_for(lambda m: len(m.points) == 1, since=since[g], timeout=timeout)
            for g in (groups or GROUPS)
        }

    def diagnostic(self, predicate, since: int = 0, timeout: float = 10.0) -> str:
        """The first diagnostic status message (text) of this node satisfying `predicate(text)`."""
        def matches(array):
            return any(s.name.startswith(self.node_name) and predicate(_status_text(s)) for s in array.status)

        array = self.diagnostics.wait_for(matches, since=since, timeout=timeout)
        texts = (_status_text(s) for s in array.status if s.name.startswith(self.node_name))
        return next(text for text in texts if predicate(text))


def _status_text(status) -> str:
    values = " ".join(f"{kv.key}={kv.value}" for kv in status.values)
    return f"{status.name} [{status.level[0]}] {status.message} {values}"


def measured(rig: Rig, group: str) -> list[float]:
    """The positions the feeder publishes for `group`'s joints, in the controller's joint order."""
    return [rig.feeder.positions[j] for j in GROUPS[group]["joints"]]


def assert_only_holds_after_first_hold(rig: Rig, since: dict[str, int]) -> None:
    """From each group's first hold after `since` on, only holds at the measured position were published."""
    for g, c in rig.controllers.items():
        messages = c.messages[since[g]:]
        first = next(i for i, m in enumerate(messages) if len(m.points) == 1)
        for msg in messages[first:]:
            assert len(msg.points) == 1, f"{g}: a policy chunk was published after the hold"
            assert_safe(g, msg)
            np.testing.assert_allclose(msg.points[0].positions, measured(rig, g), atol=1e-6)


def assert_safe(group: str, msg: JointTrajectory) -> None:
    spec = GROUPS[group]
    lo, hi, vmax = (np.array(spec[k]) for k in ("position_min", "position_max", "velocity_max"))
    assert list(msg.joint_names) == spec["joints"]
    q = np.array([p.positions for p in msg.points])
    v = np.array([p.velocities for p in msg.points])
    t = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    assert q.shape == v.shape == (len(msg.points), len(spec["joints"]))
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(v))
    assert np.all(q >= lo - EPS) and np.all(q <= hi + EPS)
    assert np.all(np.abs(v) <= vmax + EPS)
    assert np.all(np.diff(t) > 0) and t[0] > 0
    assert np.all(np.abs(np.diff(q, axis=0)) <= vmax * np.diff(t)[:, None] + EPS)


@pytest.fixture(scope="module")
def rig(ros_probe, launch_gr00t_node, tiny_checkpoint):
    rig = Rig(ros_probe, launch_gr00t_node(OVERRIDES, namespace=NS.strip("/"), model_path=tiny_checkpoint), NS)
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


@pytest.fixture
def policy_mode(rig):
    """Each test starts in policy mode with clean inputs and a flowing chunk stream."""
    feeder = rig.feeder
    feeder.camera_on, feeder.image_fault, feeder.joint_fault = True, None, None
    rig.instruction.publish(String(data=INSTRUCTION))
    rig.estop.publish(Bool(data=False))
    rig.probe.call(Trigger, f"{rig.node_name}/resume", Trigger.Request())
    assert rig.set_mode("policy")
    rig.next_chunk()
    return rig


def test_observation_in_five_timed_trajectories_out(policy_mode):
    rig = policy_mode
    chunk_mark = rig.chunk.mark()
    chunk = rig.next_chunk()
    stamps = {g: (m.header.stamp.sec, m.header.stamp.nanosec) for g, m in chunk.items()}
    assert len(set(stamps.values())) == 1, "all groups of one chunk share the planned start"
    start_ns = chunk["left_arm"].header.stamp.sec * 1_000_000_000 + chunk["left_arm"].header.stamp.nanosec
    assert start_ns in set(rig.feeder.image_stamps), "a chunk with no skipped step starts at its image's stamp"
    for g, msg in chunk.items():
        assert len(msg.points) == 16
        times = [p.time_from_start.sec * 1_000_000_000 + p.time_from_start.nanosec for p in msg.points]
        assert times == [(i + 1) * STEP_NS for i in range(16)]
        assert_safe(g, msg)
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


def test_switch_to_policy_is_bumpless_and_maps_joints_by_name(policy_mode):
    rig = policy_mode
    assert rig.set_mode("hold")
    since = rig.marks()
    assert rig.set_mode("policy")
    chunk = rig.next_chunk(since)
    for g, msg in chunk.items():
        np.testing.assert_allclose(msg.points[0].positions, measured(rig, g), atol=1e-6, err_msg=f"{g} first point")
        assert_safe(g, msg)


def test_teleop_forwarding_timeout_and_handback(policy_mode):
    rig = policy_mode
    since = rig.marks()
    assert rig.set_mode("teleop")
    holds = rig.holds(since)
    for g, msg in holds.items():
        np.testing.assert_allclose(msg.points[0].positions, measured(rig, g), atol=1e-6)
        assert_safe(g, msg)
    rig.mode.wait_for(lambda m: m.data == "teleop")

    # Teleop for the left arm, joints in reverse order; the node reorders to the controller's joint order.
    joints = GROUPS["left_arm"]["joints"]
    target = {j: rig.feeder.positions[j] + 0.05 for j in joints}
    teleop = JointTrajectory(joint_names=joints[::-1], points=[
        JointTrajectoryPoint(positions=[target[j] for j in joints[::-1]], time_from_start=Duration(nanosec=200_000_000))
    ])
    rig.probe.wait_for_subscribers(rig.teleop["left_arm"])
    since = rig.marks()
    rig.teleop["left_arm"].publish(teleop)
    forwarded = rig.controllers["left_arm"].wait_for(
        lambda m: len(m.points) == 1 and m.points[0].time_from_start.nanosec == 200_000_000, since=since["left_arm"]
    )
    np.testing.assert_allclose(forwarded.points[0].positions, [target[j] for j in joints], atol=1e-9)
    assert_safe("left_arm", forwarded)
    # Silence: after teleop_timeout the left arm holds at the measured position.
    hold = rig.controllers["left_arm"].wait_for(
        lambda m: len(m.points) == 1 and m.points[0].time_from_start.sec == 1, since=since["left_arm"]
    )
    np.testing.assert_allclose(hold.points[0].positions, measured(rig, "left_arm"), atol=1e-6)
    rig.diagnostic(lambda text: "teleop" in text and "silent" in text)

    since = rig.marks()
    assert rig.set_mode("policy")
    chunk = rig.next_chunk(since)
    np.testing.assert_allclose(chunk["left_arm"].points[0].positions, measured(rig, "left_arm"), atol=1e-6)

    since = rig.marks()
    assert rig.set_mode("teleop")
    first_after = {g: rig.controllers[g].wait_for(since=since[g]) for g in GROUPS}
    assert all(len(m.points) == 1 for m in first_after.values()), "switching to teleop stops the policy at once"


def test_estop_latches_until_resume(policy_mode):
    rig = policy_mode
    since = rig.marks()
    rig.estop.publish(Bool(data=True))
    rig.holds(since)
    rig.mode.wait_for(lambda m: m.data == "hold")
    rig.diagnostic(lambda text: "estop" in text and "engaged" in text)
    assert not rig.set_mode("policy"), "no policy while the e-stop is engaged"
    rig.estop.publish(Bool(data=False))
    assert not rig.set_mode("policy"), "releasing the e-stop alone does not resume"
    diag_mark = rig.diagnostics.mark()
    rig.diagnostic(lambda text: "safety" in text and "mode=hold" in text and "estop=True" in text, since=diag_mark)
    reply = rig.probe.call(Trigger, f"{rig.node_name}/resume", Trigger.Request())
    assert reply.success, reply.message
    rig.mode.wait_for(lambda m: m.data == "hold")
    assert_only_holds_after_first_hold(rig, since)
    since = rig.marks()
    assert rig.set_mode("policy")
    chunk = rig.next_chunk(since)
    np.testing.assert_allclose(
        chunk["waist"].points[0].positions, measured(rig, "waist"), atol=1e-6
    )


def test_stale_camera_holds_then_recovers(policy_mode):
    rig = policy_mode
    since = rig.marks()
    diag_mark = rig.diagnostics.mark()
    rig.feeder.camera_on = False
    holds = rig.holds(since)
    assert all(len(m.points) == 1 for m in holds.values())
    rig.diagnostic(lambda text: "camera" in text and "stale" in text, since=diag_mark)
    rig.process.assert_running()
    since = rig.marks()
    rig.feeder.camera_on = True
    rig.next_chunk(since)


@pytest.mark.parametrize(
    "fault, field, expected",
    [
        ("image", "step", "step"),
        ("image", "encoding", "yuv422_yuy2"),
        ("joint", "nan", "non-finite"),
        ("joint", "missing", "left_shoulder_pitch_joint"),
    ],
)
def test_bad_input_is_diagnosed_and_nothing_unsafe_published(policy_mode, fault, field, expected):
    rig = policy_mode
    since = rig.marks()
    diag_mark = rig.diagnostics.mark()
    setattr(rig.feeder, f"{fault}_fault", field)
    text = rig.diagnostic(lambda t: expected in t, since=diag_mark)
    assert "[1]" in text or "[2]" in text, text
    rig.holds(since)
    rig.process.assert_running()
    assert_only_holds_after_first_hold(rig, since)
    setattr(rig.feeder, f"{fault}_fault", None)
    rig.next_chunk(rig.marks())


def test_frame_of_another_size_is_used_and_reported(policy_mode):
    rig = policy_mode
    diag_mark = rig.diagnostics.mark()
    rig.feeder.image_fault = "size"
    text = rig.diagnostic(lambda t: "128x256" in t and "warmed up for 256x256" in t, since=diag_mark)
    assert "[1]" in text and "unexpected_size_images=0" not in text, text
    rig.next_chunk(rig.marks())
    rig.process.assert_running()
    rig.feeder.image_fault = None
    diag_mark = rig.diagnostics.mark()
    rig.diagnostic(lambda t: ": inputs" in t and "warmed up" not in t, since=diag_mark)


def test_joint_states_split_across_publishers_are_merged_and_a_silent_one_holds(policy_mode):
    rig = policy_mode
    rig.feeder.joint_fault = "split"
    chunk = rig.next_chunk(rig.marks())
    assert all(len(m.points) > 1 for m in chunk.values())
    since = rig.marks()
    diag_mark = rig.diagnostics.mark()
    rig.feeder.joint_fault = "hands_silent"
    text = rig.diagnostic(lambda t: "not updated within max_observation_age" in t, since=diag_mark)
    assert HAND_JOINTS[0] in text and "left_shoulder_pitch_joint" not in text, text
    rig.holds(since)
    rig.process.assert_running()
    assert_only_holds_after_first_hold(rig, since)
    rig.feeder.joint_fault = None
    rig.next_chunk(rig.marks())


def test_empty_instruction_stops_inference(policy_mode):
    rig = policy_mode
    diag_mark = rig.diagnostics.mark()
    since = rig.marks()
    rig.instruction.publish(String(data=""))
    rig.diagnostic(lambda t: "instruction is empty" in t, since=diag_mark)
    rig.holds(since)


def test_lifecycle_deactivate_holds_and_activate_resumes(policy_mode):
    rig = policy_mode
    since = rig.marks()
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
    rig.holds(since)
    rig.mode.wait_for(lambda m: m.data == "inactive")
    assert rig.change_state(Transition.TRANSITION_ACTIVATE)
    rig.next_chunk(rig.marks())


def test_everything_sent_to_controllers_was_safe(rig):
    total = 0
    for g, c in rig.controllers.items():
        for msg in c.messages:
            assert_safe(g, msg)
            total += 1
    assert total > 0
