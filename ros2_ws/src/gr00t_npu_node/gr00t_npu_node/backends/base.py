# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The device seam: every device-specific operator the model uses, and how a function is graph-compiled.

Model code calls these methods and never asks which device it runs on. Layout convention for attention is
BSND (`[batch, seq, heads, head_dim]`), which is what a linear projection followed by `view` produces, so no
backend needs a transpose before its kernel unless the kernel itself wants one.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def causal_key_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """[B, S] key mask -> [B, S, S] bool, True where query i may attend key j: j <= i and (key j valid or j == i)."""
    s = key_mask.shape[-1]
    eye = torch.eye(s, dtype=torch.bool, device=key_mask.device)
    return (key_mask[:, None, :] | eye) & torch.ones_like(eye).tril()


def fused_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """`Backend.rms_norm`'s math with the float32 normalization in one kernel (`F.rms_norm`) instead of five
    elementwise passes."""
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


class Backend:
    """Plain PyTorch reference implementation; device backends override what they accelerate."""

    name = "cpu"
    device_type = "cpu"
    default_dtype = torch.float32
    index: Optional[int] = None
    # The real-time chunking mode (gr00t_npu_node.guidance.RTC_MODES) a policy on this device uses by default: the
    # paper's guidance, unless its backward pass costs this device more than it is worth (see the device's backend).
    default_rtc_mode = "guided"

    def device(self) -> torch.device:
        return torch.device(self.device_type, self.index) if self.index is not None else torch.device(self.device_type)

    def plain(self) -> "Backend":
        """The reference operators on this backend's device, eager: the baseline the optimized path is checked
        and benchmarked against."""
        plain = Backend()
        plain.name, plain.device_type, plain.default_dtype = f"{self.name}-plain", self.device_type, self.default_dtype
        plain.index, plain.default_rtc_mode = self.index, self.default_rtc_mode
        return plain

    def _accelerator(self) -> Optional[ModuleType]:
        """`torch.cuda`, `torch.npu`, ...: the module that synchronizes and counts this device's memory; None on CPU,
        where work is synchronous and peak memory is the process's peak RSS."""
        return None if self.device_type == "cpu" else torch.get_device_module(self.device_type)

    # ---- operators -------------------------------------------------------------------------------------
    def attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        causal: bool = False,
        key_mask: Optional[torch.Tensor] = None,
        scale: Optional[float] = None,
    ) -> torch.Tensor:
        """Scaled dot-product attention.

        q: [B, Sq, Hq, D]; k, v: [B, Sk, Hkv, D] with Hq a multiple of Hkv (grouped K/V).
        key_mask: optional bool [B, Sk], True where the key may be attended.
        causal: query i attends keys j <= i (Sq == Sk). With a key_mask as well, a query at a masked (padding)
        position still attends to itself, so its row stays finite.
        Returns [B, Sq, Hq, D].
        """
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        mask = None
        if key_mask is not None:
            mask = key_mask[:, None, None, :]
            if causal:
                mask = causal_key_mask(key_mask)[:, None]
                causal = False
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, scale=scale, enable_gqa=k.shape[1] != q.shape[1]
        )
        return out.transpose(1, 2)

    def linear_gelu(self, linear: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """GELU (tanh approximation) of `linear(x)`; a device that can fuses it into the matrix product."""
        return F.gelu(linear(x), approximate="tanh")

    def int8_linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`layer` (a `model.quantization.QuantizedLinear`: int8 weight [out, in], scale per output channel or
        group, bias) applied to x [..., in]: in float32 from the dequantized weight, rounded once to x's dtype (the
        reference each device's kernel is checked against)."""
        bias = None if layer.bias is None else layer.bias.float()
        return F.linear(x.float(), layer.dequantized(), bias).to(x.dtype)

    def rotary(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding, half-split ("rotate_half") convention. x [B, S, H, D]; cos, sin [1, S, 1, D]."""
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        """Qwen3 RMSNorm: statistics in float32, weight applied in the input dtype."""
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        return weight * y.to(x.dtype)

    def add_rms_norm(
        self, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual add fused with the following RMSNorm: returns (rms_norm(x + residual), x + residual)."""
        total = x + residual
        return self.rms_norm(total, weight, eps), total

    # ---- execution -------------------------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> None:
        """Puts loaded weights into the layout this device's kernels run fastest from; called once, after loading
        and before `compile`, on the optimized path. The reference keeps the weights as loaded."""

    def compile(self, fn: Callable, *, name: str) -> Callable:
        """Graph-compile `fn` (static shapes, whole graph). A replayed graph may return its own output buffers, which
        the next call overwrites: read the results before calling again. The reference backend runs `fn` eagerly."""
        return fn

    def begin_inference(self) -> None:
        """Called before the captured functions of one inference run, in order; a backend whose replayed graphs
        share one memory pool marks the start of a new round here."""

    def synchronize(self) -> None:
        """Wait for queued device work, so that host clocks measure it."""
        if (accelerator := self._accelerator()) is not None:
            accelerator.synchronize(self.device())

    def max_memory_allocated(self) -> Optional[int]:
        """Peak device memory in bytes, where the device tracks it."""
        accelerator = self._accelerator()
        return None if accelerator is None else accelerator.max_memory_allocated(self.device())

    def memory_allocated(self) -> Optional[int]:
        """Device memory in use now, in bytes, where the device tracks it."""
        accelerator = self._accelerator()
        return None if accelerator is None else accelerator.memory_allocated(self.device())

    def reset_peak_memory(self) -> None:
        """Start a new peak for `max_memory_allocated`."""
        if (accelerator := self._accelerator()) is not None:
            accelerator.reset_peak_memory_stats(self.device())
