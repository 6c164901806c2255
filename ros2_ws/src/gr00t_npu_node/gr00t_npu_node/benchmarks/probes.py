# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""What `inference` measures about one `Gr00tPolicy.get_action`, from outside the policy: stage times (at the
boundaries of the model's captured functions), FLOPs per stage (torch's FlopCounterMode), the linear-layer and
attention calls of each stage with the bytes they must move (for replaying them alone and for the byte floor), the
machine's two ceilings (matrix throughput at a stage's GEMM shapes, memory bandwidth), and peak memory."""
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
from gr00t_npu_node.model.action_head import CategorySpecificLinear
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
    vision (preprocess before it), the return of its captured vision function ends vision, that of its captured
    LLM function ends llm, the model's return ends the action head (decode after it)."""
    model, backend = policy.model, policy.model.backend
    marks: list[float] = []

    def mark(*_hook_arguments: object) -> None:
        backend.synchronize()
        marks.append(time.perf_counter())

    def marked(fn: Callable) -> Callable:
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            mark()
            return out

        return call

    encode, language = model._encode, model._language
    model._encode, model._language = marked(encode), marked(language)
    handles = [model.register_forward_pre_hook(mark), model.register_forward_hook(mark)]
    try:
        mark()
        policy.get_action(observation, noise=noise)
        mark()
    finally:
        model._encode, model._language = encode, language
        for handle in handles:
            handle.remove()
    return dict(zip(STAGES[:-1], np.diff(marks).tolist()))


# ---- FLOPs --------------------------------------------------------------------------------------------------
def _packed_linear_flop(x_shape, w_shape, *_args, **_kwargs) -> int:
    """The CPU backend's oneDNN-packed linear layer (weight [out, in])."""
    return 2 * prod(x_shape[:-1]) * w_shape[1] * w_shape[0]


def _cpu_attention_flop(query_shape, key_shape, value_shape, *_args, **_kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _int8_linear_flop(x_shape, w_shape, *_args, **_kwargs) -> int:
    """`torch._weight_int8pack_mm` (int8 weight [out, in])."""
    return 2 * prod(x_shape[:-1]) * w_shape[1] * w_shape[0]


# Kernels FlopCounterMode has no formula for: the packed linear layer, the int8-weight product and PyTorch's CPU
# flash attention.
CPU_KERNEL_FLOPS = {
    torch.ops.mkldnn._linear_pointwise: _packed_linear_flop,
    torch.ops.aten._weight_int8pack_mm: _int8_linear_flop,
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
        counting = FlopCounterMode(display=False, custom_mapping=CPU_KERNEL_FLOPS)
        with torch.compiler.set_stance("force_eager"), counting as counter:
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


# ---- the calls of a stage, for replaying them alone and counting their bytes ---------------------------------
def tensor_bytes(*tensors: Optional[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


@dataclass
class LinearCall:
    """One matrix product of a layer as the model made it: `layer(*args)`, args[0] the input [..., in]."""

    layer: nn.Module
    args: tuple
    shape: tuple[int, int, int]  # (rows, in, out)
    weight_bytes: int  # what the call reads of the layer's parameters (int8 weights and their scales included)

    @property
    def flops(self) -> int:
        rows, inputs, outputs = self.shape
        return 2 * rows * inputs * outputs

    @property
    def bytes(self) -> int:
        """The fewest bytes the call moves: its weights read once, its input read and its output written once."""
        rows, inputs, outputs = self.shape
        return self.weight_bytes + rows * (inputs + outputs) * self.args[0].element_size()

    def run(self) -> torch.Tensor:
        return self.layer(*self.args)


def linear_call(layer: nn.Module, args: tuple, x_random: torch.Tensor) -> LinearCall:
    """The call of an nn.Linear-like layer (weight [out, in], optionally scale and bias) or of an embodiment-specific
    CategorySpecificLinear (W [categories, in, out]: one category's slice is read per sample or per batch)."""
    rows = x_random.numel() // x_random.shape[-1]
    if isinstance(layer, CategorySpecificLinear):
        _, inputs, outputs = layer.W.shape
        category = args[1]
        slices = 1 if isinstance(category, int) else category.numel()
        weight_bytes = slices * (tensor_bytes(layer.W) + tensor_bytes(layer.b)) // layer.W.shape[0]
        return LinearCall(layer, (x_random, *args[1:]), (rows, inputs, outputs), weight_bytes)
    weight_bytes = tensor_bytes(layer.weight, getattr(layer, "scale", None), layer.bias)
    return LinearCall(layer, (x_random,), (rows, layer.in_features, layer.out_features), weight_bytes)


@dataclass
class StageCalls:
    """The calls of one stage of one inference, in order: its matrix products (linear layers and embodiment-specific
    layers), every kernel call as it ran (linear layers with their fused epilogues, attention), and the fewest bytes
    the products and attention calls move."""

    linear: list[LinearCall] = field(default_factory=list)
    kernels: list[Callable[[], torch.Tensor]] = field(default_factory=list)
    attention_bytes: int = 0

    @property
    def bytes(self) -> int:
        return sum(call.bytes for call in self.linear) + self.attention_bytes


def record_calls(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> dict[str, StageCalls]:
    """Every matrix-product and attention call of one inference, in order, per stage (the captured functions run
    eagerly so that each call is seen). Linear layers get a random input of the shape they had (one input per shape:
    the replay's memory traffic is the weights', as in the model); attention keeps its real inputs (layout and
    strides matter to its kernel). An attention call belongs to the stage of the projections before it."""
    calls: dict[str, StageCalls] = {stage: StageCalls() for stage in STAGE_MODULES}
    current_stage = next(iter(STAGE_MODULES))
    inputs: dict[tuple, torch.Tensor] = {}
    handles = []
    stage_of: dict[int, str] = {}
    inside_fused = False

    def random_like(x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in inputs:
            inputs[key] = torch.randn(x.shape, dtype=x.dtype, device=x.device)
        return inputs[key]

    for name, module in policy.model.named_modules():
        stage = _stage_of(name)
        if stage is not None:
            stage_of[id(module)] = stage
        is_linear = hasattr(module, "in_features") and hasattr(module, "out_features")
        if stage is None or not (is_linear or isinstance(module, CategorySpecificLinear)):
            continue

        def hook(layer: nn.Module, args: tuple, stage: str = stage) -> None:
            nonlocal current_stage
            if inside_fused:
                return
            call = linear_call(layer, args, random_like(args[0]))
            calls[stage].linear.append(call)
            calls[stage].kernels.append(call.run)
            current_stage = stage

        handles.append(module.register_forward_pre_hook(hook))
    # A backend may run linear + GELU as one fused call that bypasses the layer's hooks: record those too.
    backend = policy.model.backend
    fused, attention = backend.linear_gelu, backend.attention

    def linear_gelu(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        nonlocal inside_fused, current_stage
        stage, x_random = stage_of[id(layer)], random_like(x)
        calls[stage].linear.append(linear_call(layer, (x,), x_random))
        calls[stage].kernels.append(lambda: fused(layer, x_random))
        current_stage = stage
        inside_fused = True
        try:
            return fused(layer, x)
        finally:
            inside_fused = False

    def recorded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options) -> torch.Tensor:
        out = attention(q, k, v, **options)
        calls[current_stage].kernels.append(lambda: attention(q, k, v, **options))
        calls[current_stage].attention_bytes += tensor_bytes(q, k, v, out)
        return out

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


# ---- the machine's ceilings ---------------------------------------------------------------------------------
# Each shape's product is repeated this many times back to back after a first call, so that its weights come from
# the cache: what is timed is the matrix units at that shape, not the memory.
HOT_REPEATS = 4
# The bandwidth probe streams buffers this large, far beyond any cache.
BANDWIDTH_BYTES = 1 << 30


class MatrixProbe:
    """The machine's matrix throughput at a stage's GEMM shapes: one fresh layer per distinct (rows, in, out) in the
    model dtype, put in the backend's fastest layout (`Backend.prepare`), each timed repeated on cached weights;
    the ceiling is the stage's product FLOPs over the sum of its calls' times."""

    def __init__(self, backend: Backend, calls: list[LinearCall], dtype: torch.dtype):
        self.backend = backend
        self.counts: dict[tuple[int, int, int], int] = {}
        for call in calls:
            self.counts[call.shape] = self.counts.get(call.shape, 0) + 1
        self.layers: dict[tuple[int, int, int], tuple[nn.Module, torch.Tensor]] = {}
        device = backend.device()
        for rows, inputs, outputs in self.counts:
            layer = nn.Linear(inputs, outputs, bias=False, dtype=dtype, device=device)
            holder = nn.Sequential(layer).requires_grad_(False)
            backend.prepare(holder)
            x = torch.randn(rows, inputs, dtype=dtype, device=device)
            self.layers[(rows, inputs, outputs)] = (holder, x)
        self.flops = sum(2 * rows * i * o * n for (rows, i, o), n in self.counts.items())

    @torch.inference_mode()
    def gflops(self) -> float:
        seconds = 0.0
        for shape, (layer, x) in self.layers.items():
            layer(x)
            self.backend.synchronize()
            start = time.perf_counter()
            for _ in range(HOT_REPEATS):
                layer(x)
            self.backend.synchronize()
            seconds += (time.perf_counter() - start) / HOT_REPEATS * self.counts[shape]
        return self.flops / seconds / 1e9


class BandwidthProbe:
    """The machine's memory bandwidth: the faster of a matrix-vector product over a model-dtype matrix of
    BANDWIDTH_BYTES (bytes read, as a batch-1 linear layer reads its weights) and a copy of half that (bytes read and
    written), each far larger than any cache."""

    def __init__(self, backend: Backend, dtype: torch.dtype):
        self.backend = backend
        device, element = backend.device(), torch.empty(0, dtype=dtype).element_size()
        self.matrix = torch.randn(BANDWIDTH_BYTES // element // 4096, 4096, dtype=dtype, device=device)
        self.vector = torch.randn(4096, dtype=dtype, device=device)
        self.source = self.matrix.view(-1)[: self.matrix.numel() // 2]
        self.target = torch.empty_like(self.source)

    @torch.inference_mode()
    def gbytes_per_second(self) -> float:
        rates = []
        for run, nbytes in (
            (lambda: self.matrix @ self.vector, tensor_bytes(self.matrix)),
            (lambda: self.target.copy_(self.source), 2 * tensor_bytes(self.source)),
        ):
            run()
            self.backend.synchronize()
            start = time.perf_counter()
            run()
            self.backend.synchronize()
            rates.append(nbytes / (time.perf_counter() - start) / 1e9)
        return max(rates)


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
