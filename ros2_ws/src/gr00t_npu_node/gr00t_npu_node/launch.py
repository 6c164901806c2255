# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Run a launch file of this package: `python -m gr00t_npu_node.launch [gr00t_gr1.launch.py] [name:=value ...]`.

With ROS 2's `launch` and `launch_ros` importable (a robot), this is `ros2 launch` on the same file. Without them
(the pip-installed ROS 2 stack has no launch system) the file is executed with the in-package subset
(gr00t_npu_node.ros.launch_subset): each `Node` becomes a child process with the equivalent `--ros-args`;
SIGINT/SIGTERM are forwarded and the exit code is the worst of the children's.
"""
from __future__ import annotations

import argparse
import difflib
import importlib.util
import signal
import sys
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

from gr00t_npu_node.ros import launch_subset
from gr00t_npu_node.ros.share import package_share_path

DEFAULT_LAUNCH_FILE = "gr00t_gr1.launch.py"
STOP_GRACE_S = 10.0


def parse_launch_arguments(arguments: list[str]) -> dict[str, str]:
    parsed = {}
    for argument in arguments:
        name, separator, value = argument.partition(":=")
        if not separator or not name:
            raise ValueError(f"malformed launch argument {argument!r}, expected NAME:=VALUE")
        parsed[name] = value  # the last one wins, as in ros2 launch
    return parsed


def find_launch_file(name: str) -> Path:
    path = Path(name)
    return path if path.is_file() else package_share_path("launch", name)


def load_launch_file(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"launch_file_{path.stem.replace('.', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_arguments(path: Path, real_launch: bool) -> list[str]:
    """The launch arguments the file declares, in order."""
    if real_launch:
        description = load_launch_file(path).generate_launch_description()
    else:
        with launch_subset.installed():
            description = load_launch_file(path).generate_launch_description()
    return [argument.name for argument in description.get_launch_arguments()]


def check_arguments(path: Path, arguments: dict[str, str], declared: list[str]) -> None:
    """ValueError naming each argument the file does not declare, the closest declared one and all of them."""
    problems = []
    for name in (n for n in arguments if n not in declared):
        close = difflib.get_close_matches(name, declared, n=1)
        problems.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        raise ValueError(
            f"unknown launch argument {', '.join(problems)}; {path.name} takes {', '.join(declared)}"
        )


def run_with_ros_launch(path: Path, arguments: dict[str, str]) -> int:
    """What `ros2 launch` does (ros2launch.api.launch_a_launch_file)."""
    import launch

    # Interactive, launch leaves SIGINT to the terminal's process group; started by a supervisor or a test,
    # nobody else would pass it on to the node.
    service = launch.LaunchService(
        argv=[f"{k}:={v}" for k, v in arguments.items()], noninteractive=not sys.stdin.isatty()
    )
    service.include_launch_description(
        launch.LaunchDescription([
            launch.actions.IncludeLaunchDescription(
                launch.launch_description_sources.AnyLaunchDescriptionSource(str(path)),
                launch_arguments=list(arguments.items()),
            )
        ])
    )
    return service.run()


def run_with_subset(path: Path, arguments: dict[str, str]) -> int:
    with launch_subset.installed():
        description = load_launch_file(path).generate_launch_description()
    context = launch_subset.resolve_launch_configurations(description, arguments)
    nodes = [e for e in description.entities if isinstance(e, launch_subset.Node)]
    with tempfile.TemporaryDirectory(prefix="gr00t_launch_") as params_dir:
        commands = [launch_subset.node_command(node, context, Path(params_dir)) for node in nodes]
        children = [subprocess.Popen(command) for command in commands]
        return _supervise(children)


def _supervise(children: list[subprocess.Popen]) -> int:
    """Wait for the children; on SIGINT/SIGTERM pass SIGINT on, and kill what still runs STOP_GRACE_S later."""
    stop_requested_at: list[float] = []

    def forward(signum: int, frame) -> None:
        if not stop_requested_at:
            stop_requested_at.append(time.monotonic())
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while any(child.poll() is None for child in children):
        if stop_requested_at and time.monotonic() - stop_requested_at[0] > STOP_GRACE_S:
            for child in children:
                if child.poll() is None:
                    child.kill()
        time.sleep(0.1)
    return max((abs(child.returncode) for child in children), default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gr00t_npu_node.launch", description=__doc__.split("\n")[0])
    parser.add_argument("items", nargs="*", metavar="[LAUNCH_FILE] NAME:=VALUE")
    items = parser.parse_args(argv).items
    launch_file = DEFAULT_LAUNCH_FILE
    if items and ":=" not in items[0]:
        launch_file, items = items[0], items[1:]
    found = [name for name in ("launch", "launch_ros") if launch_subset.is_installed(name)]
    if len(found) == 1:
        parser.error(f"only {found[0]} of launch/launch_ros is installed: install both (ros-<distro>-launch-ros)")
    real_launch = len(found) == 2
    try:
        path = find_launch_file(launch_file)
        arguments = parse_launch_arguments(items)
        check_arguments(path, arguments, declared_arguments(path, real_launch))
    except (ValueError, FileNotFoundError) as err:
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 2
    return run_with_ros_launch(path, arguments) if real_launch else run_with_subset(path, arguments)


if __name__ == "__main__":
    raise SystemExit(main())
