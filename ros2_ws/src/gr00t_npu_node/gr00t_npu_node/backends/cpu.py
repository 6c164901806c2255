"""CPU backend: PyTorch's fused SDPA for attention and inductor for the denoising loop."""
from __future__ import annotations

from typing import Callable

import torch

from gr00t_npu_node.backends.base import Backend
from gr00t_npu_node.backends.compiled import compile_inductor


class CpuBackend(Backend):
    """The reference operators (SDPA already dispatches to the fused CPU flash-attention kernel) plus an inductor
    graph of the denoising loop."""

    name = "cpu"
    device_type = "cpu"
    default_dtype = torch.float32

    def compile(self, fn: Callable, *, name: str) -> Callable:
        return compile_inductor(fn)
