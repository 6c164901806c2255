# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Where things live in a bag: topic names, the bag time base, and the names of the robot's joints.

Joint names come from the node's parameter file (`joint_groups.<group>.joints`), so a bag converted from a data set
carries the same names the node and the robot's controllers use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from gr00t_npu_node.ros.share import package_share_path

# Bags get a wall-clock-free time base that still looks like real ROS time: episode k of a data set starts at
# BAG_EPOCH_NS + k * EPISODE_SPACING_NS, and a frame's data-set timestamp is added to that.
BAG_EPOCH_NS = 1_700_000_000 * 10**9
EPISODE_SPACING_NS = 1_000 * 10**9

# Custom-data key listing topics that exist for scoring only: play does not wait for subscribers on them.
SCORING_TOPICS_KEY = "gr00t.scoring_topics"


@dataclass(frozen=True)
class Topics:
    """Topic names of a converted episode (the node subscribes to the first three)."""

    camera: str = "/camera/image_raw"
    joint_states: str = "/joint_states"
    instruction: str = "/instruction"
    recorded_action: str = "/gr00t/recorded_action"


@dataclass(frozen=True)
class JointLayout:
    """The robot's joints by group, in the parameter file's order."""

    groups: dict[str, tuple[str, ...]]
    position_min: dict[str, tuple[float, ...]]
    position_max: dict[str, tuple[float, ...]]
    policy_groups: tuple[str, ...]
    action_rate_hz: float
    execute_steps: int
    command_topics: dict[str, str]     # commanded group -> its JointTrajectory topic (relative, as configured)
    real_time_chunking: bool = True    # the node generates the next chunk while the running one executes

    def resolved_command_topics(self, namespace: str = "") -> dict[str, str]:
        """The commanded groups' topics as absolute names for a node in `namespace`."""
        return {g: resolve_topic(t, namespace) for g, t in self.command_topics.items()}

    def names_for_vector(self, slices: dict[str, tuple[int, int]], width: int) -> tuple[str, ...]:
        """Joint names for a flat vector whose groups sit at `slices` (group -> [start, end)), e.g. modality.json."""
        names: list[str | None] = [None] * width
        for group, (start, end) in slices.items():
            if group not in self.groups:
                raise ValueError(f"group {group!r} of the data set's layout has no joint names in the config "
                                 f"(config groups: {sorted(self.groups)}); add joint_groups.{group}.joints")
            joints = self.groups[group]
            if len(joints) != end - start:
                raise ValueError(f"group {group!r} spans {end - start} values in the data set but the config names "
                                 f"{len(joints)} joints; fix joint_groups.{group}.joints")
            for offset, joint in enumerate(joints):
                if names[start + offset] is not None:
                    raise ValueError(f"index {start + offset} of the data set's vector is claimed by two groups")
                names[start + offset] = joint
        if missing := [i for i, name in enumerate(names) if name is None]:
            raise ValueError(f"indices {missing} of the {width}-value vector belong to no group of the layout")
        return tuple(names)  # type: ignore[arg-type]

    def limits(self, groups: tuple[str, ...]) -> dict[str, tuple[float, float]]:
        """Position limits by joint name for the given groups (only groups that configure limits)."""
        return {
            joint: (low, high)
            for group in groups
            if group in self.position_min
            for joint, low, high in zip(self.groups[group], self.position_min[group], self.position_max[group])
        }


def load_joint_layout(config_path: Path | None = None) -> JointLayout:
    """Read joint groups, limits and policy groups from a ROS parameter file (`<node>: ros__parameters: ...`)."""
    path = Path(config_path) if config_path is not None else package_share_path("config", "gr1.yaml")
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} not found; pass --config PATH to the node's YAML")
    document = yaml.safe_load(path.read_text())
    params = next((v["ros__parameters"] for v in (document or {}).values()
                   if isinstance(v, dict) and "ros__parameters" in v), None)
    if params is None or "joint_groups" not in params:
        raise ValueError(f"{path} has no `ros__parameters.joint_groups`; expected the node's parameter file")
    groups = {name: tuple(spec["joints"]) for name, spec in params["joint_groups"].items()}
    position_min = {name: tuple(spec["position_min"]) for name, spec in params["joint_groups"].items()
                    if "position_min" in spec}
    position_max = {name: tuple(spec["position_max"]) for name, spec in params["joint_groups"].items()
                    if "position_max" in spec}
    policy_groups = tuple(params.get("policy_groups", ()))
    if unknown := [g for g in policy_groups if g not in groups]:
        raise ValueError(f"{path}: policy_groups {unknown} have no joint_groups entry")
    # The node's defaults (ros/params.py): topic, else <controller>/joint_trajectory; 20 Hz; 8 executed steps.
    command_topics = {g: params["joint_groups"][g].get("topic")
                      or f"{params['joint_groups'][g].get('controller', g)}/joint_trajectory" for g in policy_groups}
    return JointLayout(groups, position_min, position_max, policy_groups, float(params.get("action_rate_hz", 20.0)),
                       int(params.get("execute_steps", 8)), command_topics,
                       bool(params.get("real_time_chunking", True)))


def resolve_topic(name: str, namespace: str = "") -> str:
    """A ROS topic name as absolute: relative names live in the node's namespace."""
    if name.startswith("/"):
        return name
    prefix = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{prefix}/{name}"
