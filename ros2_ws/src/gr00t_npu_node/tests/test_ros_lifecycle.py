"""A failing configure (bad checkpoint path, bad config) is reported on /diagnostics and leaves the node up and
unconfigured instead of crashing (a crash under a respawning launch is a crash loop)."""
from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.srv import GetState

from conftest import PACKAGE_ROOT
from gr00t_npu_node.ros.node import Gr00tNode


@pytest.mark.parametrize(
    "name, overrides, complaint",
    [
        ("bad_model", ["model_path:=/nonexistent/checkpoint"], "model_path '/nonexistent/checkpoint' is not a folder"),
        ("bad_limits", ["joint_groups.waist.velocity_max:=[1.0, 2.0]"],
         "joint_groups.waist.velocity_max needs one number per joint"),
        ("bad_mode", ["initial_mode:=auto"], "initial_mode is 'auto'; use one of teleop, policy, hold"),
    ],
)
def test_configure_failure_is_diagnosed_and_the_node_stays_up(ros_probe, name, overrides, complaint):
    namespace = f"/lifecycle_{name}"
    cli = ["--ros-args", "-r", f"__ns:={namespace}", "--params-file", str(PACKAGE_ROOT / "config" / "gr1.yaml"),
           "-p", "diagnostics_period:=0.1"]
    for override in overrides:
        cli += ["-p", override]
    diagnostics = ros_probe.collect(DiagnosticArray, "/diagnostics")
    node = Gr00tNode(context=ros_probe.context, cli_args=cli)
    try:
        node.autostart()
        ros_probe.executor.add_node(node)

        def reports_failure(array):
            return any(
                s.name == f"{namespace}/gr00t_node: policy" and s.level == DiagnosticStatus.ERROR
                and "configure failed" in s.message and complaint in s.message
                for s in array.status
            )

        diagnostics.wait_for(reports_failure)
        state = ros_probe.call(GetState, f"{namespace}/gr00t_node/get_state", GetState.Request())
        assert state.current_state.label == "unconfigured"
    finally:
        ros_probe.executor.remove_node(node)
        node.destroy_node()
        ros_probe.node.destroy_subscription(diagnostics.subscription)
