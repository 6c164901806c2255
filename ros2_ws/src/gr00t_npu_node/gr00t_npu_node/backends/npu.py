# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Ascend NPU backend: the model's attention, RoPE, RMSNorm and int8-weight matrix products on `torch_npu`'s fused
operators, and each captured part of the model (vision, LLM, denoising context, denoising loop, the guided loop of
real-time chunking with its backward pass) compiled into one graph by torchair.

The operators come from an `ops` provider with `torch_npu`'s function names: the real `torch_npu` module on an NPU,
or `npu_emulation` (the same contracts on CPU) for `npu-emulated`. Everything here (layout, head_dim padding,
masks, sparse_mode, grouped K/V) is therefore the same code in CI as on the device; only the kernels differ.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import npu_emulation
from gr00t_npu_node.backends.base import Backend, causal_key_mask
from gr00t_npu_node.backends.compiled import compile_inductor, with_own_code

CANN_HOME_VARIABLES = ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME")
# npu_fused_infer_attention_score takes float16/bfloat16 q/k/v with head_dim a multiple of 16 (when Q_S > 1).
FUSED_ATTENTION_DTYPES = (torch.float16, torch.bfloat16)
HEAD_DIM_ALIGNMENT = 16
# sparse_mode values of npu_fused_infer_attention_score.
SPARSE_MASK_AS_GIVEN = 0
SPARSE_CAUSAL_TOP_LEFT = 2


class NpuUnavailable(RuntimeError):
    """device=npu was asked for on a machine that cannot run it."""


def load_torch_npu() -> ModuleType:
    """Imports torch_npu, after checking that the CANN runtime it links against is installed and sourced (importing
    it without CANN fails inside a shared-library load with a less helpful message)."""
    cann = next((os.environ[v] for v in CANN_HOME_VARIABLES if os.environ.get(v)), None)
    if cann is None or not Path(cann).is_dir():
        raise NpuUnavailable(
            "device=npu needs the Ascend CANN runtime, and none is set up here: install CANN, source its set_env.sh "
            "(which sets ASCEND_HOME_PATH) and install torch-npu==2.13.0, or use device=cpu, cuda or npu-emulated."
        )
    try:
        import torch_npu  # noqa: F401  (registers the npu device with torch)
    except ImportError as error:
        raise NpuUnavailable(
            f"device=npu: CANN is at {cann} but torch_npu cannot be imported ({error}); install torch-npu matching "
            f"torch {torch.__version__} and source CANN's set_env.sh in this shell."
        ) from error
    if not torch.npu.is_available():
        raise NpuUnavailable(f"device=npu: torch_npu loaded with CANN at {cann} but no NPU is visible (check npu-smi).")
    # Prebuilt ("binary") kernels: the mode torchair graphs use, and the one whose operator constraints (e.g. the
    # BSND layout of npu_rotary_mul) this backend follows.
    torch.npu.set_compile_mode(jit_compile=False)
    return torch_npu


class NpuBackend(Backend):
    """Fused NPU operators; `compile` builds one torchair graph (GE graph mode, as in Huawei's recipe), optionally
    through torchair's on-disk compile cache."""

    name = "npu"
    device_type = "npu"
    default_dtype = torch.bfloat16

    def __init__(
        self,
        ops: ModuleType,
        *,
        index: Optional[int] = None,
        compile_cache_dir: Optional[str | Path] = None,
    ):
        self.ops = ops
        self.index = index
        self.compile_cache_dir = Path(compile_cache_dir) if compile_cache_dir is not None else None
        self._causal_masks: dict[torch.device, torch.Tensor] = {}

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
        """One fused attention call in BSND layout (the model's own layout: no transposes):
        npu_fused_infer_attention_score, or where autograd records (the guided real-time chunking pass differentiates
        the DiT with respect to its actions) npu_fusion_attention, whose backward is npu_fusion_attention_grad; the
        inference kernel has none. Both take the same masks and sparse modes, so the two passes attend alike.

        float32 goes to the reference attention, as the inference kernel computes float16/bfloat16 only. head_dim is
        zero-padded to a multiple of 16 (SigLIP2's 72 -> 80; zero columns change no score, and the padded output
        columns are cut off) with the scale of the true head_dim."""
        if q.dtype not in FUSED_ATTENTION_DTYPES:
            return super().attention(q, k, v, causal=causal, key_mask=key_mask, scale=scale)
        batch, q_len, heads, head_dim = q.shape
        kv_len, kv_heads = k.shape[1], k.shape[2]
        pad = -head_dim % HEAD_DIM_ALIGNMENT
        if pad:
            q, k, v = (F.pad(t, (0, pad)) for t in (q, k, v))
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        mask, sparse_mode = self._attention_mask(batch, q_len, kv_len, causal, key_mask, q.device)
        scale = head_dim**-0.5 if scale is None else scale
        if torch.is_grad_enabled():
            out = self.ops.npu_fusion_attention(
                q, k, v, heads, "BSND", atten_mask=mask, scale=scale, sparse_mode=sparse_mode
            )[0]
        else:
            out, _ = self.ops.npu_fused_infer_attention_score(
                q, k, v, atten_mask=mask, num_heads=heads, num_key_value_heads=kv_heads, scale=scale,
                input_layout="BSND", sparse_mode=sparse_mode,
            )
        return out[..., :head_dim] if pad else out

    def _attention_mask(
        self, batch: int, q_len: int, kv_len: int, causal: bool, key_mask: Optional[torch.Tensor], device: torch.device
    ) -> tuple[Optional[torch.Tensor], int]:
        """(atten_mask with True = masked out, sparse_mode). Plain causal uses the kernel's own causal mode with
        the compressed mask; key padding needs the full [B, 1, Sq, Skv] mask, which the kernel reads as given
        (expanded and made contiguous: the kernel neither broadcasts the query axis nor takes strided masks)."""
        if causal and key_mask is None:
            if q_len != kv_len:
                raise ValueError(f"causal attention needs as many queries as keys, got {q_len} and {kv_len}")
            return self._compressed_causal_mask(device), SPARSE_CAUSAL_TOP_LEFT
        if key_mask is None:
            return None, SPARSE_MASK_AS_GIVEN
        if causal:
            return (~causal_key_mask(key_mask))[:, None].contiguous(), SPARSE_MASK_AS_GIVEN
        masked = ~key_mask.bool()
        return masked[:, None, None, :].expand(batch, 1, q_len, kv_len).contiguous(), SPARSE_MASK_AS_GIVEN

    def _compressed_causal_mask(self, device: torch.device) -> torch.Tensor:
        if device not in self._causal_masks:
            self._causal_masks[device] = npu_emulation.compressed_causal_mask(device)
        return self._causal_masks[device]

    def int8_linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One npu_weight_quant_batchmatmul (the fused W8A16 product: int8 weights dequantized inside the matrix
        kernel). The layer's [out, in] weight and [out, groups] scale go in as transposed views, the (k, n) and
        (groups, n) forms the kernel takes (for one scale per channel, the layout its documentation recommends);
        the bias of bfloat16 activations goes in as float32, as the kernel requires."""
        if x.dtype not in npu_emulation.W8A16_DTYPES:
            return super().int8_linear(layer, x)
        bias = None if layer.bias is None else layer.bias.to(npu_emulation.W8A16_BIAS_DTYPE[x.dtype])
        scale = layer.scale if layer.group_size is None else layer.scale.t()
        out = self.ops.npu_weight_quant_batchmatmul(
            x.reshape(-1, layer.in_features).contiguous(),
            layer.weight.t(),
            scale,
            bias=bias,
            antiquant_group_size=layer.group_size or 0,
        )
        return out.view(*x.shape[:-1], layer.out_features)

    def rotary(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return self.ops.npu_rotary_mul(x, cos, sin)

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        return self.ops.npu_rms_norm(x, weight, epsilon=eps)[0]

    def add_rms_norm(
        self, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, _, total = self.ops.npu_add_rms_norm(x, residual, weight, epsilon=eps)
        return y, total

    # ---- execution -------------------------------------------------------------------------------------
    def compile(self, fn: Callable, *, name: str) -> Callable:
        """torchair graph of `fn` (whole graph, static shapes, frozen weights). With a compile cache directory the
        compiled graph is stored under `<dir>/<name>` and reloaded by later processes (`fn` must then be a method
        of an nn.Module, as torchair's cache_compile requires)."""
        import torchair

        config = torchair.CompilerConfig()
        config.experimental_config.frozen_parameter = True
        config.experimental_config.tiling_schedule_optimize = True
        if self.compile_cache_dir is not None:
            from torchair.inference import cache_compile

            return cache_compile(fn, config=config, dynamic=False, cache_dir=str(self.compile_cache_dir / name))
        return torch.compile(
            with_own_code(fn), backend=torchair.get_npu_backend(compiler_config=config), fullgraph=True, dynamic=False
        )


class EmulatedNpuBackend(NpuBackend):
    """The NPU code path on CPU: `npu_emulation`'s operators, and inductor in place of torchair."""

    name = "npu-emulated"
    device_type = "cpu"
    default_dtype = torch.bfloat16

    def __init__(self) -> None:
        super().__init__(npu_emulation)

    def compile(self, fn: Callable, *, name: str) -> Callable:
        return compile_inductor(fn)
