# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The node's /diagnostics: three statuses (inputs, policy, safety), each at the level of its worst current
fault, with the counters, rates and latencies a robot engineer reads first."""
from __future__ import annotations

import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray

from gr00t_npu_node.ros.inputs import InputBuffer
from gr00t_npu_node.ros.messages import ros_time
from gr00t_npu_node.ros.monitor import Monitor
from gr00t_npu_node.ros.params import NodeParams
from gr00t_npu_node.ros.safety import SafetyGate

INPUT_SOURCES = ("camera", "camera_size", "joint_states", "instruction", "teleop")
POLICY_SOURCES = ("lifecycle", "parameters", "policy", "node")
SAFETY_SOURCES = ("estop", "policy_enable", "safety", "joint_limits", "mode")


def shortened(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class NodeDiagnostics:
    """Builds one DiagnosticArray per call; message rates are counted between calls."""

    def __init__(self, name: str, monitor: Monitor):
        self._name = name
        self._monitor = monitor
        self._rate_base: tuple[float, int, int] = (time.monotonic(), 0, 0)

    def report(
        self,
        now_ns: int,
        lifecycle: str,
        params: Optional[NodeParams],
        model: str,
        inputs: Optional[InputBuffer],
        gate: Optional[SafetyGate],
    ) -> DiagnosticArray:
        m, name = self._monitor, self._name
        now_mono = time.monotonic()
        images = inputs.images_received if inputs else 0
        joints = inputs.joint_states_received if inputs else 0
        since, images_before, joints_before = self._rate_base
        elapsed = max(now_mono - since, 1e-6)
        self._rate_base = (now_mono, images, joints)
        image_stamp = inputs.latest_image_stamp_ns() if inputs else None
        latency = m.percentiles_ms("inference_latency")
        overhead = m.percentiles_ms("node_overhead")
        c = m.counters
        statuses = [
            m.status(f"{name}: inputs", name, INPUT_SOURCES, {
                "image_rate_hz": max(0, images - images_before) / elapsed,
                "joint_state_rate_hz": max(0, joints - joints_before) / elapsed,
                "observation_age_s": (now_ns - image_stamp) * 1e-9 if image_stamp is not None else "no image",
                "instruction": shortened(inputs.instruction) if inputs else "",
                "rejected_images": c["rejected_images"] + c["rejected_camera_messages"],
                "unexpected_size_images": c["unexpected_size_images"],
                "rejected_joint_states": c["rejected_joint_states"] + c["rejected_joint_states_messages"],
                "joint_state_jumps": c["joint_state_jumps"],
                "rejected_instructions": c["rejected_instruction_messages"],
                "rejected_teleop": c["rejected_teleop"] + c["rejected_teleop_messages"],
            }),
            m.status(f"{name}: policy", model, POLICY_SOURCES, {
                "lifecycle": lifecycle,
                "model": model,
                "device": params.device if params else "",
                "dtype": (params.dtype or "device default") if params else "",
                "inference_latency_p50_ms": latency[0] if latency else "n/a",
                "inference_latency_p95_ms": latency[1] if latency else "n/a",
                "node_overhead_p50_ms": overhead[0] if overhead else "n/a",
                "node_overhead_p95_ms": overhead[1] if overhead else "n/a",
                "chunks_published": c["chunks_published"],
                "late_chunks": c["late_chunks"],
                "clock_jumps_back": c["clock_jumps_back"],
                "inference_errors": c["inference_errors"],
            }),
            m.status(f"{name}: safety", name, SAFETY_SOURCES, {
                "mode": gate.mode if gate else "inactive",
                "estop": gate.estop_engaged if gate else False,
                "policy_enabled": gate.policy_enabled if gate else False,
                "dry_run": gate.dry_run if gate else False,
                "position_clamps": c["position_clamps"],
                "velocity_clamps": c["velocity_clamps"],
                "dropped_chunks": c["dropped_chunks"],
                "superseded_chunks": c["superseded_chunks"],
                "holds": c["holds"],
                "controllers_without_subscriber": ",".join(gate.unsubscribed_controllers()) if gate else "",
                "teleop_forwarded": c["teleop_forwarded"],
                "teleop_points_due": c["teleop_points_due"],
                "refused_mode_requests": c["refused_mode_requests"],
                "callback_errors": c["callback_errors"],
            }),
        ]
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = ros_time(now_ns)
        return msg
