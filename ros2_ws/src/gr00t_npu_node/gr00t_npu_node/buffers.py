"""Preallocated model inputs of the optimized path: one device tensor per input, allocated when its shape first
appears and refilled in place at every call.

A call then allocates no device memory for its inputs, and the buffers keep their addresses, which are marked
static for the graph compilers: a captured graph (CUDA graphs, Ascend aclgraph) reads them where they are instead
of copying each into a private input slot before every replay. On an accelerator the host side is a pinned staging
tensor in the model's dtype (cast on the host, half the bytes to move in bfloat16), so the host-to-device copy is
asynchronous; `Gr00tPolicy` reads its result back (a synchronization) before the next call can refill the staging
memory.
"""
from __future__ import annotations

from typing import Optional

import torch


class InputBuffers:
    def __init__(self, device: torch.device):
        self.device = device
        self.pinned = device.type != "cpu"
        self._buffers: dict[str, torch.Tensor] = {}
        self._staging: dict[str, torch.Tensor] = {}
        self.allocations = 0

    def fill(self, name: str, value: torch.Tensor, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """`value` (a host tensor) cast to `dtype` in the buffer called `name`; returns the buffer. A new shape or
        dtype replaces the buffer (text of another length, another camera size)."""
        dtype = dtype or value.dtype
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != value.shape or buffer.dtype != dtype:
            buffer = self._allocate(name, value, dtype)
        if self.pinned:
            staging = self._staging[name]
            staging.copy_(value)
            buffer.copy_(staging, non_blocking=True)
        else:
            buffer.copy_(value)
        return buffer

    def _allocate(self, name: str, value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        buffer = self._buffers[name] = torch.empty(value.shape, dtype=dtype, device=self.device)
        torch._dynamo.mark_static_address(buffer)
        if self.pinned:
            self._staging[name] = torch.empty(value.shape, dtype=dtype, pin_memory=True)
        self.allocations += 1
        return buffer
