# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The node's own overhead: message in -> trajectories out, minus model time.

    python -m gr00t_npu_node.benchmarks.node_overhead --cycles 1000 [--json]

gr00t_node runs as its own process (through the launch runner, embedded tiny model, private ROS domain). Each
cycle publishes a joint state and a 256x256 rgb8 image with one stamp, then waits until all five controllers
have received the trajectory planned from that image. Two figures per cycle, both minus the model time (the
node's ~/inference_latency: Gr00tPolicy.get_action alone):

    node overhead  the node's own ~/node_overhead: from the middleware's receipt of the image in the node
                   (rmw received_timestamp, so rclpy's take, deserialization and executor dispatch count) to the
                   return of the last of the five controller publishes;
    end to end     from just before the benchmark publishes the image to the middleware's receipt of the last
                   of the five trajectories in the benchmark (both DDS hops added; the benchmark's own Python
                   executor is not counted).

Cycles are paced to the node's cadence (one chunk per step) so the worker never waits for its schedule.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

NAMESPACE = "gr00t_bench"
IMAGE_SIZE = 256
RATE_HZ = 20.0
WARMUP_CYCLES = 20
CYCLE_TIMEOUT_S = 5.0


def _config(folder: Path) -> Path:
    from gr00t_npu_node.ros.share import write_gr1_config

    return write_gr1_config(folder / "bench.yaml", action_rate_hz=RATE_HZ, execute_steps=1, max_observation_age=1.0)


class Bench:
    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float64, String
        from trajectory_msgs.msg import JointTrajectory

        from gr00t_npu_node.bag.dataset.layout import load_joint_layout

        layout = load_joint_layout()
        self.joints = [j for joints in layout.groups.values() for j in joints]
        command_topics = [layout.command_topics[g] for g in layout.policy_groups]
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self._rclpy = rclpy
        self.node = rclpy.create_node("overhead_bench", namespace=f"/{NAMESPACE}")
        self.image_pub = self.node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.joint_pub = self.node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self.node.create_publisher(String, "instruction", latched).publish(String(data="pick the pear"))
        self.image = Image(height=IMAGE_SIZE, width=IMAGE_SIZE, encoding="rgb8", step=IMAGE_SIZE * 3)
        self.image.data = np.random.default_rng(0).integers(0, 256, IMAGE_SIZE * IMAGE_SIZE * 3, np.uint8).tobytes()
        self.joint_state = JointState(name=self.joints, position=[0.0] * len(self.joints))
        self._image_cls, self._joint_cls = Image, JointState
        self._cond = threading.Condition()
        self._arrivals: dict[int, list[float]] = {}
        self._latencies: list[tuple[float, float]] = []
        self._overheads: list[tuple[float, float]] = []
        self._mode: list[str] = []
        for topic in command_topics:
            self.node.create_subscription(JointTrajectory, topic, self._on_trajectory, 10)
        self.node.create_subscription(Float64, "gr00t_node/inference_latency", self._on_latency, 10)
        self.node.create_subscription(Float64, "gr00t_node/node_overhead", self._on_overhead, 10)
        self.node.create_subscription(String, "gr00t_node/mode", self._on_mode, latched)
        self.controllers = len(command_topics)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def _on_trajectory(self, msg, info) -> None:
        now = info["received_timestamp"] * 1e-9  # system clock, like time.time_ns() in cycle()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self._cond:
            self._arrivals.setdefault(stamp, []).append(now)
            self._cond.notify_all()

    def _on_latency(self, msg) -> None:
        with self._cond:
            self._latencies.append((time.time_ns() * 1e-9, msg.data))
            self._cond.notify_all()

    def _on_overhead(self, msg) -> None:
        with self._cond:
            self._overheads.append((time.time_ns() * 1e-9, msg.data))
            self._cond.notify_all()

    def _on_mode(self, msg) -> None:
        with self._cond:
            self._mode.append(msg.data)
            self._cond.notify_all()

    def wait_active(self, node: subprocess.Popen, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: "policy" in self._mode or node.poll() is not None, timeout):
                raise RuntimeError(f"gr00t_node not active within {timeout} s")
        if node.poll() is not None:
            raise RuntimeError(f"gr00t_node exited with code {node.returncode}")

    def cycle(self, step_ns: int) -> tuple[float, float, float] | None:
        """(end_to_end_s, model_s, node_overhead_s) of one image, None when no trajectories came (a late chunk)."""
        stamp = self.node.get_clock().now()
        self.joint_state.header.stamp = self.image.header.stamp = stamp.to_msg()
        wanted = {stamp.nanoseconds + k * step_ns for k in range(16)}  # start = image stamp + skipped steps
        published = time.time_ns() * 1e-9
        self.joint_pub.publish(self.joint_state)
        self.image_pub.publish(self.image)

        def done() -> bool:
            reported = all(any(t >= published for t, _ in values[-3:]) for values in (self._latencies, self._overheads))
            return reported and any(len(self._arrivals.get(s, ())) >= self.controllers for s in wanted)

        with self._cond:
            if not self._cond.wait_for(done, CYCLE_TIMEOUT_S):
                return None
            arrivals = next(self._arrivals.pop(s) for s in wanted if len(self._arrivals.get(s, ())) >= self.controllers)
            model_s = next(v for t, v in reversed(self._latencies) if t >= published)
            overhead_s = next(v for t, v in reversed(self._overheads) if t >= published)
        return max(arrivals) - published, model_s, overhead_s

    def close(self) -> None:
        self.executor.shutdown()
        self._spinner.join()  # a thread still inside rclpy at interpreter exit aborts the process
        self.node.destroy_node()
        self._rclpy.try_shutdown()


def _percentiles(values: list[float]) -> dict[str, float]:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50_ms": p50 * 1e3, "p90_ms": p90 * 1e3, "p99_ms": p99 * 1e3, "max_ms": max(values) * 1e3}


def run(cycles: int) -> dict:
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    step_ns = int(1e9 / RATE_HZ)
    with tempfile.TemporaryDirectory(prefix="gr00t_bench_") as folder:
        log_path = Path(folder) / "node.log"
        command = [sys.executable, "-m", "gr00t_npu_node.launch", "gr00t_gr1.launch.py",
                   f"namespace:={NAMESPACE}", f"config_file:={_config(Path(folder))}"]
        with open(log_path, "wb") as log:
            node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        bench = Bench()
        try:
            bench.wait_active(node, 180.0)
            end_to_end, model, node_overhead, missed = [], [], [], 0
            for index in range(WARMUP_CYCLES + cycles):
                next_start = time.perf_counter() + step_ns * 1e-9
                result = bench.cycle(step_ns)
                if index >= WARMUP_CYCLES:
                    if result is None:
                        missed += 1
                    else:
                        end_to_end.append(result[0])
                        model.append(result[1])
                        node_overhead.append(result[2])
                # Pace to the node's cadence (a new chunk one step after the last start) so it never waits.
                time.sleep(max(0.0, next_start - time.perf_counter()) + 0.002)
        except RuntimeError:
            print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            bench.close()
            node.send_signal(2)
            node.wait(30)
    return {
        "cycles": len(end_to_end),
        "missed_cycles": missed,
        "image": f"{IMAGE_SIZE}x{IMAGE_SIZE} rgb8",
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "node_overhead": _percentiles(node_overhead),
        "end_to_end_overhead": _percentiles([e - m for e, m in zip(end_to_end, model)]),
        "end_to_end": _percentiles(end_to_end),
        "model": _percentiles(model),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gr00t_npu_node.benchmarks.node_overhead", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    result = run(args.cycles)
    print(f"gr00t_node overhead, {result['cycles']} cycles ({result['missed_cycles']} without output), "
          f"{result['image']}, {result['machine']}")
    print(f"{'':<40}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  (ms)")
    for key, label in (
        ("node_overhead", "node overhead (in -> out - model)"),
        ("end_to_end_overhead", "with both DDS hops (- model)"),
        ("end_to_end", "image published -> 5 trajectories"),
        ("model", "model (get_action)"),
    ):
        row = result[key]
        print(f"{label:<40}" + "".join(f"{row[k]:>8.2f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
