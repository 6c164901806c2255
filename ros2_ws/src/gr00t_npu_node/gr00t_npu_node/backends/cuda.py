# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""CUDA backend: SDPA (flash / memory-efficient kernels) for attention, and the denoising loop captured once as a
CUDA graph by torch.compile, which removes the per-kernel launch cost that dominates the eager action head."""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn

from gr00t_npu_node.backends.base import Backend, fused_rms_norm
from gr00t_npu_node.backends.compiled import with_own_code


class CudaUnavailable(RuntimeError):
    """device=cuda was asked for on a machine that cannot run it."""


class CudaBackend(Backend):
    name = "cuda"
    device_type = "cuda"
    default_dtype = torch.bfloat16

    def __init__(self, index: Optional[int] = None):
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise CudaUnavailable(
                f"device=cuda needs a visible NVIDIA GPU and a CUDA build of PyTorch; this is torch "
                f"{torch.__version__} ({build}) and torch.cuda.is_available() is False: use device=cpu or install "
                "a CUDA build of torch."
            )
        if index is not None and not 0 <= index < torch.cuda.device_count():
            raise CudaUnavailable(f"device=cuda:{index}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        self.index = index
        self.compile_mode = "reduce-overhead"

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return fused_rms_norm(x, weight, eps)

    def int8_linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The int8 weight converted to x's dtype inside the captured graph, the product, then the scale: inductor
        fuses the conversion into its Triton GEMM template as a prologue (under max-autotune, see `prepare`), so the
        GEMM reads one byte per weight. (PyTorch's CUDA `_weight_int8pack_mm` is a one-thread-per-output kernel
        with uncoalesced weight reads, and torchao is not a dependency.) Group-wise scales take the reference."""
        if layer.group_size is not None:
            return super().int8_linear(layer, x)
        out = torch.mm(x.reshape(-1, layer.in_features), layer.weight.t().to(x.dtype)) * layer.scale
        out = out.view(*x.shape[:-1], layer.out_features)
        return out if layer.bias is None else out + layer.bias

    def prepare(self, model: nn.Module) -> None:
        """A model holding int8 weights is captured with max-autotune (CUDA graphs as well): only its GEMM
        templates take the weight's conversion as a prologue; without it each conversion would write the bfloat16
        weight out again, more bytes than bfloat16 weights."""
        if any(parameter.dtype == torch.int8 for parameter in model.parameters()):
            self.compile_mode = "max-autotune"

    def compile(self, fn: Callable, *, name: str) -> Callable:
        """Inductor kernels replayed from a CUDA graph ("reduce-overhead", or "max-autotune" for int8 weights)."""
        return torch.compile(with_own_code(fn), mode=self.compile_mode, fullgraph=True, dynamic=False)

    def begin_inference(self) -> None:
        """The captured functions of one inference are replayed from CUDA graphs of one pool (graph trees), each
        reading the previous one's outputs in place; a new round may overwrite the last round's outputs, whose
        chunk has been copied out by then."""
        torch.compiler.cudagraph_mark_step_begin()
