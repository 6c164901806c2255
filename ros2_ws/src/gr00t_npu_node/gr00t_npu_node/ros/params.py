# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Every parameter of gr00t_node: declared once on the node, read into frozen dataclasses, validated with fixes.

Scalar parameters and their defaults are listed in `SCALAR_DEFAULTS`; per-group parameters live under
`joint_groups.<group>.` (joints, controller, topic, teleop_topic, position_min, position_max, velocity_max).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from gr00t_npu_node.guidance import RTC_MODES

MODES = ("teleop", "policy", "hold")

# name: (default, meaning). The meaning is the parameter's description, visible with `ros2 param describe`.
SCALAR_DEFAULTS: dict[str, tuple[Any, str]] = {
    "embodiment": ("gr1", "embodiment tag of the checkpoint"),
    "model_path": ("", "checkpoint folder; empty = the embedded tiny random-weight model (for demos and tests)"),
    "tokenizer_path": ("", "tokenizer/processor folder; empty = the one inside the checkpoint"),
    "device": ("cpu", "inference device: cpu, cuda, cuda:N, npu, npu:N"),
    "dtype": ("", "inference dtype (float32, bfloat16, float16); empty = the device's default"),
    "weight_dtype": ("", "weights of the LLM and DiT linear layers: int8 (weight-only, needs dtype bfloat16/float16); "
                     "empty = the model dtype"),
    "compile_cache_dir": ("", "folder for compiled graphs kept between runs (npu: torchair); empty = none"),
    "autostart": (True, "configure and activate at start-up (a robot may have no lifecycle manager)"),
    "initial_mode": ("policy", "mode after activation: teleop, policy or hold"),
    "dry_run": (False, "compute and publish only the monitor topics, never command the controllers"),
    "action_rate_hz": (20.0, "rate of the action steps in a chunk (step i is at (i+1)/rate after the start)"),
    "execute_steps": (8, "steps of each chunk executed before the next inference starts (1..horizon)"),
    "handover_steps": (8, "steps over which the first chunk after a handover blends from the measured position"),
    "real_time_chunking": (True, "generate each chunk while the running one executes, continuing it (RTC)"),
    "rtc_mode": ("", "real-time chunking: guided, identity or prefix; empty = the device's default"),
    "rtc_latency_margin": (0.02, "s added to the inference latency's 95th percentile to schedule the next inference"),
    "simulated_inference_latency": (0.0, "s of the node's clock each inference takes at least (0 = as fast as it "
                                    "runs): rehearse a slower device's timing with a faster one or the tiny model"),
    "max_observation_age": (0.3, "s; older image or joint state -> no inference, hold once"),
    "max_sync_skew": (0.05, "s; image and joint-state stamps further apart -> no inference (a joint state close "
                      "enough is waited for until the clock is this past the image's stamp)"),
    "max_clock_skew": (0.1, "s; inputs stamped further ahead of the node's clock are rejected (the sender's is off)"),
    "max_image_pixels": (16_777_216, "frames with more pixels (width x height) are rejected before decoding"),
    "max_instruction_tokens": (128, "instructions longer than this (in tokens) are refused: no inference, hold"),
    "max_trajectory_points": (1000, "teleop trajectories with more points are rejected before any per-point work"),
    "image_topic": ("camera/image_raw", "sensor_msgs/Image (sensor-data QoS); empty = not subscribed"),
    "compressed_image_topic": ("", "sensor_msgs/CompressedImage (sensor-data QoS); empty = not subscribed"),
    "image_width": (256, "camera frame width in pixels: the policy is warmed up (graph-compiled) for it"),
    "image_height": (256, "camera frame height in pixels: the policy is warmed up (graph-compiled) for it"),
    "joint_states_topic": ("joint_states", "sensor_msgs/JointState by joint name; partial messages are merged"),
    "instruction_topic": ("instruction", "std_msgs/String, latched (volatile publishers are heard too)"),
    "estop_topic": ("estop", "std_msgs/Bool from any publisher QoS; true = emergency stop (only holds go out)"),
    "estop_timeout": (0.0, "s; > 0: the e-stop engages when no e-stop message arrives for this long (heartbeat)"),
    "policy_enable_topic": ("", "std_msgs/Bool; non-empty: the policy only commands while it is true (deadman)"),
    "policy_enable_timeout": (0.0, "s; > 0: policy enable lapses when no message arrives for this long"),
    "teleop_timeout": (0.5, "s; in teleop mode a group holds once its teleop topic is silent for this long"),
    "diagnostics_period": (1.0, "s between /diagnostics messages"),
}

GROUP_ARRAYS = ("position_min", "position_max", "velocity_max")
# joint_groups.<group>.<key>: key -> meaning
GROUP_PARAMETERS = {
    "joints": "joint names in the model's order (state-only groups: just this, so recorded states map by name)",
    "controller": "controller name: commands go to <controller>/joint_trajectory",
    "topic": "command topic, instead of <controller>/joint_trajectory",
    "teleop_topic": "teleop input (default teleop/<controller>/joint_trajectory)",
    "position_min": "rad, one per joint",
    "position_max": "rad, one per joint",
    "velocity_max": "rad/s, one per joint",
}
# Declared by rclpy itself on every node.
RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")


@dataclass(frozen=True)
class JointGroup:
    """One commanded group: its joints in model order, its controller topics and its limits."""

    name: str
    joints: tuple[str, ...]
    topic: str
    teleop_topic: str
    position_min: np.ndarray
    position_max: np.ndarray
    velocity_max: np.ndarray


@dataclass(frozen=True)
class NodeParams:
    embodiment: str
    model_path: str
    tokenizer_path: str
    device: str
    dtype: str
    weight_dtype: str
    compile_cache_dir: str
    autostart: bool
    initial_mode: str
    dry_run: bool
    action_rate_hz: float
    execute_steps: int
    handover_steps: int
    real_time_chunking: bool
    rtc_mode: str
    rtc_latency_margin: float
    simulated_inference_latency: float
    max_observation_age: float
    max_sync_skew: float
    max_clock_skew: float
    max_image_pixels: int
    max_instruction_tokens: int
    max_trajectory_points: int
    image_topic: str
    compressed_image_topic: str
    image_width: int
    image_height: int
    joint_states_topic: str
    instruction_topic: str
    estop_topic: str
    estop_timeout: float
    policy_enable_topic: str
    policy_enable_timeout: float
    teleop_timeout: float
    diagnostics_period: float
    groups: dict[str, JointGroup]  # the commanded groups (`policy_groups`), in that order

    @property
    def step_s(self) -> float:
        return 1.0 / self.action_rate_hz


def _declare(node: Node, name: str, default: Any, description: str = "") -> Any:
    if not node.has_parameter(name):
        node.declare_parameter(name, default, ParameterDescriptor(description=description))
    return node.get_parameter(name).value


def declare_scalar(node: Node, name: str) -> Any:
    """Declare (once) and read one of `SCALAR_DEFAULTS`."""
    default, meaning = SCALAR_DEFAULTS[name]
    return _declare(node, name, default, meaning)


def _declare_dynamic(node: Node, name: str) -> Any:
    """A parameter whose type the YAML decides (so `[1, 2]` and `[1.0, 2.0]` both work); None when unset."""
    if not node.has_parameter(name):
        node.declare_parameter(name, None, ParameterDescriptor(dynamic_typing=True))
    return node.get_parameter(name).value


def group_joints(node: Node, group: str) -> tuple[str, ...]:
    """`joint_groups.<group>.joints`, declared on first use (state groups are only known once the policy loads)."""
    name = f"joint_groups.{group}.joints"
    joints = _declare_dynamic(node, name)
    if not joints or not all(isinstance(j, str) and j for j in joints):
        raise ValueError(f"parameter {name} must list the group's joint names (set it in the config file)")
    if len(set(joints)) != len(joints):
        raise ValueError(f"parameter {name} names a joint twice: {list(joints)}")
    return tuple(joints)


def describe_parameters() -> str:
    """Every parameter with its default and meaning, for `gr00t_node --help`."""
    rows = [(name, repr(default), meaning) for name, (default, meaning) in SCALAR_DEFAULTS.items()]
    rows.append(("policy_groups", "(required)", "the commanded joint groups, in order"))
    rows += [(f"joint_groups.<group>.{key}", "", meaning) for key, meaning in GROUP_PARAMETERS.items()]
    rows.append(("use_sim_time", "False", "rclpy's: follow /clock (bag replay, simulation)"))
    name_width, default_width = (max(len(row[i]) for row in rows) + 2 for i in (0, 1))
    return "\n".join(f"  {name:<{name_width}}{default:<{default_width}}{meaning}" for name, default, meaning in rows)


def unknown_parameters(given: Iterable[str], declared: Iterable[str]) -> list[str]:
    """One line per parameter in `given` (what the params files and -p set) that the node does not take, with the
    closest name it does take: a misspelled parameter is otherwise silently ignored."""
    declared = set(declared)
    known = declared | set(SCALAR_DEFAULTS) | set(RCLPY_PARAMETERS) | {"policy_groups"}
    problems = []
    for name in sorted(set(given) - known):
        parts = name.split(".")
        group_parameter = len(parts) == 3 and parts[0] == "joint_groups" and parts[2] in GROUP_PARAMETERS
        if name.startswith("qos_overrides.") or group_parameter:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        problems.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return problems


def _read_group(node: Node, group: str) -> JointGroup:
    prefix = f"joint_groups.{group}."
    joints = group_joints(node, group)
    controller = _declare(node, prefix + "controller", "")
    topic = _declare(node, prefix + "topic", "")
    teleop_topic = _declare(node, prefix + "teleop_topic", "")
    if not topic and not controller:
        raise ValueError(f"set {prefix}controller (topic <controller>/joint_trajectory) or {prefix}topic")
    topic = topic or f"{controller}/joint_trajectory"
    teleop_topic = teleop_topic or f"teleop/{controller or group}/joint_trajectory"
    limits = {}
    for key in GROUP_ARRAYS:
        value = _declare_dynamic(node, prefix + key)
        if value is None or len(value) != len(joints):
            raise ValueError(f"parameter {prefix}{key} needs one number per joint ({len(joints)}), got {value!r}")
        limits[key] = np.asarray(value, dtype=np.float64)
    if np.any(limits["position_min"] >= limits["position_max"]):
        raise ValueError(f"{prefix}position_min must be below {prefix}position_max for every joint")
    if np.any(limits["velocity_max"] <= 0) or not np.all(np.isfinite(limits["velocity_max"])):
        raise ValueError(f"{prefix}velocity_max must be positive and finite for every joint")
    return JointGroup(group, joints, topic, teleop_topic, **limits)


def read_params(node: Node) -> NodeParams:
    """Declare (once) and read every parameter; raises ValueError naming the parameter and the fix."""
    values = {name: declare_scalar(node, name) for name in SCALAR_DEFAULTS}
    policy_groups = _declare_dynamic(node, "policy_groups")
    if not policy_groups:
        raise ValueError("parameter policy_groups must list the commanded joint groups (see config/gr1.yaml)")
    groups = {g: _read_group(node, g) for g in policy_groups}
    params = NodeParams(**values, groups=groups)
    _validate(params)
    return params


def _validate(p: NodeParams) -> None:
    if p.initial_mode not in MODES:
        raise ValueError(f"parameter initial_mode is {p.initial_mode!r}; use one of {', '.join(MODES)}")
    if not p.action_rate_hz > 0:
        raise ValueError("parameter action_rate_hz must be positive")
    if p.rtc_mode and p.rtc_mode not in RTC_MODES:
        raise ValueError(f"parameter rtc_mode is {p.rtc_mode!r}; use one of {', '.join(RTC_MODES)} or empty")
    for name in ("rtc_latency_margin", "simulated_inference_latency"):
        if getattr(p, name) < 0:
            raise ValueError(f"parameter {name} must be >= 0")
    if p.execute_steps < 1 or p.handover_steps < 1:
        raise ValueError("parameters execute_steps and handover_steps must be >= 1")
    for name in ("max_observation_age", "max_sync_skew", "max_clock_skew", "teleop_timeout", "diagnostics_period"):
        if not getattr(p, name) > 0:
            raise ValueError(f"parameter {name} must be positive")
    for name in ("estop_timeout", "policy_enable_timeout"):
        if getattr(p, name) < 0:
            raise ValueError(f"parameter {name} must be >= 0 (0 = no heartbeat)")
    for name in ("max_image_pixels", "max_instruction_tokens", "max_trajectory_points"):
        if getattr(p, name) < 1:
            raise ValueError(f"parameter {name} must be >= 1")
    if p.image_width < 1 or p.image_height < 1:
        raise ValueError("parameters image_width and image_height must be the camera's frame size in pixels (>= 1)")
    if not (p.image_topic or p.compressed_image_topic):
        raise ValueError("set image_topic or compressed_image_topic: the policy needs a camera")
