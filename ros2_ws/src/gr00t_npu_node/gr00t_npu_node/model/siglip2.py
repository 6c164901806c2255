# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""SigLIP2 vision encoder as used by Eagle-Block2A-2B-v2: 14x14 patches, a learned 16x16 position grid resized
to the image, pre-LN encoder layers with per-image full attention, final LayerNorm."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.config import VisionConfig


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.patch_embedding = nn.Linear(config.num_channels * config.patch_size**2, config.hidden_size)
        self.position_embedding = nn.Embedding(config.num_patches, config.hidden_size)
        self.grid = int(config.num_patches**0.5)
        self._resized: dict[tuple[int, int], torch.Tensor] = {}

    def resized_position_embedding(self, rows: int, cols: int) -> torch.Tensor:
        """The 16x16 grid resized (bilinear, antialiased) to rows x cols, in float32 as upstream does on CPU.

        It depends only on the weights and the image size, so it is computed once per size (`Eagle3VL.shape_tables`
        does it before a captured graph reads it)."""
        key = (rows, cols)
        if key not in self._resized:
            grid = self.position_embedding.weight.reshape(self.grid, self.grid, -1).permute(2, 0, 1)[None]
            resized = F.interpolate(
                grid.float(), size=(rows, cols), mode="bilinear", align_corners=False, antialias=True
            )
            table = resized[0].flatten(1).t().to(self.position_embedding.weight.dtype)
            # A captured graph reads the cached table where it is, instead of copying it into an input slot.
            torch._dynamo.mark_static_address(table)
            self._resized[key] = table
        return self._resized[key]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, C, H, W] -> [N, (H/p)*(W/p), hidden]; patch features ordered (row, col, channel)."""
        n, c, h, w = pixel_values.shape
        p = self.patch_size
        rows, cols = h // p, w // p
        patches = pixel_values.reshape(n, c, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1)
        patches = patches.reshape(n, rows * cols, p * p * c)
        embeddings = self.patch_embedding(patches.to(self.patch_embedding.weight.dtype))
        return embeddings + self.resized_position_embedding(rows, cols)


class VisionAttention(nn.Module):
    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        shape = (b, s, self.num_heads, self.head_dim)
        q, k, v = self.q_proj(x).view(shape), self.k_proj(x).view(shape), self.v_proj(x).view(shape)
        out = self.backend.attention(q, k, v, scale=self.head_dim**-0.5)
        return self.out_proj(out.reshape(b, s, -1))


class VisionMLP(nn.Module):
    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.backend.linear_gelu(self.fc1, x))


class VisionEncoderLayer(nn.Module):
    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = VisionAttention(config, backend)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config, backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.layers = nn.ModuleList(VisionEncoderLayer(config, backend) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class PoolingHead(nn.Module):
    """SigLIP2's attention-pooling head. It is in the released checkpoint but GR00T never runs it."""

    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.probe = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.attention = nn.MultiheadAttention(config.hidden_size, config.num_attention_heads, batch_first=True)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(config, backend)


class VisionTransformer(nn.Module):
    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.encoder = VisionEncoder(config, backend)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = PoolingHead(config, backend)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, C, H, W], all images the same size -> last hidden state [N, patches, hidden].

        Each image is its own batch row, so attention never crosses images (upstream's per-image varlen packing)."""
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))


class Siglip2VisionModel(nn.Module):
    """Wrapper kept for the checkpoint's `vision_model.vision_model.*` parameter names."""

    def __init__(self, config: VisionConfig, backend: Backend):
        super().__init__()
        self.vision_model = VisionTransformer(config, backend)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixel_values)
