# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The launch file under the in-package launch subset, and the runner's argument handling. (The runner starting
a real node process is exercised by test_ros_node.py, which launches every node it tests through it.)"""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import types

import pytest
import yaml

from gr00t_npu_node import launch as runner
from gr00t_npu_node.ros import launch_subset
from gr00t_npu_node.ros.share import package_share_path

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("launch") is not None, reason="real ROS 2 launch installed: the subset is not used"
)


def describe(arguments: dict[str, str]):
    with launch_subset.installed():
        module = runner.load_launch_file(runner.find_launch_file("gr00t_gr1.launch.py"))
        description = module.generate_launch_description()
    return description, launch_subset.resolve_launch_configurations(description, arguments)


def test_launch_arguments_parse_like_ros2_launch():
    assert runner.parse_launch_arguments(["a:=1", "b:=x:=y", "a:=2", "c:="]) == {"a": "2", "b": "x:=y", "c": ""}
    with pytest.raises(ValueError, match="expected NAME:=VALUE"):
        runner.parse_launch_arguments(["device=npu"])


def test_launch_file_declares_the_documented_arguments_with_defaults():
    description, context = describe({})
    assert [a.name for a in description.get_launch_arguments()] == [
        "model_path", "tokenizer_path", "device", "config_file", "namespace", "use_sim_time",
    ]
    assert context.launch_configurations == {
        "model_path": "", "tokenizer_path": "", "device": "cpu",
        "config_file": str(package_share_path("config", "gr1.yaml")), "namespace": "", "use_sim_time": "false",
    }


def test_node_command_carries_namespace_and_parameters(tmp_path):
    description, context = describe(
        {"namespace": "gr1", "device": "npu:1", "model_path": "/models/n1.6", "use_sim_time": "true"}
    )
    (node,) = [e for e in description.entities if isinstance(e, launch_subset.Node)]
    command = launch_subset.node_command(node, context, tmp_path)
    args = command[command.index("--ros-args") + 1:]
    assert args[:4] == ["-r", "__node:=gr00t_node", "-r", "__ns:=/gr1"]
    params = [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]
    assert params[0] == str(package_share_path("config", "gr1.yaml"))
    overrides = yaml.safe_load(open(params[1]))["/**"]["ros__parameters"]
    assert overrides == {"model_path": "/models/n1.6", "tokenizer_path": "", "device": "npu:1", "use_sim_time": True}
    assert command[0] == sys.executable and "gr00t_npu_node.ros.node" in command[2], "the console script's entry point"


def test_without_a_namespace_no_namespace_remap(tmp_path):
    description, context = describe({})
    (node,) = [e for e in description.entities if isinstance(e, launch_subset.Node)]
    assert not any(a.startswith("__ns:=") for a in launch_subset.node_command(node, context, tmp_path))


def test_remappings_and_yaml_typed_values(tmp_path):
    context = launch_subset.LaunchContext({"rate": "30.0", "topic": "/cam/raw"})
    node = launch_subset.Node(
        package="gr00t_npu_node", executable="gr00t_node",
        parameters=[{"action_rate_hz": launch_subset.LaunchConfiguration("rate"), "dry_run": "true"}],
        remappings=[("camera/image_raw", launch_subset.LaunchConfiguration("topic"))],
    )
    command = launch_subset.node_command(node, context, tmp_path)
    assert command[-2:] == ["-r", "camera/image_raw:=/cam/raw"]
    written = yaml.safe_load(open(command[command.index("--params-file") + 1]))["/**"]["ros__parameters"]
    assert written == {"action_rate_hz": 30.0, "dry_run": True}


def test_a_missing_argument_or_a_value_of_the_wrong_type_is_an_error(tmp_path):
    description = launch_subset.LaunchDescription([launch_subset.DeclareLaunchArgument("needed", description="why")])
    with pytest.raises(ValueError, match="has no default: pass needed:=VALUE"):
        launch_subset.resolve_launch_configurations(description, {})
    description, context = describe({"use_sim_time": "maybe"})
    (node,) = [e for e in description.entities if isinstance(e, launch_subset.Node)]
    with pytest.raises(ValueError, match="'maybe' is not a bool"):
        launch_subset.node_command(node, context, tmp_path)


def test_a_misspelled_launch_argument_is_one_line_naming_the_valid_ones():
    result = subprocess.run(
        [sys.executable, "-m", "gr00t_npu_node.launch", "gr00t_gr1.launch.py", "modle_path:=/models/x"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m gr00t_npu_node.launch: unknown launch argument 'modle_path' (did you mean 'model_path'?); "
        "gr00t_gr1.launch.py takes model_path, tokenizer_path, device, config_file, namespace, use_sim_time"
    ]


def test_with_the_real_launch_package_sigint_is_passed_on(monkeypatch):
    """ros2 launch creates its LaunchService non-interactive when stdin is not a terminal, or a SIGINT sent to it
    is never passed on to the node. The real package is not installable here: a recorder stands in for it."""
    created = {}

    class LaunchService:
        def __init__(self, **kwargs):
            created.update(kwargs)

        def include_launch_description(self, description):
            created["description"] = description

        def run(self):
            return 0

    launch = types.ModuleType("launch")
    launch.LaunchService = LaunchService
    launch.LaunchDescription = list
    launch.actions = types.SimpleNamespace(IncludeLaunchDescription=lambda source, launch_arguments: source)
    launch.launch_description_sources = types.SimpleNamespace(AnyLaunchDescriptionSource=str)
    monkeypatch.setitem(sys.modules, "launch", launch)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert runner.run_with_ros_launch(runner.find_launch_file("gr00t_gr1.launch.py"), {"device": "npu"}) == 0
    assert created["noninteractive"] is True and created["argv"] == ["device:=npu"]


def test_subset_modules_exist_only_while_loading_and_never_shadow(monkeypatch):
    with launch_subset.installed():
        assert sys.modules["launch_ros.actions"].Node is launch_subset.Node
    assert "launch" not in sys.modules and "launch_ros" not in sys.modules
    monkeypatch.setitem(sys.modules, "launch", types.ModuleType("launch"))
    with pytest.raises(RuntimeError, match="refusing to shadow"):
        with launch_subset.installed():
            pass


def test_runner_rejects_bad_arguments(capsys):
    assert runner.main(["gr00t_gr1.launch.py", "device"]) == 2
    assert "expected NAME:=VALUE" in capsys.readouterr().err
