# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`make demo`: the whole pipeline on the embedded tiny model, fed from a bag, in well under a minute.

gr00t_node is started through the package's launch file (namespace /gr00t_demo, sim time) and a bag is replayed
into it with /clock: by default a small synthetic episode (moving colour pattern as the camera, smooth joint
states, an instruction) written once to the user's cache, or with `--bag` any converted episode or robot bag with
the same topic names. A listener prints the chunks each controller receives and the inference latencies; then the
e-stop is engaged to show the hold, the node is stopped and a one-line summary is printed. The exit code is 0 only
when every controller received at least one chunk.

Unless ROS_DOMAIN_ID is set, the demo runs in a private domain with localhost-only discovery.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Bool, Float64, String
from trajectory_msgs.msg import JointTrajectory

from gr00t_npu_node.bag.rosbag2.bagio import BagReader
from gr00t_npu_node.bag.dataset.layout import JointLayout, load_joint_layout
from gr00t_npu_node.bag.evaluation.live import NODE_NAME, replay_into_node
from gr00t_npu_node.bag.dataset.synth import write_synthetic_bag
from gr00t_npu_node.cache import build_once, cache_dir
from gr00t_npu_node.ros.messages import to_ns

NAMESPACE = "gr00t_demo"
STARTUP_TIMEOUT_S = 90.0
ESTOP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0
# The node's mode and e-stop topics are latched.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _isolate() -> str:
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, discovery {os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}"


def demo_bag(layout: JointLayout) -> Path:
    """The bundled synthetic bag, written once per user into the cache and then reused."""
    target = cache_dir() / "demo_bag"
    if not target.is_dir():
        print(f"writing the synthetic demo bag to {target}", flush=True)
    return build_once(target, lambda staging: write_synthetic_bag(staging, layout))


class ChunkListener:
    """Prints every chunk the controllers receive and every inference latency; counts chunks, holds and modes."""

    def __init__(self, layout: JointLayout, bag_start_ns: int) -> None:
        self._bag_start_ns = bag_start_ns
        self._condition = threading.Condition()
        self._chunk_stamps: list[int] = []
        self.chunks = {g: 0 for g in layout.policy_groups}
        self.holds = {g: 0 for g in layout.policy_groups}
        self.latencies_ms: list[float] = []
        self.modes: list[str] = []
        self._context = Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("gr00t_demo_listener", namespace=NAMESPACE, context=self._context)
        for group, topic in layout.command_topics.items():
            self.node.create_subscription(JointTrajectory, topic,
                                          lambda msg, g=group, t=topic: self._on_trajectory(g, t, msg), 10)
        self.node.create_subscription(Float64, f"{NODE_NAME}/inference_latency", self._on_latency, 10)
        self.node.create_subscription(String, f"{NODE_NAME}/mode", self._on_mode, LATCHED_QOS)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._executor.spin, daemon=True)
        self._spinner.start()

    def _on_trajectory(self, group: str, topic: str, msg: JointTrajectory) -> None:
        stamp = to_ns(msg.header.stamp)
        with self._condition:
            if stamp == 0:  # a hold: "stay where you are", one point
                self.holds[group] += 1
                self._condition.notify_all()
                return
            self.chunks[group] += 1
            if stamp not in self._chunk_stamps:
                self._chunk_stamps.append(stamp)
                print(f"chunk {len(self._chunk_stamps)}: image at t={(stamp - self._bag_start_ns) * 1e-9:.2f} s "
                      "of the bag", flush=True)
        q = np.array([p.positions for p in msg.points])
        v = np.array([p.velocities for p in msg.points])
        t = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        first = " ".join(f"{x:+.2f}" for x in q[0])
        print(f"  {topic:<38} {len(msg.points):2d} points  t={t[0]:.2f}..{t[-1]:.2f} s  q[0]=[{first}]"
              f"  |v|max={np.abs(v).max():.2f} rad/s", flush=True)

    def _on_latency(self, msg: Float64) -> None:
        self.latencies_ms.append(msg.data * 1e3)
        print(f"  inference latency {msg.data * 1e3:.1f} ms", flush=True)

    def _on_mode(self, msg: String) -> None:
        with self._condition:
            self.modes.append(msg.data)
            self._condition.notify_all()

    def wait_for(self, condition, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(condition, timeout)

    def close(self) -> None:
        self._executor.shutdown()
        self._spinner.join()  # a thread still inside rclpy at interpreter exit aborts the process
        self.node.destroy_node()
        self._context.try_shutdown()


def _start_node() -> subprocess.Popen:
    # use_sim_time: the bag's stamps are the bag's time, not the wall clock's.
    command = [sys.executable, "-m", "gr00t_npu_node.launch", "gr00t_gr1.launch.py",
               f"namespace:={NAMESPACE}", "use_sim_time:=true"]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def relay() -> None:
        for line in node.stdout:
            print(f"  [gr00t_node] {line.rstrip()}", flush=True)

    threading.Thread(target=relay, daemon=True).start()
    return node


def _stop_node(node: subprocess.Popen) -> int:
    if node.poll() is None:
        node.send_signal(signal.SIGINT)  # the node holds, then exits
    try:
        return node.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        node.kill()
        return node.wait()


def _show_estop(listener: ChunkListener) -> None:
    marks = dict(listener.holds)
    estop = listener.node.create_publisher(Bool, "estop", LATCHED_QOS)
    estop.publish(Bool(data=True))
    if not listener.wait_for(lambda: all(listener.holds[g] > marks[g] for g in marks), ESTOP_TIMEOUT_S):
        raise RuntimeError(f"no hold on every controller within {ESTOP_TIMEOUT_S} s of the e-stop")
    print("e-stop engaged: every controller received a single-point hold at the measured position", flush=True)


def run(bag: Path | None, rate: float) -> int:
    print(f"gr00t_npu_node demo ({_isolate()}); node namespace /{NAMESPACE}", flush=True)
    layout = load_joint_layout()
    bag = bag or demo_bag(layout)
    with BagReader(bag) as reader:
        bag_start_ns, bag_seconds = reader.start_ns, (reader.end_ns - reader.start_ns) * 1e-9
    print(f"replaying {bag} ({bag_seconds:.1f} s at rate {rate}) into gr00t_node on sim time", flush=True)
    listener = ChunkListener(layout, bag_start_ns)
    started = time.monotonic()
    status = 0
    with tempfile.TemporaryDirectory(prefix="gr00t_demo_") as scratch:
        node = _start_node()
        try:
            if not listener.wait_for(lambda: "policy" in listener.modes or node.poll() is not None,
                                     STARTUP_TIMEOUT_S):
                raise RuntimeError(f"gr00t_node did not become active within {STARTUP_TIMEOUT_S} s")
            if node.poll() is not None:
                raise RuntimeError(f"gr00t_node exited with code {node.returncode} before becoming active")
            print(f"gr00t_node active after {time.monotonic() - started:.1f} s\n", flush=True)
            replay_into_node(bag, Path(scratch) / "commands", layout, namespace=NAMESPACE, rate=rate,
                             start_timeout=STARTUP_TIMEOUT_S)
            _show_estop(listener)
        except (RuntimeError, TimeoutError) as err:
            print(f"demo failed: {err}", file=sys.stderr, flush=True)
            status = 1
        finally:
            code = _stop_node(node)
            listener.close()
    print(f"gr00t_node exited with code {code}; demo took {time.monotonic() - started:.1f} s")
    if missing := [g for g, n in listener.chunks.items() if n == 0]:
        print(f"demo failed: no chunk reached the controllers of {missing}", file=sys.stderr)
        status = 1
    latency = (f"latency p50 {np.percentile(listener.latencies_ms, 50):.1f} ms, "
               f"p95 {np.percentile(listener.latencies_ms, 95):.1f} ms over {len(listener.latencies_ms)} inferences"
               if listener.latencies_ms else "no inference latency received")
    per_group = ", ".join(f"{layout.command_topics[g]} {n}" for g, n in listener.chunks.items())
    print(f"summary: chunks per controller: {per_group}; {latency}")
    return status or code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gr00t_npu_node.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--bag", type=Path, help="replay this bag (a converted episode or a robot bag with "
                                                 "/camera/image_raw, /joint_states, /instruction) instead of the "
                                                 "bundled synthetic one")
    parser.add_argument("--rate", type=float, default=1.0, help="replay rate (default 1.0)")
    args = parser.parse_args(argv)
    if args.bag is not None and not args.bag.is_dir():
        parser.error(f"--bag {args.bag}: no such bag directory; convert an episode with `gr00t-npu-bag convert`")
    if args.rate <= 0:
        parser.error(f"--rate must be positive, got {args.rate}")
    return run(args.bag, args.rate)


if __name__ == "__main__":
    raise SystemExit(main())
