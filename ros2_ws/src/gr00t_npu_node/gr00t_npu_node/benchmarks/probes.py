# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""What `inference` measures about one `Gr00tPolicy.get_action`, from outside the policy: stage times (forward hooks
at the stage boundaries), FLOPs per stage (torch's FlopCounterMode), the linear-layer and attention calls of each
stage (for replaying them alone), and peak memory."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.policy import Gr00tPolicy

STAGES = ("preprocess", "vision", "llm", "action_head", "decode", "total")
# The model's modules by stage (names inside Gr00tN1d6).
STAGE_MODULES = {
    "vision": ("backbone.model.vision_model", "backbone.model.mlp1"),
    "llm": ("backbone.model.language_model",),
    "action_head": ("action_head",),
}


def _stage_of(name: str) -> Optional[str]:
    return next(
        (stage for stage, roots in STAGE_MODULES.items() if any(name == r or name.startswith(r + ".") for r in roots)),
        None,
    )


# ---- time ---------------------------------------------------------------------------------------------------
def stage_seconds(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> dict[str, float]:
    """Seconds per stage of one `get_action`, the device drained at every boundary: the model's call starts
    vision (preprocess before it), the projector's return ends vision, the LLM's return ends llm, the model's return
    ends the action head (decode after it)."""
    model, backend = policy.model, policy.model.backend
    marks: list[float] = []

    def mark(*_hook_arguments: object) -> None:
        backend.synchronize()
        marks.append(time.perf_counter())

    handles = [
        model.register_forward_pre_hook(mark),
        model.get_submodule(STAGE_MODULES["vision"][-1]).register_forward_hook(mark),
        model.get_submodule(STAGE_MODULES["llm"][-1]).register_forward_hook(mark),
        model.register_forward_hook(mark),
    ]
    try:
        mark()
        policy.get_action(observation, noise=noise)
        mark()
    finally:
        for handle in handles:
            handle.remove()
    return dict(zip(STAGES[:-1], np.diff(marks).tolist()))


# ---- FLOPs --------------------------------------------------------------------------------------------------
def _packed_linear_flop(x_shape, w_shape, *_args, **_kwargs) -> int:
    """The CPU backend's oneDNN-packed linear layer (weight [out, in])."""
    return 2 * prod(x_shape[:-1]) * w_shape[1] * w_shape[0]


def _cpu_attention_flop(query_shape, key_shape, value_shape, *_args, **_kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Kernels FlopCounterMode has no formula for: the packed linear layer and PyTorch's CPU flash attention.
CPU_KERNEL_FLOPS = {
    torch.ops.mkldnn._linear_pointwise: _packed_linear_flop,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flop,
}


@dataclass(frozen=True)
class StageWork:
    gflop: dict[str, float]  # per model stage, 2 FLOP per multiply-add, as executed (attention counted dense)
    llm_tokens: int


def stage_work(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> StageWork:
    """The matrix products one `get_action` executes per stage, counted by FlopCounterMode on the eager operators
    (a compiled loop runs eagerly for the count: the same products), and the LLM's sequence length."""
    tokens: list[int] = []
    llm = policy.model.get_submodule(STAGE_MODULES["llm"][0])
    handle = llm.register_forward_pre_hook(lambda _module, args: tokens.append(args[0].shape[1]))
    try:
        with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False, custom_mapping=CPU_KERNEL_FLOPS) as counter:
            policy.get_action(observation, noise=noise)
    finally:
        handle.remove()
    root = type(policy.model).__name__ + "."
    gflop = {stage: 0.0 for stage in STAGE_MODULES}
    for name, per_op in counter.get_flop_counts().items():
        inner = name.removeprefix(root)
        if inner in STAGE_MODULES["vision"] + STAGE_MODULES["llm"]:
            gflop[_stage_of(inner)] += sum(per_op.values()) / 1e9
    # The action head is not called as one module: it is everything the backbone's stages did not count.
    gflop["action_head"] = counter.get_total_flops() / 1e9 - gflop["vision"] - gflop["llm"]
    return StageWork(gflop, tokens[0])


# ---- the calls of a stage, for replaying them alone ----------------------------------------------------------
@dataclass
class LinearCall:
    layer: nn.Module
    input: torch.Tensor

    @property
    def flops(self) -> int:
        return 2 * self.input.numel() // self.input.shape[-1] * self.layer.in_features * self.layer.out_features

    def run(self) -> torch.Tensor:
        return self.layer(self.input)


@dataclass
class StageCalls:
    """The calls of one stage of one inference, in order: its linear layers, and every kernel call as it ran
    (linear layers with their fused epilogues, attention)."""

    linear: list[LinearCall] = field(default_factory=list)
    kernels: list[Callable[[], torch.Tensor]] = field(default_factory=list)


def record_calls(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> dict[str, StageCalls]:
    """Every linear-layer and attention call of one inference, in order, per stage (a compiled loop runs eagerly so
    that each call is seen). Linear layers get a random input of the shape they had (one input per shape: the
    replay's memory traffic is the weights', as in the model); attention keeps its real inputs (layout and strides
    matter to its kernel). An attention call belongs to the stage of the projections before it."""
    calls: dict[str, StageCalls] = {stage: StageCalls() for stage in STAGE_MODULES}
    current_stage = next(iter(STAGE_MODULES))
    inputs: dict[tuple, torch.Tensor] = {}
    handles = []
    stage_of: dict[int, str] = {}
    inside_fused = False
    for name, module in policy.model.named_modules():
        stage = _stage_of(name)
        if stage is not None:
            stage_of[id(module)] = stage
        if stage is None or not hasattr(module, "in_features") or not hasattr(module, "out_features"):
            continue

        def hook(layer: nn.Module, args: tuple, stage: str = stage) -> None:
            nonlocal current_stage
            if inside_fused:
                return
            x = args[0]
            key = (tuple(x.shape), x.dtype, x.device)
            if key not in inputs:
                inputs[key] = torch.randn(x.shape, dtype=x.dtype, device=x.device)
            call = LinearCall(layer, inputs[key])
            calls[stage].linear.append(call)
            calls[stage].kernels.append(call.run)
            current_stage = stage

        handles.append(module.register_forward_pre_hook(hook))
    # A backend may run linear + GELU as one fused call that bypasses the layer's hooks: record those too.
    backend = policy.model.backend
    fused, attention = backend.linear_gelu, backend.attention

    def linear_gelu(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        nonlocal inside_fused, current_stage
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in inputs:
            inputs[key] = torch.randn(x.shape, dtype=x.dtype, device=x.device)
        stage, x_random = stage_of[id(layer)], inputs[key]
        calls[stage].linear.append(LinearCall(layer, x_random))
        calls[stage].kernels.append(lambda: fused(layer, x_random))
        current_stage = stage
        inside_fused = True
        try:
            return fused(layer, x)
        finally:
            inside_fused = False

    def recorded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options) -> torch.Tensor:
        calls[current_stage].kernels.append(lambda: attention(q, k, v, **options))
        return attention(q, k, v, **options)

    backend.linear_gelu, backend.attention = linear_gelu, recorded_attention
    try:
        with torch.compiler.set_stance("force_eager"):
            policy.get_action(observation, noise=noise)
    finally:
        del backend.linear_gelu, backend.attention
        for handle in handles:
            handle.remove()
    return calls


@torch.inference_mode()
def replay_seconds(backend: Backend, calls: list[Callable[[], torch.Tensor]]) -> float:
    """Seconds the calls take run back to back."""
    backend.synchronize()
    start = time.perf_counter()
    for call in calls:
        call()
    backend.synchronize()
    return time.perf_counter() - start


# ---- memory -------------------------------------------------------------------------------------------------
class MemoryPhase:
    """Peak memory of what a phase adds to what was there before it (the other path stays loaded and idle): the
    device allocator's where the backend tracks one, and the process's resident set (Linux VmHWM, restarted through
    /proc/self/clear_refs)."""

    def __init__(self, backend: Backend, baseline_rss: Optional[int]):
        self.backend, self.baseline_rss = backend, baseline_rss

    def __enter__(self) -> "MemoryPhase":
        self.backend.reset_peak_memory()
        self.device_start = self.backend.memory_allocated()
        self.rss_start = status_bytes("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.rss_start = None  # the peak cannot be restarted: no per-phase figure
        return self

    def __exit__(self, *exc: object) -> None:
        peak = status_bytes("VmHWM")
        self.process_peak = None
        if peak is not None and self.rss_start is not None and self.baseline_rss is not None:
            self.process_peak = self.baseline_rss + peak - self.rss_start
        device_peak = self.backend.max_memory_allocated()
        self.device_peak = None if device_peak is None else device_peak - (self.device_start or 0)


def status_bytes(field_name: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
