# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Run gr00t_node on the Fourier GR1.

    ros2 launch gr00t_npu_node gr00t_gr1.launch.py model_path:=/models/GR00T-N1.6-3B device:=npu namespace:=gr1

Where `ros2 launch` is not installed (a pip-installed ROS 2 stack), the same file runs with
`python -m gr00t_npu_node.launch gr00t_gr1.launch.py name:=value ...`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from gr00t_npu_node.ros.share import package_share_path


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            "model_path", default_value="", description="checkpoint folder; empty = the embedded tiny test model"
        ),
        DeclareLaunchArgument(
            "tokenizer_path", default_value="", description="tokenizer folder; empty = the one in the checkpoint"
        ),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu, cuda, cuda:N, npu or npu:N"),
        DeclareLaunchArgument(
            "config_file",
            default_value=str(package_share_path("config", "gr1.yaml")),
            description="parameter file of the node (joint groups, limits, topics, timing)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="true: follow /clock (bag replay, simulation)"
        ),
    ]
    node = Node(
        package="gr00t_npu_node",
        executable="gr00t_node",
        name="gr00t_node",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("config_file"),
            {
                "model_path": ParameterValue(LaunchConfiguration("model_path"), value_type=str),
                "tokenizer_path": ParameterValue(LaunchConfiguration("tokenizer_path"), value_type=str),
                "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
    )
    return LaunchDescription([*arguments, node])
