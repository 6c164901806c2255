# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The test side of a running gr00t_node process: a robot feeding it (joint states and a camera), the controllers
it commands (every message checked by `InvariantChecker` on arrival), its diagnostics, and the operator's
inputs (instruction, e-stop, mode services, teleop). Used by the node, heartbeat and fault-campaign tests."""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from conftest import PACKAGE_ROOT, wait_until
from invariants import GroupSpec, InvariantChecker, is_hold

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
VOLATILE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
CONFIG = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())["/**"]["ros__parameters"]
GROUPS = {g: CONFIG["joint_groups"][g] for g in CONFIG["policy_groups"]}
SPECS = {
    g: GroupSpec(tuple(s["joints"]), *(np.array(s[k], float) for k in ("position_min", "position_max", "velocity_max")))
    for g, s in GROUPS.items()
}
HAND_JOINTS = [j for g in ("left_hand", "right_hand") for j in CONFIG["joint_groups"][g]["joints"]]
INSTRUCTION = "pick the pear from the counter and place it in the plate"
IMAGE = 256  # the resolution the policy warms up (compiles) for
MODE_SERVICES = {"policy": "enter_policy", "teleop": "enter_teleop", "hold": "hold"}


def healthy_positions() -> dict[str, float]:
    """Distinct in-range positions per joint (a mix-up of names shows), legs and neck included."""
    positions = {}
    for group in CONFIG["joint_groups"].values():
        lo = group.get("position_min", [-0.5] * len(group["joints"]))
        hi = group.get("position_max", [0.5] * len(group["joints"]))
        for k, (joint, a, b) in enumerate(zip(group["joints"], lo, hi)):
            positions[joint] = a + (b - a) * (0.4 + 0.03 * k)
    return positions


def ros_time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def is_policy(msg) -> bool:
    """A policy chunk: stamped with its start (holds and teleop forwards start on receipt, stamp 0)."""
    return msg.header.stamp.sec != 0 or msg.header.stamp.nanosec != 0


class Feeder:
    """The robot: joint states (every joint, in a new order each time, plus one the node does not use) and a
    camera (raw rgb8, or PNG on the compressed topic), stamped with the probe's clock. Tests change `positions`,
    switch streams off, offset stamps or replace messages through the hooks."""

    def __init__(self, probe, ns: str, checker: InvariantChecker, *, compressed: bool = False,
                 joint_hz: float = 100.0, camera_hz: float = 25.0):
        self.probe = probe
        self.checker = checker
        self.compressed = compressed
        self.image_pub = probe.publisher(Image, f"{ns}/camera/image_raw", qos_profile_sensor_data)
        self.compressed_pub = probe.publisher(CompressedImage, f"{ns}/camera/image_raw/compressed",
                                              qos_profile_sensor_data)
        self.joint_pub = probe.publisher(JointState, f"{ns}/joint_states", qos_profile_sensor_data)
        self.pixels = np.random.default_rng(1).integers(0, 256, (IMAGE, IMAGE, 3), np.uint8)
        self._image_bytes = self.pixels.tobytes()
        self.image_stamps: deque[int] = deque(maxlen=2000)  # of the frames published, in ns
        self._png = cv2.imencode(".png", cv2.cvtColor(self.pixels, cv2.COLOR_RGB2BGR))[1].tobytes()
        self._period_s = 1.0 / joint_hz
        self._camera_every = max(1, round(joint_hz / camera_hz))
        self._order = np.random.default_rng(0)
        self._lock = threading.Lock()
        self.reset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reset(self) -> None:
        with self._lock:
            self.positions = healthy_positions()
            self.camera_on = True
            self.joints_on = True
            self.joint_stamp_offset_s = 0.0
            self.image_stamp_offset_s = 0.0
            self.image_hook: Optional[Callable[[Image], Image]] = None
            self.joint_hook: Optional[Callable[[JointState], list[JointState]]] = None
        self.checker.measured(self.positions)

    def set_position(self, joint: str, value: float) -> None:
        with self._lock:
            self.positions = {**self.positions, joint: value}
        self.checker.measured(self.positions)

    def measured(self, group: str) -> np.ndarray:
        return np.array([self.positions[j] for j in GROUPS[group]["joints"]])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def image(self, stamp) -> Image:
        return Image(header=Header(stamp=stamp), height=IMAGE, width=IMAGE, encoding="rgb8", step=IMAGE * 3,
                     data=self._image_bytes)

    def now(self, offset_s: float = 0.0) -> Time:
        return ros_time(self.probe.now_ns() + int(offset_s * 1e9))

    def _joint_state(self, stamp: Time, positions: dict[str, float]) -> JointState:
        names = [*positions, "unrelated_joint"]
        values = [*positions.values(), 9.0]
        order = self._order.permutation(len(names))
        return JointState(header=Header(stamp=stamp), name=[names[i] for i in order],
                          position=[values[i] for i in order])

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self._period_s):
            tick += 1
            with self._lock:
                joints_on, positions = self.joints_on, self.positions
                camera_on = self.camera_on and tick % self._camera_every == 0
                joint_hook, image_hook = self.joint_hook, self.image_hook
                joint_offset, image_offset = self.joint_stamp_offset_s, self.image_stamp_offset_s
            if joints_on:
                msg = self._joint_state(self.now(joint_offset), positions)
                for out in (joint_hook(msg) if joint_hook else [msg]):
                    self.joint_pub.publish(out)
            if not camera_on:
                continue
            stamp = self.now(image_offset)
            self.image_stamps.append(stamp.sec * 1_000_000_000 + stamp.nanosec)
            if self.compressed:
                self.compressed_pub.publish(CompressedImage(header=Header(stamp=stamp), format="png", data=self._png))
            else:
                msg = self.image(stamp)
                self.image_pub.publish(image_hook(msg) if image_hook else msg)


class Controller:
    """One controller topic: every message is checked on arrival and kept with its receive time."""

    def __init__(self, probe, ns: str, group: str, checker: InvariantChecker):
        self.group = group
        self.checker = checker
        self.messages: list = []
        self.received_ns: list[int] = []
        self._cond = threading.Condition()
        topic = f"{ns}/{GROUPS[group]['controller']}/joint_trajectory"
        self.subscription = probe.node.create_subscription(JointTrajectory, topic, self._on_message, 10)

    def _on_message(self, msg, info: dict) -> None:
        received = info["received_timestamp"]  # the middleware's receipt (wall clock): not delayed by our GIL
        self.checker.check(self.group, msg, received)
        with self._cond:
            self.messages.append(msg)
            self.received_ns.append(received)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def wait_for(self, predicate, since: int, timeout: float) -> tuple[object, int]:
        """(message, receive time in ns) of the first message from index `since` on satisfying `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(since, len(self.messages)):
                    if predicate(self.messages[i]):
                        return self.messages[i], self.received_ns[i]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.group}: no matching trajectory within {timeout} s ({len(self.messages) - since} others)"
                    )
                self._cond.wait(remaining)

    def since(self, index: int) -> list:
        with self._cond:
            return list(self.messages[index:])


def status_text(status) -> str:
    values = " ".join(f"{kv.key}={kv.value}" for kv in status.values)
    return f"{status.name} [{status.level[0]}] {status.message} {values}"


class NodeRig:
    """Everything around one gr00t_node process in namespace `ns`, whose chunks have steps of `step_s`."""

    def __init__(self, probe, process, ns: str, *, step_s: float, compressed: bool = False, **feeder_rates):
        self.probe = probe
        self.process = process
        self.ns = ns
        self.node_name = f"{ns}/gr00t_node"
        self.step_s = step_s
        self.checker = InvariantChecker(SPECS)
        self.feeder = Feeder(probe, ns, self.checker, compressed=compressed, **feeder_rates)
        self.controllers = {g: Controller(probe, ns, g, self.checker) for g in GROUPS}
        self.diagnostics = probe.collect(DiagnosticArray, "/diagnostics", 50)
        self.mode_topic = probe.collect(String, f"{self.node_name}/mode", LATCHED)
        self.instruction = probe.publisher(String, f"{ns}/instruction", LATCHED)
        self.instruction_volatile = probe.publisher(String, f"{ns}/instruction", VOLATILE)
        self.estop_pubs = {
            "latched": probe.publisher(Bool, f"{ns}/estop", LATCHED),
            "volatile": probe.publisher(Bool, f"{ns}/estop", VOLATILE),
            "best_effort": probe.publisher(Bool, f"{ns}/estop", BEST_EFFORT),
        }
        self.teleop = {
            g: probe.publisher(JointTrajectory, f"{ns}/teleop/{s['controller']}/joint_trajectory", 10)
            for g, s in GROUPS.items()
        }
        self.estop_latencies_s: list[float] = []

    # ---- life of the rig ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.feeder.start()
        self.instruction.publish(String(data=INSTRUCTION))

        def active() -> bool:
            self.process.assert_running()
            return bool(self.mode_topic.messages) and self.mode_topic.messages[-1].data == "policy"

        wait_until(active, 120, "gr00t_node to configure and activate")
        for publisher in (*self.estop_pubs.values(), *self.teleop.values(), self.instruction_volatile):
            self.probe.wait_for_subscribers(publisher)
        self.checker.mode("policy")

    def close(self) -> int:
        """Stop the feeder and the node; the node's exit code."""
        self.feeder.stop()
        code = self.process.stop()
        for collector in (*self.controllers.values(), self.diagnostics, self.mode_topic):
            self.probe.node.destroy_subscription(collector.subscription)
        return code

    # ---- operator -----------------------------------------------------------------------------------------------
    def call(self, srv_type, name: str, request):
        return self.probe.call(srv_type, f"{self.node_name}/{name}", request)

    def enter(self, mode: str) -> bool:
        ok = self.call(Trigger, MODE_SERVICES[mode], Trigger.Request()).success
        if ok:
            self.checker.mode(mode)
        return ok

    def change_state(self, transition: int) -> bool:
        return self.call(ChangeState, "change_state", ChangeState.Request(transition=Transition(id=transition))).success

    def release_estop(self) -> None:
        for publisher in self.estop_pubs.values():
            publisher.publish(Bool(data=False))
        wait_until(lambda: self.call(Trigger, "resume", Trigger.Request()).success, 10, "~/resume to succeed")
        self.checker.estop_resumed()

    def healthy(self) -> None:
        """Clean inputs, e-stop released, policy mode, and a chunk flowing again."""
        self.feeder.reset()
        self.instruction.publish(String(data=INSTRUCTION))
        self.release_estop()
        assert self.enter("policy")
        self.policy_chunk(timeout=15.0)

    def estop(self, publisher: str = "latched", pulse_s: Optional[float] = None) -> float:
        """Engage the e-stop through `publisher`; returns the time until every group received its hold."""
        since = self.marks()
        sent = time.time_ns()
        self.estop_pubs[publisher].publish(Bool(data=True))
        if pulse_s is not None:
            time.sleep(pulse_s)
            self.estop_pubs[publisher].publish(Bool(data=False))
        self.checker.estop_engaged()
        latency = (max(self.hold_times(since).values()) - sent) * 1e-9
        self.estop_latencies_s.append(latency)
        return latency

    # ---- what the controllers received ------------------------------------------------------------------------
    def held(self, msg) -> bool:
        """A hold: one point at rest, one step after receipt."""
        return is_hold(msg, self.step_s)

    def marks(self) -> dict[str, int]:
        return {g: c.mark() for g, c in self.controllers.items()}

    def policy_chunk(self, since: Optional[dict[str, int]] = None, timeout: float = 10.0) -> dict:
        """The next policy trajectory of every group, all of the same chunk."""
        since = since or self.marks()
        first, _ = self.controllers["left_arm"].wait_for(is_policy, since["left_arm"], timeout)
        stamp = first.header.stamp
        return {
            g: c.wait_for(lambda m: m.header.stamp == stamp, since[g], 5.0)[0] for g, c in self.controllers.items()
        }

    def hold_times(self, since: dict[str, int], groups=None, timeout: float = 5.0) -> dict[str, int]:
        """Receive time (ns) of each group's first hold from `since` on."""
        return {g: self.controllers[g].wait_for(self.held, since[g], timeout)[1] for g in (groups or GROUPS)}

    def holds(self, since: dict[str, int], groups=None, timeout: float = 5.0) -> dict[str, JointTrajectory]:
        return {g: self.controllers[g].wait_for(self.held, since[g], timeout)[0] for g in (groups or GROUPS)}

    def no_policy_after_hold(self, since: dict[str, int]) -> None:
        for g, c in self.controllers.items():
            messages = c.since(since[g])
            first = next(i for i, m in enumerate(messages) if self.held(m))
            assert not any(is_policy(m) for m in messages[first:]), f"{g}: a policy chunk after the hold"

    def assert_no_violations(self, since: int = 0) -> None:
        new = self.checker.violations[since:]
        assert not new, "\n".join(map(str, new[:10]))

    # ---- diagnostics ----------------------------------------------------------------------------------------
    def diagnostic(self, predicate: Callable[[str], bool], since: int = 0, timeout: float = 5.0) -> str:
        """The first status text of this node from diagnostics message `since` on satisfying `predicate`."""
        def texts(array):
            return [status_text(s) for s in array.status if s.name.startswith(self.node_name)]

        array = self.diagnostics.wait_for(lambda a: any(predicate(t) for t in texts(a)), since=since, timeout=timeout)
        return next(t for t in texts(array) if predicate(t))

    def counter(self, key: str) -> int:
        """The newest value of a diagnostic counter of the node."""
        for array in reversed(self.diagnostics.messages):
            for status in array.status:
                if status.name.startswith(self.node_name):
                    for kv in status.values:
                        if kv.key == key:
                            return int(kv.value)
        raise AssertionError(f"no diagnostic value {key}")

    def counter_grows(self, key: str, before: int, timeout: float = 5.0) -> None:
        """A transient fault (one bad message while the healthy stream goes on) shows in its counter."""
        wait_until(lambda: self.counter(key) > before, timeout, f"diagnostic counter {key} to grow past {before}")

    def node_rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the gr00t_node process (the launch runner's child)."""
        launcher = self.process.process.pid
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        status = Path(f"/proc/{children[0]}/status").read_text().splitlines()
        values = {line.split(":")[0]: line.split()[1] for line in status if line.startswith(("VmRSS", "VmHWM"))}
        return int(values["VmRSS"]) / 1024, int(values["VmHWM"]) / 1024
