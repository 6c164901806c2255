# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""CPU backend: PyTorch's fused SDPA kernel for attention, linear weights packed once for oneDNN, and inductor for
the denoising loop where the weights stay unpacked.

Measured on the 2-core development machine (full-size action head, loop of 4 steps, median of 8): bfloat16 eager
0.69 s, packed eager 0.62 s, inductor 0.66 s (77 s to compile on a cold cache); float32 1.95 / 1.55 / 1.85 s. Packing is
bit-identical to `F.linear`, which reorders every weight into oneDNN's blocked layout at every call. An inductor
graph cannot take the packed (opaque) weights, so `prepare` packs and `compile` then leaves the loop eager; without
`prepare` (or with `pack_weights=False`) the loop is compiled with inductor.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

from gr00t_npu_node.backends.base import Backend, fused_rms_norm
from gr00t_npu_node.backends.compiled import compile_inductor

PACKED_DTYPES = (torch.bfloat16, torch.float32)


class _PackedLinearFunction(torch.autograd.Function):
    """The packed layer with a gradient for its input, for the guided real-time chunking pass that differentiates
    the DiT with respect to its actions: oneDNN's packed kernel has no backward (autograd would silently return zero
    through it). The weights are frozen, so only the input's gradient is computed, from the dense weight that the
    opaque one unpacks to (one reorder per backward call, the cost F.linear pays at every call)."""

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.weight = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return torch.matmul(grad, ctx.weight.to_dense()), None, None


class PackedLinear(nn.Module):
    """An inference-only nn.Linear whose weight was reordered once into oneDNN's blocked layout (what inductor's
    weight freezing does), instead of at every call. `weight` is that opaque tensor; it keeps dtype and shape."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach())
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return _PackedLinearFunction.apply(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """The state dict keeps nn.Linear's names and plain tensors, so a prepared model still saves like the loaded
        one."""
        destination[prefix + "weight"] = self.weight.to_dense()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()


def pack_linear_weights(model: nn.Module) -> int:
    """Replaces every plain CPU nn.Linear of a packable dtype by a PackedLinear, one at a time so that each unpacked
    weight is freed before the next is packed (memory does not grow); weights shared with another module (the tied
    LM head) are left alone. Returns how many layers were packed."""
    owners: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        owners[id(param)] = owners.get(id(param), 0) + 1
    names = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear
        and module.weight.device.type == "cpu"
        and module.weight.dtype in PACKED_DTYPES
        and owners[id(module.weight)] == 1
    ]
    with torch.no_grad():
        for name in names:
            parent_name, _, leaf = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, leaf, PackedLinear(getattr(parent, leaf)))
    return len(names)


class CpuBackend(Backend):
    name = "cpu"
    device_type = "cpu"
    default_dtype = torch.float32
    # Measured at full size in bfloat16 on the development CPU (README, real-time chunking): the guided mode's
    # backward pass through the DiT adds 2.9 s to a 1.1 s inference, the identity Jacobian 0.09 s.
    default_rtc_mode = "identity"

    def __init__(self, *, pack_weights: bool = True):
        self.pack_weights = pack_weights and torch.backends.mkldnn.is_available()
        self.packed_layers = 0

    def linear_gelu(self, linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """On a packed layer, the GELU runs in the GEMM's epilogue (oneDNN post-op): one pass less over the
        activations, and one bfloat16 rounding instead of two. A pass that autograd records (guided real-time
        chunking) takes the layer and the GELU apart, as the fused epilogue has no backward."""
        if isinstance(linear, PackedLinear) and not torch.is_grad_enabled():
            return torch.ops.mkldnn._linear_pointwise(x, linear.weight, linear.bias, "gelu", [], "tanh")
        return super().linear_gelu(linear, x)

    def int8_linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One scale per output channel: PyTorch's W8A16 operator `torch._weight_int8pack_mm` (x [m, k] times the
        int8 [n, k] weight, then the scale, in x's dtype); group-wise scales: the reference. Measured on the 2-core
        development machine (one interleaved run at the DiT's and the LLM's shapes), no maintained int8 kernel here
        reads int8 weights faster than the packed oneDNN kernel reads bfloat16 ones: this operator 0.15-0.36x the
        bfloat16 speed, the int8 weight converted then multiplied 0.26-0.37x, inductor's weight-only-int8 GEMM
        template (max-autotune, frozen weights) 0.7-1.0x, fbgemm's dynamic W8A8 (not weight-only) 0.3-0.7x. So int8
        is for memory on the CPU, not speed (README, Devices)."""
        if layer.group_size is not None:
            return super().int8_linear(layer, x)
        out = torch._weight_int8pack_mm(x.reshape(-1, layer.in_features), layer.weight, layer.scale)
        out = out.view(*x.shape[:-1], layer.out_features)
        return out if layer.bias is None else out + layer.bias

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return fused_rms_norm(x, weight, eps)

    def prepare(self, model: nn.Module) -> None:
        if self.pack_weights:
            self.packed_layers += pack_linear_weights(model)

    def compile(self, fn: Callable, *, name: str) -> Callable:
        """Inductor, unless `prepare` packed the weights: dynamo cannot trace opaque oneDNN tensors, and the
        packed eager loop is the faster of the two here."""
        return fn if self.packed_layers else compile_inductor(fn)
