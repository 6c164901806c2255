# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Two single-threaded executors over one node: the safety callbacks (e-stop, resume, mode changes, the watchdog)
run in their own thread, so a burst of images or a large teleop message on the main thread cannot delay them.

rclpy's MultiThreadedExecutor busy-spins in the PyPI wheels (shared/docs/ros2_platform.md), and a node belongs to
one executor only; so the main executor skips the safety callback group, and `GroupExecutor` serves exactly that
group of the node, waiting on it explicitly instead of owning it.
"""
from __future__ import annotations

from rclpy.callback_groups import CallbackGroup
from rclpy.executors import (
    ConditionReachedException,
    ShutdownException,
    SingleThreadedExecutor,
    TimeoutException,
)
from rclpy.node import Node


class ExcludingExecutor(SingleThreadedExecutor):
    """A SingleThreadedExecutor that leaves the callbacks of `excluded` to another executor."""

    def __init__(self, excluded: CallbackGroup, **kwargs):
        super().__init__(**kwargs)
        self._excluded = excluded

    def can_execute(self, entity) -> bool:
        return entity.callback_group is not self._excluded and super().can_execute(entity)


class GroupExecutor(SingleThreadedExecutor):
    """Runs the callbacks of one callback group of `node` in the thread calling `spin_once`, while the node
    itself belongs to another executor."""

    def __init__(self, node: Node, group: CallbackGroup, **kwargs):
        super().__init__(context=node.context, **kwargs)
        self._node = node
        self._group = group

    def can_execute(self, entity) -> bool:
        return entity.callback_group is self._group and super().can_execute(entity)

    def spin_once(self, timeout_sec: float | None = None) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, [self._node])
        except (ShutdownException, TimeoutException, ConditionReachedException):
            return
        handler()
        handler.result()  # raises what the callback raised
