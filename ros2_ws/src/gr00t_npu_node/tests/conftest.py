# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures.

* `tiny_checkpoint` (session): a tiny random-weight checkpoint folder made by `tiny.write_tiny_checkpoint`.
* `ros_isolation` (session): this process and its children use a private ROS domain (derived from the pid),
  localhost-only discovery and a temporary log folder; yields the environment for child processes.
* `ros_probe` (session): a test-side rclpy node spinning in a background thread, with helpers that wait for
  matching, messages and service replies (never fixed sleeps).
* `own_participant(name)`: a plain node in a DDS participant of its own (the `player` fixture's, a flooding
  camera driver's).
* `garbage_collector_paused` (module): no garbage collection pauses while a module runs the robot's side in
  real time.
* `launch_gr00t_node` (session): starts gr00t_node through `python -m gr00t_npu_node.launch` with the package's
  gr1.yaml plus parameter overrides; the process is stopped (SIGINT, then kill) at the end of the session.
"""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_ROOT.parents[2]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="module")
def garbage_collector_paused():
    """For modules where this process plays the robot, the camera or a bag in real time: a full garbage collection
    over everything alive (torch, rclpy, the messages the rig keeps) paused all its threads for up to 133 ms in the
    fault campaign, longer than the node's input tolerances. Collected once before, then paused for the module."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from gr00t_npu_node.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def ros_isolation(tmp_path_factory) -> dict[str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
        patch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        patch.setenv("ROS_LOG_DIR", str(tmp_path_factory.mktemp("ros_log")))
        patch.delenv("ROS_LOCALHOST_ONLY", raising=False)
        patch.delenv("ROS_STATIC_PEERS", raising=False)
        yield dict(os.environ)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail the test naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


class Collector:
    """Messages received on one topic, in arrival order, with their receive time (time.monotonic)."""

    def __init__(self, topic: str):
        self.topic = topic
        self._lock = threading.Condition()
        self.messages: list[Any] = []
        self.received_at: list[float] = []
        self.subscription = None

    def __call__(self, msg: Any) -> None:
        with self._lock:
            self.messages.append(msg)
            self.received_at.append(time.monotonic())
            self._lock.notify_all()

    def mark(self) -> int:
        """Index to pass as `since` to only consider messages arriving after now."""
        with self._lock:
            return len(self.messages)

    def wait_for(
        self, predicate: Callable[[Any], bool] = lambda m: True, *, since: int = 0, timeout: float = 10.0
    ) -> Any:
        """The first message at index >= `since` satisfying `predicate`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for msg in self.messages[since:]:
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching message on {self.topic} within {timeout} s ({len(self.messages) - since} others)"
                    )
                self._lock.wait(remaining)


class RosProbe:
    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"test_probe_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def publisher(self, msg_type: type, topic: str, qos: Any = 10):
        return self.node.create_publisher(msg_type, topic, qos)

    def collect(self, msg_type: type, topic: str, qos: Any = 10) -> Collector:
        collector = Collector(topic)
        collector.subscription = self.node.create_subscription(msg_type, topic, collector, qos)
        return collector

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 20.0) -> None:
        wait_until(
            lambda: publisher.get_subscription_count() >= count, timeout, f"a subscriber on {publisher.topic_name}"
        )

    def wait_for_publishers(self, collector: Collector, count: int = 1, timeout: float = 20.0) -> None:
        wait_until(
            lambda: collector.subscription.get_publisher_count() >= count, timeout,
            f"a publisher on {collector.subscription.topic_name}",
        )

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 20.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f"service {name} not available within {timeout} s")
            future = client.call_async(request)
            wait_until(future.done, timeout, f"a reply from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join()  # a thread still inside rclpy at interpreter exit aborts the process
        self.node.destroy_node()
        self.context.try_shutdown()


@contextmanager
def own_participant(name: str):
    """A plain rclpy node, not spun, in a context (a DDS participant) of its own, as another process's would be."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(name, context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        context.try_shutdown()


@pytest.fixture(scope="module")
def player(ros_isolation, request):
    """A plain rclpy node for `play_bag` to publish from: one participant per module (discovery once), no spinning."""
    with own_participant(f"test_player_{request.module.__name__.rpartition('.')[2]}") as node:
        yield node


@pytest.fixture(scope="session")
def ros_probe(ros_isolation) -> RosProbe:
    probe = RosProbe()
    yield probe
    probe.close()


class NodeProcess:
    def __init__(self, command: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_running(self) -> None:
        assert self.process.poll() is None, f"gr00t_node exited with {self.process.returncode}:\n{self.log()[-4000:]}"

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def bag_messages(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Every message of a bag by topic: (receive time in ns, CDR bytes) in time order."""
    from gr00t_npu_node.bag.rosbag2.bagio import BagReader

    with BagReader(path) as bag:
        out: dict[str, list[tuple[int, bytes]]] = {t: [] for t in bag.topics}
        for topic, stamp, data in bag.messages():
            out[topic].append((stamp, data))
    return out


def write_config(path: Path, overrides: dict[str, Any]) -> Path:
    """The package's gr1.yaml with `overrides` merged into its parameters (dotted names address nested keys)."""
    config = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())
    parameters = config["/**"]["ros__parameters"]
    for name, value in overrides.items():
        *parents, leaf = name.split(".")
        target = parameters
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def launch_gr00t_node(ros_isolation, tmp_path_factory):
    started: list[NodeProcess] = []

    def launch(overrides: dict[str, Any], *, namespace: str = "", model_path: Optional[Path] = None) -> NodeProcess:
        folder = tmp_path_factory.mktemp("gr00t_node")
        overrides = dict(overrides)
        use_sim_time = overrides.pop("use_sim_time", False)  # a launch argument, which overrides the config file
        config = write_config(folder / "config.yaml", overrides)
        command = [sys.executable, "-m", "gr00t_npu_node.launch", "gr00t_gr1.launch.py", f"config_file:={config}"]
        command += [f"namespace:={namespace}", f"model_path:={model_path or ''}",
                    f"use_sim_time:={str(use_sim_time).lower()}"]
        # One intra-op thread: the tiny model gains nothing from a second, and on a 2-core machine a second
        # spinning OpenMP thread per node starves the player, the recorder and the other processes of a test.
        env = dict(ros_isolation, XDG_CACHE_HOME=str(folder / "cache"), OMP_NUM_THREADS="1")
        process = NodeProcess(command, env, folder / "node.log")
        started.append(process)
        return process

    yield launch
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository; tests that need it skip when it is absent (a user's machine)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"needs the project's shared data at {path} (not present on this machine)")
    return path


@pytest.fixture(scope="session")
def golden_dir(shared_data) -> Path:
    path = shared_data / "golden" / "tiny_A"
    if not path.is_dir():
        pytest.skip(f"needs the golden case at {path}")
    return path
