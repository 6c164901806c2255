# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Weight-only int8 (W8A16): the linear layers whose weights dominate the bytes read per inference, stored as int8
with a scale per output channel (or per group of input channels), quantized at load from the checkpoint's weights.
Activations, norms, attention and every other weight stay in the model dtype; the backend runs the matrix products
(`Backend.int8_linear`).

    quantize_linear_layers(model, Int8Weights(group_size=None), backend)   # after the weights are loaded
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend

INT8 = "int8"
# int8 keeps values in [-127, 127] (symmetric: -128 is left out, so that the scale maps both signs alike).
INT8_MAX = 127
# What is quantized, by module name: the LLM's projections and the DiT's per-step linear layers (attention, feed-
# forward, the output projection). Left in the model dtype: the vision tower (compute-bound: fewer bytes do not make
# it faster), the AdaLN layers (evaluated once per timestep at start-up), the embodiment-specific encoders/decoders,
# the embeddings and the projector.
QUANTIZED_LAYERS = re.compile(
    r"backbone\.model\.language_model\.model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
    r"|action_head\.model\.(transformer_blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))"
    r"|proj_out_2)"
)


@dataclass(frozen=True)
class Int8Weights:
    """`group_size` None: one scale per output channel; else one per output channel and group of that many
    consecutive input channels (the last group of a layer whose width it does not divide is shorter)."""

    group_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.group_size is not None and self.group_size < 1:
            raise ValueError(f"int8 group_size {self.group_size} must be a positive number of input channels (or None)")


class QuantizedLinear(nn.Module):
    """An inference-only nn.Linear with int8 weights: y = x @ (weight * scale)^T + bias, computed by the backend.

    `weight` int8 [out, in] (nn.Linear's layout); `scale` [out] per output channel, or [out, ceil(in / group_size)]
    per group, in the activations' dtype; `bias` [out] or None."""

    def __init__(
        self,
        weight: torch.Tensor,
        scale: torch.Tensor,
        bias: Optional[torch.Tensor],
        group_size: Optional[int],
        backend: Backend,
    ):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.group_size = group_size
        # Parameters (frozen), not buffers: the graph compilers treat parameters as the model's constant weights.
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.scale = nn.Parameter(scale, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return _Int8LinearFunction.apply(x, self)
        return self.backend.int8_linear(self, x)

    def dequantized(self) -> torch.Tensor:
        """The weight the layer computes with, [out, in] in float32."""
        return self.weight.float() * expand_scale(self.scale.float(), self.group_size, self.in_features)


class _Int8LinearFunction(torch.autograd.Function):
    """The device's int8 product with a gradient for its input, for the guided real-time chunking pass that
    differentiates the DiT with respect to its actions: the W8A16 kernels (`_weight_int8pack_mm`,
    `npu_weight_quant_batchmatmul`) have no backward. The weights are frozen, so only the input's gradient is
    computed, against the dequantized weight (in the gradient's dtype)."""

    @staticmethod
    def forward(x: torch.Tensor, layer: QuantizedLinear) -> torch.Tensor:
        return layer.backend.int8_linear(layer, x)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.layer = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.matmul(grad, ctx.layer.dequantized().to(grad.dtype)), None


def expand_scale(scale: torch.Tensor, group_size: Optional[int], in_features: int) -> torch.Tensor:
    """[out] or [out, groups] scales -> a factor that broadcasts over the [out, in] weight. Groups are expanded by
    indexing (input channel i takes group i // group_size), which inductor compiles correctly where a broadcast then
    reshaped and sliced was miscompiled (torch 2.13, against a transposed int8 weight)."""
    if group_size is None:
        return scale[:, None]
    return scale[:, torch.arange(in_features, device=scale.device) // group_size]


def quantize_weight(weight: torch.Tensor, group_size: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantization of a [out, in] weight: scale = max |w| / 127 over each output channel (or group),
    stored in the weight's dtype, and q = round(w / scale) computed against that stored scale, so that the kernels
    reproduce q * scale exactly. A channel (group) of zeros gets scale 1 (q = 0)."""
    out_features, in_features = weight.shape
    w = weight.float()
    if group_size is None:
        absmax = w.abs().amax(dim=1)
    else:
        groups = -(-in_features // group_size)
        absmax = F.pad(w, (0, groups * group_size - in_features)).view(out_features, groups, group_size).abs().amax(-1)
    scale = torch.where(absmax > 0, absmax / INT8_MAX, torch.ones_like(absmax)).to(weight.dtype)
    q = torch.round(w / expand_scale(scale.float(), group_size, in_features)).clamp(-INT8_MAX, INT8_MAX).to(torch.int8)
    return q, scale


def quantize_linear_layers(model: nn.Module, weights: Int8Weights, backend: Backend) -> int:
    """Replaces every nn.Linear named by QUANTIZED_LAYERS with a QuantizedLinear, one at a time, so that each
    full-precision weight is freed before the next is quantized (memory only shrinks). Returns how many were
    replaced."""
    names = [
        name for name, module in model.named_modules()
        if type(module) is nn.Linear and QUANTIZED_LAYERS.fullmatch(name)
    ]
    with torch.no_grad():
        for name in names:
            parent_name, _, leaf = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            linear = getattr(parent, leaf)
            q, scale = quantize_weight(linear.weight, weights.group_size)
            bias = None if linear.bias is None else linear.bias.detach()
            setattr(parent, leaf, QuantizedLinear(q, scale, bias, weights.group_size, backend))
    return len(names)
