"""`make demo`: the whole pipeline on the embedded tiny model, in well under a minute.

gr00t_node is started through the package's launch file (namespace /gr00t_demo), next to a simulated GR1: a
synthetic 256x256 camera at 20 Hz and joint states at 100 Hz from a robot that follows whatever its controllers
are commanded. The listener prints the chunks each controller receives and the inference latencies, then engages
the e-stop to show the hold, and stops the node.

Unless ROS_DOMAIN_ID is set, the demo runs in a private domain with localhost-only discovery.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

NAMESPACE = "/gr00t_demo"
INSTRUCTION = "pick the pear from the counter and place it in the plate"
CAMERA_HZ, JOINT_STATE_HZ = 20.0, 100.0
IMAGE_SIZE = 256
STARTUP_TIMEOUT_S = 120.0


def _isolate() -> str:
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, discovery {os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}"


class SimulatedRobot:
    """Joint positions that follow the last trajectory each controller received (perfect tracking)."""

    def __init__(self, joint_groups: dict):
        self.positions = {}
        for group in joint_groups.values():
            lo = np.array(group.get("position_min", [0.0] * len(group["joints"])))
            hi = np.array(group.get("position_max", [0.0] * len(group["joints"])))
            self.positions.update(zip(group["joints"], (lo + hi) / 2))
        self._lock = threading.Lock()
        self._trajectories: dict[tuple[str, ...], tuple[int, np.ndarray, np.ndarray, np.ndarray]] = {}

    def command(self, msg, now_ns: int) -> None:
        joints = tuple(msg.joint_names)
        start = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec or now_ns
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        points = np.array([p.positions for p in msg.points])
        with self._lock:
            current = np.array([self.positions[j] for j in joints])
            self._trajectories[joints] = (start, np.concatenate([[0.0], times]), np.vstack([current, points]), current)

    def joint_state(self, now_ns: int) -> tuple[list[str], list[float]]:
        with self._lock:
            for joints, (start, times, points, _) in self._trajectories.items():
                t = (now_ns - start) * 1e-9
                if t >= 0:
                    q = [np.interp(t, times, points[:, k]) for k in range(len(joints))]
                    self.positions.update(zip(joints, q))
            return list(self.positions), [float(v) for v in self.positions.values()]


def _start_node(config: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gr00t_npu_node.launch", "gr00t_gr1.launch.py",
               f"namespace:={NAMESPACE.strip('/')}", f"config_file:={config}"]
    node = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def relay() -> None:
        for line in node.stdout:
            print(f"  [gr00t_node] {line.rstrip()}", flush=True)

    threading.Thread(target=relay, daemon=True).start()
    return node


def run(chunks: int) -> int:
    print(f"gr00t_npu_node demo ({_isolate()}); node namespace {NAMESPACE}", flush=True)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Bool, Float64, String
    from trajectory_msgs.msg import JointTrajectory

    from gr00t_npu_node.ros.share import package_share_path

    config_path = package_share_path("config", "gr1.yaml")
    parameters = yaml.safe_load(config_path.read_text())["/**"]["ros__parameters"]
    groups = {g: parameters["joint_groups"][g] for g in parameters["policy_groups"]}
    step_s = 1.0 / parameters["action_rate_hz"]
    robot = SimulatedRobot(parameters["joint_groups"])
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("gr00t_demo_rig", namespace=NAMESPACE)
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def now_ns() -> int:
        return node.get_clock().now().nanoseconds


    image_pub = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    joint_pub = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    node.create_publisher(String, "instruction", latched).publish(String(data=INSTRUCTION))
    estop_pub = node.create_publisher(Bool, "estop", latched)
    estop_pub.publish(Bool(data=False))
    gradient = np.linspace(0, 255, IMAGE_SIZE, dtype=np.float32)

    def publish_camera() -> None:
        shift = int(time.monotonic() * 40) % IMAGE_SIZE
        red = np.roll(gradient, shift).astype(np.uint8)
        pixels = np.stack(np.broadcast_arrays(red[None, :], gradient.astype(np.uint8)[:, None], np.uint8(90)), -1)
        msg = Image(height=IMAGE_SIZE, width=IMAGE_SIZE, encoding="rgb8", step=IMAGE_SIZE * 3, data=pixels.tobytes())
        msg.header.stamp = node.get_clock().now().to_msg()
        image_pub.publish(msg)

    def publish_joint_state() -> None:
        names, positions = robot.joint_state(now_ns())
        msg = JointState(name=names, position=positions)
        msg.header.stamp = node.get_clock().now().to_msg()
        joint_pub.publish(msg)

    node.create_timer(1.0 / CAMERA_HZ, publish_camera)
    node.create_timer(1.0 / JOINT_STATE_HZ, publish_joint_state)

    lock = threading.Condition()
    received: dict[str, list] = {g: [] for g in groups}
    latencies: list[float] = []
    modes: list[str] = []

    def on_trajectory(group: str, msg) -> None:
        robot.command(msg, now_ns())
        with lock:
            received[group].append((time.monotonic(), msg))
            lock.notify_all()

    for g, spec in groups.items():
        node.create_subscription(JointTrajectory, f"{spec['controller']}/joint_trajectory",
                                 lambda msg, g=g: on_trajectory(g, msg), 10)
    node.create_subscription(Float64, "gr00t_node/inference_latency", lambda m: latencies.append(m.data), 10)

    def on_mode(msg) -> None:
        with lock:
            modes.append(msg.data)
            lock.notify_all()

    node.create_subscription(String, "gr00t_node/mode", on_mode, latched)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    gr00t = _start_node(config_path)
    started = time.monotonic()
    status = 0
    try:
        with lock:
            if not lock.wait_for(lambda: "policy" in modes or gr00t.poll() is not None, STARTUP_TIMEOUT_S):
                raise RuntimeError(f"gr00t_node did not become active within {STARTUP_TIMEOUT_S} s")
            if gr00t.poll() is not None:
                raise RuntimeError(f"gr00t_node exited with code {gr00t.returncode}")
        print(f"gr00t_node active after {time.monotonic() - started:.1f} s; printing {chunks} chunks\n", flush=True)
        _print_chunks(lock, received, latencies, groups, step_s, chunks)
        _show_estop(lock, received, estop_pub, Bool)
    except RuntimeError as err:
        print(f"demo failed: {err}", file=sys.stderr)
        status = 1
    finally:
        if gr00t.poll() is None:
            gr00t.send_signal(2)  # SIGINT: the node holds, then exits
        try:
            code = gr00t.wait(30)
        except subprocess.TimeoutExpired:
            gr00t.kill()
            code = gr00t.wait()
        executor.shutdown()
        spinner.join()  # a thread still inside rclpy at interpreter exit aborts the process
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"gr00t_node exited with code {code}; demo took {time.monotonic() - started:.1f} s")
    return status or code


def _print_chunks(lock, received, latencies, groups, step_s, chunks) -> None:
    seen = {g: 0 for g in groups}

    def next_chunk(g: str):
        """Index of the group's next policy trajectory (holds have a single point)."""
        return next((i for i in range(seen[g], len(received[g])) if len(received[g][i][1].points) > 1), None)

    for index in range(chunks):
        with lock:
            if not lock.wait_for(lambda: all(next_chunk(g) is not None for g in groups), 20.0):
                raise RuntimeError("no chunk within 20 s")
            batch = {}
            for g in groups:
                i = next_chunk(g)
                batch[g], seen[g] = received[g][i], i + 1
        latency = f"{latencies[-1] * 1e3:.1f} ms" if latencies else "n/a"
        first = batch["left_arm"][1]
        skipped = 16 - len(first.points)
        print(f"chunk {index + 1}: inference {latency}, {len(first.points)} points "
              f"({skipped} step(s) already due when inference finished were skipped)")
        for g, (_, msg) in batch.items():
            q = np.array([p.positions for p in msg.points])
            v = np.array([p.velocities for p in msg.points])
            t = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
            print(f"  {groups[g]['controller']:<22} {len(msg.joint_names)} joints  t={t[0]:.2f}..{t[-1]:.2f} s"
                  f"  q[0]={np.array2string(q[0], precision=2, max_line_width=200)}"
                  f"  |v|max={np.abs(v).max():.2f} rad/s")
    if latencies:
        p50, p95 = np.percentile(latencies, [50, 95]) * 1e3
        print(f"\ninference latency over {len(latencies)} chunks: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
              f"(step {step_s * 1e3:.0f} ms)")


def _show_estop(lock, received, estop_pub, bool_type) -> None:
    marks = {g: len(msgs) for g, msgs in received.items()}
    estop_pub.publish(bool_type(data=True))
    with lock:
        def every_group_held() -> bool:
            return all(any(len(m.points) == 1 for _, m in received[g][marks[g]:]) for g in received)

        if not lock.wait_for(every_group_held, 10.0):
            raise RuntimeError("no hold after the e-stop")
    print("e-stop engaged: every controller received a single-point hold at the measured position")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gr00t_npu_node.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=5, help="chunks to print before the e-stop (default 5)")
    return run(parser.parse_args(argv).chunks)


if __name__ == "__main__":
    raise SystemExit(main())
