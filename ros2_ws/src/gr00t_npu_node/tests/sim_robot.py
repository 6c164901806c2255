# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""A robot for replays with the loop closed: for each commanded group it executes trajectories the way a
joint_trajectory_controller does (a new trajectory replaces the old one on receipt, starting from the state it
was in then; stamp 0 means "start on receipt"; points already due are skipped; linear between points, resting at
the last), its joints following no faster than their velocity limits as drives do, and it publishes joint
states on the sim clock like a joint_state_broadcaster. Joints nobody commands stay where they started.
`SimulatedRobotProcess` runs one in a process of its own."""
from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

NS = 1_000_000_000
STATE_PERIOD_S = 0.01  # joint states every 10 ms of sim time


@dataclass
class _Running:
    times_ns: np.ndarray  # due time of the state at receipt, then of each point
    positions: np.ndarray  # [1 + points, joints]


class SimulatedRobot:
    def __init__(self, namespace: str, groups: dict[str, tuple[str, ...]], command_topics: dict[str, str],
                 initial: dict[str, float], velocity_max: dict[str, float]):
        """`groups` joint names per commanded group, `command_topics` their trajectory topics (absolute),
        `initial` the position of every joint the robot reports, `velocity_max` the commanded joints' limits."""
        self._groups = groups
        self._positions = dict(initial)
        self._velocity_max = velocity_max
        self._advanced_ns = 0
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("simulated_robot", namespace=namespace, context=self.context,
                                      parameter_overrides=[Parameter("use_sim_time", value=True)])
        self._publisher = self.node.create_publisher(JointState, "joint_states", 10)
        self._subscriptions = [
            self.node.create_subscription(JointTrajectory, topic, lambda msg, g=group: self._command(g, msg), 10)
            for group, topic in command_topics.items()
        ]
        self.node.create_timer(STATE_PERIOD_S, self._publish_state)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> None:
        """Until the node subscribes to the joint states and publishes every command topic (discovery takes up
        to a second or so: a replay started before would leave the node without joint states at first)."""
        deadline = time.monotonic() + timeout_s
        while self._publisher.get_subscription_count() == 0 or any(
            s.get_publisher_count() == 0 for s in self._subscriptions
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node did not connect to the simulated robot within {timeout_s} s")
            time.sleep(0.02)

    def _now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _command(self, group: str, msg: JointTrajectory) -> None:
        now = self._now_ns()
        with self._lock:
            self._advance(now)
            order = [list(msg.joint_names).index(j) for j in self._groups[group]]
            start = msg.header.stamp.sec * NS + msg.header.stamp.nanosec or now
            due = [start + p.time_from_start.sec * NS + p.time_from_start.nanosec for p in msg.points]
            ahead = [i for i, t in enumerate(due) if t > now] or [len(due) - 1]
            times = [now] + [max(due[i], now + 1) for i in ahead]
            current = [self._positions[j] for j in self._groups[group]]
            points = [current] + [[msg.points[i].positions[k] for k in order] for i in ahead]
            self._running[group] = _Running(np.array(times, dtype=np.int64), np.array(points))

    def _advance(self, now_ns: int) -> None:
        dt = max(now_ns - self._advanced_ns, 0) / NS if self._advanced_ns else 0.0
        self._advanced_ns = now_ns
        for group, running in self._running.items():
            for joint, column in zip(self._groups[group], running.positions.T):
                wanted = np.interp(now_ns, running.times_ns, column) - self._positions[joint]
                reach = self._velocity_max[joint] * dt
                self._positions[joint] += float(np.clip(wanted, -reach, reach))

    def _publish_state(self) -> None:
        now = self._now_ns()
        if now == 0:  # no /clock yet
            return
        with self._lock:
            self._advance(now)
            names, positions = list(self._positions), list(self._positions.values())
        msg = JointState(name=names, position=positions)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self._publisher.publish(msg)

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join()
        self.node.destroy_node()
        self.context.try_shutdown()


class SimulatedRobotProcess:
    """A `SimulatedRobot` in a process of its own, so that the test process's other threads (the bag player, the
    recorder) and its garbage collector cannot hold its joint states back: in the test process, a CI run saw them
    stall for about 0.6 s of wall time, and the node rightly held."""

    def __init__(self, *args, **kwargs):
        context = multiprocessing.get_context("spawn")
        self._connected, self._stop = context.Event(), context.Event()
        self._process = context.Process(target=_serve, args=(args, kwargs, self._connected, self._stop), daemon=True)
        self._process.start()

    def wait_connected(self, timeout_s: float) -> None:
        """As `SimulatedRobot.wait_connected` (the robot's process starts first: about a second)."""
        if not self._connected.wait(timeout_s):
            raise TimeoutError(f"the node did not connect to the simulated robot within {timeout_s} s")

    def close(self) -> None:
        self._stop.set()
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(args: tuple, kwargs: dict, connected, stop) -> None:
    robot = SimulatedRobot(*args, **kwargs)
    try:
        robot.wait_connected(timeout_s=float("inf"))
        connected.set()
        stop.wait()
    finally:
        robot.close()
