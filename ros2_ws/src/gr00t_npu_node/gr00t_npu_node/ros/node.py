# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""gr00t_node: camera, joint states and instruction in; timed action chunks out to the joint controllers.

Lifecycle: configure loads the checkpoint and warms the model up, activate starts the inference worker and
the command output, deactivate holds and stops it. With `autostart` (default) the node configures and
activates itself. Failures are reported on /diagnostics and the node stays up (no crash loop).

Interfaces (relative names resolve in the node's namespace; `~/` is the node's private namespace):
  subscribes  <image_topic> sensor_msgs/Image, <compressed_image_topic> sensor_msgs/CompressedImage,
              <joint_states_topic> sensor_msgs/JointState, <instruction_topic> std_msgs/String (latched),
              <estop_topic> std_msgs/Bool (latched or not, reliable or best effort), <policy_enable_topic>
              std_msgs/Bool, joint_groups.<g>.teleop_topic trajectory_msgs/JointTrajectory
  publishes   joint_groups.<g>.topic trajectory_msgs/JointTrajectory (only through the safety gate),
              ~/action_chunk std_msgs/Float32MultiArray, ~/inference_latency std_msgs/Float64 (s),
              ~/node_overhead std_msgs/Float64 (s: image received or cycle start -> last controller
              publish, minus inference),
              ~/mode std_msgs/String (latched), /diagnostics diagnostic_msgs/DiagnosticArray
  services    ~/enter_policy, ~/enter_teleop, ~/hold std_srvs/srv/Trigger (the mode; refused while e-stopped),
              ~/resume std_srvs/srv/Trigger (clears a released e-stop; the mode becomes hold)

Threads: the main executor runs the inputs, teleop and diagnostics; the e-stop, policy enable, ~/resume,
the mode services and the watchdog run in a callback group of their own on a second executor thread (a flood on one
input cannot delay an e-stop); inference runs in the worker thread. Every input arrives raw and is read under
a size cap, so a huge or malformed message is a counted fault, never an exception in the executor.
"""
from __future__ import annotations

import gc
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidHandle
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from gr00t_npu_node.ros import messages
from gr00t_npu_node.ros.diagnostics import NodeDiagnostics
from gr00t_npu_node.ros.executors import ExcludingExecutor, GroupExecutor
from gr00t_npu_node.ros.inputs import CLOCK_JUMP_NS, InputBuffer
from gr00t_npu_node.ros.joint_map import JointStateMapper
from gr00t_npu_node.ros.monitor import ERROR, Monitor
from gr00t_npu_node.ros.params import (
    NodeParams,
    declare_scalar,
    describe_parameters,
    group_joints,
    read_params,
    unknown_parameters,
)
from gr00t_npu_node.ros.policy_loader import load_policy
from gr00t_npu_node.ros.receiving import (
    ANY_PUBLISHER_QOS,
    LATCHED_QOS,
    MAX_INSTRUCTION_BYTES,
    MAX_JOINT_STATE_BYTES,
    Receiver,
    expected_mismatch,
    image_bytes,
    trajectory_bytes,
)
from gr00t_npu_node.ros.safety import CommandTiming, SafetyGate
from gr00t_npu_node.ros.worker import InferenceWorker

NODE_NAME = "gr00t_node"
JOINT_STATE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
COMMAND_IN_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
WATCHDOG_S = 0.05
SPIN_WAKE_S = 0.1  # the executor returns to Python this often so SIGINT/SIGTERM are handled (hold, then exit)
SHUTDOWN_WAIT_S = 2.0  # for callbacks still in flight; a stuck one must not keep the process (and a launcher) up


class Gr00tNode(LifecycleNode):
    def __init__(self, **kwargs: Any):
        super().__init__(NODE_NAME, **kwargs)
        self._monitor = Monitor(self.get_logger())
        self._lifecycle = "unconfigured"
        self._params: Optional[NodeParams] = None
        self._policy = None
        self._inputs: Optional[InputBuffer] = None
        self._gate: Optional[SafetyGate] = None
        self._worker: Optional[InferenceWorker] = None
        self._entities: list[Any] = []
        self._published_mode: Optional[str] = None
        self._last_rx_ns: dict[str, int] = {}
        self._mode_lock = threading.Lock()
        self._last_now_ns = 0
        self.safety_group = MutuallyExclusiveCallbackGroup()

        declare_scalar(self, "autostart")
        self._diagnostics = NodeDiagnostics(self.get_fully_qualified_name(), self._monitor)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._mode_pub = self.create_publisher(String, "~/mode", LATCHED_QOS)
        for mode, service in (("policy", "~/enter_policy"), ("teleop", "~/enter_teleop"), ("hold", "~/hold")):
            self.create_service(
                Trigger, service, lambda request, response, mode=mode: self._on_mode_request(mode, response),
                callback_group=self.safety_group,
            )
        self.create_service(Trigger, "~/resume", self._on_resume, callback_group=self.safety_group)
        self.create_timer(declare_scalar(self, "diagnostics_period"), self._publish_diagnostics)

    def _publish_diagnostics(self) -> None:
        model = self._policy.description if self._policy is not None else "not loaded"
        self._diagnostics_pub.publish(self._diagnostics.report(
            self._now_ns(), self._lifecycle, self._params, model, self._inputs, self._gate
        ))

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def autostart(self) -> None:
        if self.get_parameter("autostart").value and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as err:  # a bad checkpoint or config must not crash-loop the robot's launch
            self._monitor.fault("lifecycle", f"configure failed: {err}", ERROR)
            self._teardown()
            self._lifecycle = "unconfigured (configure failed)"
            return TransitionCallbackReturn.FAILURE
        self._monitor.clear("lifecycle")
        self._lifecycle = "inactive"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._gate.activate(self._params.initial_mode)
        now = self._now_ns()
        self._last_rx_ns = {key: max(self._last_rx_ns.get(key, 0), now) for key in self._watched_inputs()}
        self._worker.start()
        self._lifecycle = "active"
        self._publish_mode()
        topics = ", ".join(self.resolve_topic_name(g.topic) for g in self._params.groups.values())
        dry = " (dry run: controllers are not commanded)" if self._params.dry_run else ""
        self.get_logger().info(f"active in mode {self._gate.mode}{dry}; commanding {topics}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._lifecycle = "inactive"
        self._stop_output()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        self._lifecycle = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._monitor.fault("lifecycle", f"error in lifecycle state {state.label}", ERROR)
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Hold, stop the output and release the node's entities."""
        self.finalize()
        self._teardown()

    def finalize(self) -> None:
        """Hold and stop the output for good (what SIGINT/SIGTERM do first, before the process exits)."""
        self._lifecycle = "finalized"
        self._stop_output()

    def report_callback_error(self, err: Exception) -> None:
        self._monitor.count("callback_errors")
        self._monitor.fault("node", f"callback failed: {err!r}", ERROR)
        self.get_logger().error("".join(traceback.format_exception(err)))

    def _stop_output(self) -> None:
        # The gate first: the hold goes out at once and a chunk still being computed is refused, instead of the
        # hold waiting for that inference and the chunk slipping out before it.
        if self._gate is not None:
            self._gate.deactivate()
        self._publish_mode()
        if self._worker is not None:
            self._worker.stop()

    def _configure(self) -> None:
        p = self._params = read_params(self)
        self._report_unknown_parameters()
        started = time.monotonic()
        policy = load_policy(p)
        loaded = time.monotonic()
        self._check_policy(policy, p)
        rtc_mode = (p.rtc_mode or policy.default_rtc_mode) if p.real_time_chunking else None
        policy.warmup(height=p.image_height, width=p.image_width, rtc_mode=rtc_mode)
        self._policy = policy
        self.get_logger().info(
            f"loaded {policy.description} in {loaded - started:.1f} s, warmed up in {time.monotonic() - loaded:.1f} s"
        )
        state_joints = {g: group_joints(self, g) for g in policy.state_dims}
        mapper = JointStateMapper({**state_joints, **{g: grp.joints for g, grp in p.groups.items()}})
        velocity_limits = {j: float(v) for grp in p.groups.values() for j, v in zip(grp.joints, grp.velocity_max)}
        self._inputs = inputs = InputBuffer(mapper, velocity_limits)
        timing = CommandTiming(p.step_s, p.max_clock_skew, p.max_observation_age, p.max_trajectory_points)
        self._gate = SafetyGate(
            self, p.groups, timing=timing, dry_run=p.dry_run, measured=inputs.latest_measured,
            now_ns=self._now_ns, monitor=self._monitor,
        )
        if p.policy_enable_topic:
            self._gate.set_policy_enabled(False, f"waiting for true on {p.policy_enable_topic}")
        chunk_pub = self._add(self.create_publisher(Float32MultiArray, "~/action_chunk", 1))
        latency_pub = self._add(self.create_publisher(Float64, "~/inference_latency", 10))
        overhead_pub = self._add(self.create_publisher(Float64, "~/node_overhead", 10))

        def publish_monitors(chunk: Optional[np.ndarray], latency_s: float, overhead_s: Optional[float]) -> None:
            latency_pub.publish(Float64(data=latency_s))
            if overhead_s is not None:
                overhead_pub.publish(Float64(data=overhead_s))
            if chunk is not None:
                chunk_pub.publish(messages.action_chunk(chunk))

        self._worker = InferenceWorker(
            policy=policy, params=p, rtc_mode=rtc_mode, inputs=inputs, mapper=mapper, gate=self._gate,
            monitor=self._monitor, now_ns=self._now_ns, publish_monitors=publish_monitors,
        )
        self._subscribe(p)
        # On the steady clock: a paused simulation clock must not pause the watchdog.
        self._add(self.create_timer(
            WATCHDOG_S, self._watchdog, callback_group=self.safety_group, clock=Clock(clock_type=ClockType.STEADY_TIME)
        ))
        # What is alive now (torch, rclpy, the policy: some 300,000 objects with the tiny model) lives as long as the
        # configuration: a full garbage collection over it stops every thread of the node, the safety thread's holds
        # included, for about 100 ms. Frozen, it is out of the collector's way until cleanup.
        gc.collect()
        gc.freeze()

    def _report_unknown_parameters(self) -> None:
        # rclpy keeps the params files' and -p values in `_parameter_overrides` and offers no public accessor for
        # those nobody declared, which is exactly what a misspelled parameter is.
        given = getattr(self, "_parameter_overrides", {})
        declared = self.list_parameters([], 0).names
        unknown = unknown_parameters(given, declared)
        if unknown:
            self._monitor.fault("parameters", f"ignored, gr00t_node has no parameter {'; '.join(unknown)}")
        else:
            self._monitor.clear("parameters")

    def _check_policy(self, policy, p: NodeParams) -> None:
        if len(policy.video_keys) != 1:
            raise ValueError(
                f"the checkpoint expects {len(policy.video_keys)} cameras {policy.video_keys}; this node feeds one"
            )
        for g, group in p.groups.items():
            dim = policy.action_dims.get(g)
            if dim != len(group.joints):
                raise ValueError(
                    f"policy_groups has {g} with {len(group.joints)} joints but the checkpoint's action groups are "
                    f"{dict(policy.action_dims)}; fix joint_groups.{g}.joints or policy_groups"
                )
        for g, dim in policy.state_dims.items():
            if len(group_joints(self, g)) != dim:
                raise ValueError(f"joint_groups.{g}.joints must name {dim} joints (the checkpoint's state width)")
        horizon = policy.action_horizon
        if p.execute_steps > horizon or p.handover_steps > horizon:
            raise ValueError(f"execute_steps and handover_steps must be <= the action horizon {horizon}")

    def _subscribe(self, p: NodeParams) -> None:
        self._receiver = Receiver(self, self._monitor, p.max_clock_skew, keep=self._add)
        if p.image_topic:
            self._receiver.subscribe(
                Image, p.image_topic, qos_profile_sensor_data, "camera", image_bytes(p.max_image_pixels),
                lambda msg, info: self._on_image(msg, info, False),
            )
        if p.compressed_image_topic:
            self._receiver.subscribe(
                CompressedImage, p.compressed_image_topic, qos_profile_sensor_data, "camera",
                image_bytes(p.max_image_pixels),
                lambda msg, info: self._on_image(msg, info, True),
            )
        self._receiver.subscribe(
            JointState, p.joint_states_topic, JOINT_STATE_QOS, "joint_states", MAX_JOINT_STATE_BYTES,
            self._on_joint_state,
        )
        for qos in ANY_PUBLISHER_QOS:
            self._receiver.subscribe(
                String, p.instruction_topic, qos, "instruction", MAX_INSTRUCTION_BYTES,
                self._on_instruction, on_malformed=self._on_bad_instruction,
            )
            self._add(self.create_subscription(
                Bool, p.estop_topic, self._on_estop, qos, callback_group=self.safety_group,
                event_callbacks=expected_mismatch(self, p.estop_topic, qos),
            ))
        if p.policy_enable_topic:
            self._add(self.create_subscription(
                Bool, p.policy_enable_topic, self._on_policy_enable, COMMAND_IN_QOS, callback_group=self.safety_group,
            ))
        for g, group in p.groups.items():
            self._receiver.subscribe(
                JointTrajectory, group.teleop_topic, COMMAND_IN_QOS, "teleop",
                trajectory_bytes(p.max_trajectory_points, len(group.joints)),
                lambda msg, info, g=g: self._on_teleop(g, msg),
            )

    def _on_instruction(self, msg: String, info: dict) -> None:
        if "\ufffd" in msg.data:  # rclpy decodes bytes that are not UTF-8 as U+FFFD: the text was corrupted
            topic = self._params.instruction_topic
            self._receiver.reject("instruction", f"the instruction on {topic} is not valid UTF-8")
            self._on_bad_instruction("the instruction is not valid UTF-8")
        else:
            self._inputs.put_instruction(msg.data)

    def _on_bad_instruction(self, problem: str) -> None:
        self._inputs.put_instruction("", f"{problem}; publish the task as UTF-8 text")

    def _on_joint_state(self, msg: JointState, info: dict) -> None:
        now = self._now_ns()
        stamp_ns = self._receiver.stamp_ns("joint_states", msg.header.stamp, now)
        if stamp_ns is None:
            return
        try:
            conflict = self._inputs.put_joint_state(msg, stamp_ns, now)
        except ValueError as err:
            self._receiver.reject("joint_states", str(err))
            return
        if conflict is not None:
            self._monitor.count("joint_state_jumps")
            publishers = self.count_publishers(self._params.joint_states_topic)
            self._monitor.fault(
                "joint_states", f"{conflict}; {publishers} publisher(s) on {self._params.joint_states_topic}", ERROR
            )

    def _add(self, entity: Any) -> Any:
        self._entities.append(entity)
        return entity

    def _teardown(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        for entity in self._entities:
            entity.destroy()
        self._entities = []
        if self._gate is not None:
            self._gate.close(self)
        self._gate = self._worker = self._inputs = self._policy = None
        gc.unfreeze()  # what the configuration kept alive may be garbage now

    # ---- callbacks --------------------------------------------------------------------------------------------
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _watched_inputs(self) -> list[str]:
        keys = ["estop", "policy_enable"]
        return keys + [f"teleop:{g}" for g in (self._params.groups if self._params else ())]

    def _on_image(self, msg: Image | CompressedImage, info: dict, compressed: bool) -> None:
        now = self._now_ns()
        stamp_ns = self._receiver.stamp_ns("camera", msg.header.stamp, now)
        if stamp_ns is not None:
            received_ns = info.get("received_timestamp") or time.time_ns()
            self._inputs.put_image(msg, stamp_ns, compressed, received_ns, now)

    def _on_estop(self, msg: Bool) -> None:
        self._last_rx_ns["estop"] = self._now_ns()
        self._gate.set_estop(msg.data, f"{self._params.estop_topic} is true")
        self._publish_mode()
        self._inputs.wake()

    def _on_policy_enable(self, msg: Bool) -> None:
        self._last_rx_ns["policy_enable"] = self._now_ns()
        self._gate.set_policy_enabled(msg.data, f"{self._params.policy_enable_topic} is false")
        self._inputs.wake()

    def _on_teleop(self, group: str, msg: JointTrajectory) -> None:
        self._last_rx_ns[f"teleop:{group}"] = self._now_ns()
        self._gate.forward_teleop(group, msg)

    def _on_mode_request(self, mode: str, response: Trigger.Response) -> Trigger.Response:
        if self._gate is None:
            response.success, response.message = False, f"cannot enter {mode}: node is {self._lifecycle}"
        else:
            response.success, response.message = self._gate.set_mode(mode)
            self._publish_mode()
            self._inputs.wake()
        if response.success:
            self._monitor.clear("mode")
            self.get_logger().info(response.message)
        else:
            self._monitor.count("refused_mode_requests")
            self._monitor.fault("mode", f"{mode} refused: {response.message}")
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._gate is None:
            response.success, response.message = False, f"node is {self._lifecycle}"
        else:
            response.success, response.message = self._gate.resume()
            self._publish_mode()
        return response

    def _watchdog(self) -> None:
        """Heartbeat timeouts (e-stop, policy enable, teleop), stale policy inputs, joints outside their limits
        and the clock going back, checked every WATCHDOG_S."""
        p, gate = self._params, self._gate
        if self._lifecycle != "active":
            return
        now = self._now_ns()
        if now < self._last_now_ns - CLOCK_JUMP_NS:
            self._restart_timeline(self._last_now_ns, now)
        self._last_now_ns = now

        def silent_for(key: str) -> float:
            return (now - self._last_rx_ns.get(key, now)) * 1e-9

        if p.estop_timeout > 0 and silent_for("estop") > p.estop_timeout:
            gate.set_estop(True, f"no message on {p.estop_topic} for {p.estop_timeout} s")
            self._publish_mode()
        enable_timeout = p.policy_enable_timeout if p.policy_enable_topic else 0.0
        if enable_timeout > 0 and silent_for("policy_enable") > enable_timeout:
            gate.set_policy_enabled(False, f"no message on {p.policy_enable_topic} for {p.policy_enable_timeout} s")
        if gate.mode == "teleop":
            for g, group in p.groups.items():
                if not gate.holding(g) and silent_for(f"teleop:{g}") > p.teleop_timeout:
                    self._monitor.fault("teleop", f"{group.teleop_topic} silent for {p.teleop_timeout} s: {g} holds")
                    gate.hold("teleop timeout", [g])
        elif gate.policy_may_command and not gate.holding():
            self._hold_if_stale("camera", self._inputs.latest_image_fresh_ns(), now)
            self._hold_if_stale("joint_states", self._inputs.latest_joint_fresh_ns(), now)
        gate.check_measured_limits()

    def _restart_timeline(self, before_ns: int, now_ns: int) -> None:
        """The clock went back (a bag replayed again, --loop, a simulation reset): the inputs, the chunk schedule
        and the heartbeats belong to the old timeline, and a chunk computed from them must not go out."""
        self._monitor.count("clock_jumps_back")
        self.get_logger().warning(
            f"the clock went back {(before_ns - now_ns) * 1e-9:.3f} s: inputs, chunk schedule and heartbeats restart"
        )
        self._gate.supersede_chunks()
        self._inputs.reset()
        self._worker.restart_schedule()
        self._last_rx_ns = {key: now_ns for key in self._last_rx_ns}

    def _hold_if_stale(self, source: str, fresh_ns: Optional[int], now_ns: int) -> None:
        """`fresh_ns`: the older of the input's stamp and its arrival; None: never received (nothing was
        commanded from it, and the worker reports the absence)."""
        if fresh_ns is None:
            return
        age_s = (now_ns - fresh_ns) * 1e-9
        if age_s > self._params.max_observation_age and not self._gate.holding():
            self._monitor.fault(source, f"input stale ({age_s:.3f} s > max_observation_age): holding")
            self._gate.hold(f"{source} stale")

    def _publish_mode(self) -> None:
        with self._mode_lock:  # called from the main and the safety thread
            mode = self._gate.mode if self._gate is not None and self._lifecycle == "active" else "inactive"
            if mode != self._published_mode:
                self._mode_pub.publish(String(data=mode))
                self._published_mode = mode


def main(args: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if args is None else args
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    if "-h" in own or "--help" in own:
        print(f"usage: gr00t_node [--ros-args --params-file FILE -p NAME:=VALUE ...]\n\n{__doc__.split(chr(10))[0]}\n\n"
              f"Parameters (name, default, meaning; the package's config/gr1.yaml sets them for the GR1):\n"
              f"{describe_parameters()}")
        return 0
    # rclpy's own SIGINT handler shuts the context down before a hold could be commanded, and an exception raised
    # by a Python handler can surface inside rclpy's C++ calls; so a signal only sets a flag the loop checks.
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = Gr00tNode()
    try:
        spin(node, stop_requested)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def spin(node: Gr00tNode, stop_requested: threading.Event) -> None:
    """Run `node` (autostart included) until `stop_requested` is set or the context shuts down, then hold and
    stop it. The safety callback group gets an executor thread of its own."""
    executor = ExcludingExecutor(node.safety_group, context=node.context)
    executor.add_node(node)
    safety_executor = GroupExecutor(node, node.safety_group)

    def run(spin_once: Callable[[float], None]) -> None:
        while node.context.ok() and not stop_requested.is_set():
            try:
                spin_once(SPIN_WAKE_S)
            except InvalidHandle:
                # The other thread destroyed an entity this one was waiting on (a lifecycle transition): the next
                # wait leaves it out.
                continue
            except Exception as err:  # one failing callback must not take the hold and the diagnostics down
                node.report_callback_error(err)

    safety_thread = threading.Thread(target=run, args=(safety_executor.spin_once,), name="gr00t_safety", daemon=True)
    safety_thread.start()
    try:
        node.autostart()
        run(executor.spin_once)
    finally:
        stop_requested.set()
        node.finalize()
        safety_thread.join(SHUTDOWN_WAIT_S)
        node.stop()
        safety_executor.shutdown(timeout_sec=SHUTDOWN_WAIT_S)
        executor.shutdown(timeout_sec=SHUTDOWN_WAIT_S)


if __name__ == "__main__":
    raise SystemExit(main())
