# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""AlternateVLDiT: the diffusion transformer of the action head. Odd blocks attend over the state+action tokens,
even blocks cross-attend to the vision-language tokens (text-only and image-only in turn), each block AdaLN-
modulated by the denoising timestep. Parameter names follow diffusers' BasicTransformerBlock."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.config import Gr00tConfig

KV = tuple[torch.Tensor, torch.Tensor]


def timestep_sinusoid(timesteps: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """diffusers `Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=1)`: [cos, sin], float32."""
    half = channels // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / (half - 1))
    angles = timesteps[:, None].float() * freqs[None]
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimestepEncoder(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = TimestepEmbedding(256, dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        weight = self.timestep_embedder.linear_1.weight
        return self.timestep_embedder(timestep_sinusoid(timesteps).to(weight.dtype))


class AdaLayerNorm(nn.Module):
    """Scale and shift from the timestep embedding: `(scale, shift)` order, LayerNorm without affine."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: Optional[int], backend: Backend):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(context_dim or dim, inner)
        self.to_v = nn.Linear(context_dim or dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])
        self.backend = backend

    def key_values(self, context: torch.Tensor) -> KV:
        b, s, _ = context.shape
        shape = (b, s, self.heads, self.head_dim)
        return self.to_k(context).view(shape), self.to_v(context).view(shape)

    def forward(self, x: torch.Tensor, kv: KV, key_mask: Optional[torch.Tensor]) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.to_q(x).view(b, s, self.heads, self.head_dim)
        out = self.backend.attention(q, kv[0], kv[1], key_mask=key_mask, scale=self.head_dim**-0.5)
        return self.to_out[0](out.reshape(b, s, -1))


class GeluProjection(nn.Module):
    def __init__(self, dim: int, inner: int, backend: Backend):
        super().__init__()
        self.proj = nn.Linear(dim, inner)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.linear_gelu(self.proj, x)


class FeedForward(nn.Module):
    def __init__(self, dim: int, backend: Backend):
        super().__init__()
        # Index 1 is diffusers' dropout; keeping the slot keeps the checkpoint's `net.2` name.
        self.net = nn.ModuleList([GeluProjection(dim, 4 * dim, backend), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: Optional[int], backend: Backend):
        super().__init__()
        self.is_cross = context_dim is not None
        self.norm1 = AdaLayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim, context_dim, backend)
        self.ff = FeedForward(dim, backend)

    def modulation(self, temb: torch.Tensor) -> torch.Tensor:
        return self.norm1.linear(F.silu(temb))

    def forward(
        self, x: torch.Tensor, modulation: torch.Tensor, kv: Optional[KV], key_mask: Optional[torch.Tensor]
    ) -> torch.Tensor:
        scale, shift = modulation.chunk(2, dim=-1)
        normed = F.layer_norm(x, x.shape[-1:], eps=1e-5) * (1 + scale[:, None]) + shift[:, None]
        if kv is None:
            kv = self.attn1.key_values(normed)
        x = x + self.attn1(normed, kv, key_mask)
        return x + self.ff(F.layer_norm(x, x.shape[-1:], eps=1e-5))


class AlternateVLDiT(nn.Module):
    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        dim = config.dit_inner_dim
        heads, head_dim = config.dit_num_attention_heads, config.dit_attention_head_dim
        self.text_every = 2 * config.attend_text_every_n_blocks
        self.timestep_encoder = TimestepEncoder(dim)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(dim, heads, head_dim, config.backbone_embedding_dim if i % 2 == 0 else None, backend)
            for i in range(config.dit_num_layers)
        )
        self.proj_out_1 = nn.Linear(dim, 2 * dim)
        self.proj_out_2 = nn.Linear(dim, config.dit_output_dim)

    def modulations(self, timesteps: torch.Tensor) -> list[torch.Tensor]:
        """Every block's AdaLN (scale, shift) and the output's (shift, scale) for timestep buckets [B]; they depend
        only on the timestep, so the optimized path computes them once per bucket."""
        temb = self.timestep_encoder(timesteps)
        return [block.modulation(temb) for block in self.transformer_blocks] + [self.proj_out_1(F.silu(temb))]

    def cross_key_values(self, context: torch.Tensor) -> list[Optional[KV]]:
        """K/V of the vision-language tokens for each cross-attention block (None for self-attention blocks)."""
        return [block.attn1.key_values(context) if block.is_cross else None for block in self.transformer_blocks]

    def forward(
        self,
        x: torch.Tensor,
        modulations: list[torch.Tensor],
        cross_kv: list[Optional[KV]],
        text_mask: torch.Tensor,
        image_mask: torch.Tensor,
    ) -> torch.Tensor:
        for i, block in enumerate(self.transformer_blocks):
            key_mask = None if not block.is_cross else (text_mask if i % self.text_every == 0 else image_mask)
            x = block(x, modulations[i], cross_kv[i], key_mask)
        shift, scale = modulations[-1].chunk(2, dim=-1)
        x = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
        return self.proj_out_2(x)
