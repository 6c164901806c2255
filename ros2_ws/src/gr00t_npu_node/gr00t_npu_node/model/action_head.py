# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""GR00T N1.6 action head: embodiment-specific state/action encoders and decoder around the DiT, and the
4-step Euler flow-matching loop that turns noise into a normalized action chunk, optionally guided toward the
running chunk (real-time chunking, model/rtc.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model import rtc
from gr00t_npu_node.model.config import Gr00tConfig
from gr00t_npu_node.model.dit import KV, AlternateVLDiT


class CategorySpecificLinear(nn.Module):
    """One linear layer per embodiment; `W` is stored [categories, in, out]: y = x @ W[id] + b[id]."""

    def __init__(self, categories: int, in_dim: int, out_dim: int):
        super().__init__()
        self.W = nn.Parameter(torch.empty(categories, in_dim, out_dim))
        self.b = nn.Parameter(torch.empty(categories, out_dim))

    def forward(self, x: torch.Tensor, category: torch.Tensor | int) -> torch.Tensor:
        """`category`: [B] ids, or one int for the whole batch (indexes a view of W instead of copying it)."""
        if isinstance(category, int):
            return x @ self.W[category] + self.b[category]
        return torch.bmm(x, self.W[category]) + self.b[category][:, None]


class CategorySpecificMLP(nn.Module):
    def __init__(self, categories: int, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.layer1 = CategorySpecificLinear(categories, in_dim, hidden_dim)
        self.layer2 = CategorySpecificLinear(categories, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor, category: torch.Tensor | int) -> torch.Tensor:
        return self.layer2(F.relu(self.layer1(x, category)), category)


def action_time_sinusoid(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """The action encoder's timestep code: [sin, cos] with frequencies exp(-i ln(1e4) / (dim/2)), float32."""
    half = dim // 2
    freqs = torch.exp(-torch.arange(half, dtype=torch.float32, device=timesteps.device) * (math.log(10000.0) / half))
    angles = timesteps.float()[..., None] * freqs
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


class MultiEmbodimentActionEncoder(nn.Module):
    def __init__(self, categories: int, action_dim: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.W1 = CategorySpecificLinear(categories, action_dim, hidden)
        self.W2 = CategorySpecificLinear(categories, 2 * hidden, hidden)
        self.W3 = CategorySpecificLinear(categories, hidden, hidden)

    def forward(self, actions: torch.Tensor, timesteps: torch.Tensor, category: torch.Tensor | int) -> torch.Tensor:
        a = self.W1(actions, category)
        tau = action_time_sinusoid(timesteps[:, None].expand(-1, actions.shape[1]), self.hidden).to(a.dtype)
        return self.W3(F.silu(self.W2(torch.cat((a, tau), dim=-1), category)), category)


@dataclass
class DenoiseContext:
    """Everything the denoising loop needs besides the noise, fixed for one inference."""

    state_features: torch.Tensor          # [B, 1, input_embedding_dim]
    embodiment_id: torch.Tensor | int     # [B] int64, or one id for the whole batch
    text_mask: torch.Tensor               # [B, L] bool: non-image, non-padding VL tokens
    image_mask: torch.Tensor              # [B, L] bool: image tokens
    vl_embeds: torch.Tensor               # [B, L, backbone_embedding_dim] after vlln
    cross_kv: Optional[list[Optional[KV]]] = None   # per-block VL keys/values, when computed once per inference


class Gr00tActionHead(nn.Module):
    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        self.config = config
        emb = config.input_embedding_dim
        self.vlln = nn.LayerNorm(config.backbone_embedding_dim)
        self.position_embedding = nn.Embedding(config.max_seq_len, emb)
        self.state_encoder = CategorySpecificMLP(
            config.max_num_embodiments, config.max_state_dim, config.hidden_size, emb
        )
        self.action_encoder = MultiEmbodimentActionEncoder(config.max_num_embodiments, config.max_action_dim, emb)
        self.action_decoder = CategorySpecificMLP(
            config.max_num_embodiments, config.hidden_size, config.hidden_size, config.max_action_dim
        )
        self.model = AlternateVLDiT(config, backend)

    def timestep_buckets(self) -> list[int]:
        """Bucket of each Euler step: int(k / steps * buckets) = 0, 250, 500, 750 for the released config."""
        steps = self.config.num_inference_timesteps
        return [int(k / steps * self.config.num_timestep_buckets) for k in range(steps)]

    def context(
        self,
        backbone_features: torch.Tensor,
        attention_mask: torch.Tensor,
        image_mask: torch.Tensor,
        state: torch.Tensor,
        embodiment_id: torch.Tensor | int,
        cache_cross_kv: bool,
    ) -> DenoiseContext:
        vl = self.vlln(backbone_features)
        valid = attention_mask.bool()
        ctx = DenoiseContext(
            state_features=self.state_encoder(state.to(vl.dtype), embodiment_id),
            embodiment_id=embodiment_id,
            text_mask=valid & ~image_mask,
            image_mask=valid & image_mask,
            vl_embeds=vl,
        )
        if cache_cross_kv:
            ctx.cross_kv = self.model.cross_key_values(vl)
        return ctx

    def velocity(
        self, actions: torch.Tensor, bucket: torch.Tensor, ctx: DenoiseContext, modulations: list[torch.Tensor]
    ) -> torch.Tensor:
        """One DiT evaluation: the predicted velocity [B, horizon, max_action_dim] at timestep bucket [B]."""
        horizon = actions.shape[1]
        features = self.action_encoder(actions, bucket, ctx.embodiment_id)
        features = features + self.position_embedding.weight[:horizon][None]
        tokens = torch.cat((ctx.state_features, features), dim=1)
        cross_kv = ctx.cross_kv if ctx.cross_kv is not None else self.model.cross_key_values(ctx.vl_embeds)
        out = self.model(tokens, modulations, cross_kv, ctx.text_mask, ctx.image_mask)
        return self.action_decoder(out, ctx.embodiment_id)[:, -horizon:]

    def denoise(
        self, noise: torch.Tensor, ctx: DenoiseContext, modulations: Optional[list[list[torch.Tensor]]] = None
    ) -> torch.Tensor:
        """Euler integration from noise (t=0) to the normalized action chunk, in the model dtype.

        `modulations[k]` are step k's precomputed AdaLN terms; without them each step computes its own (upstream)."""
        return self._integrate(noise, ctx, modulations, None)

    def denoise_guided(
        self,
        noise: torch.Tensor,
        ctx: DenoiseContext,
        modulations: Optional[list[list[torch.Tensor]]],
        guidance: rtc.ActionGuidance,
    ) -> torch.Tensor:
        """`denoise` with real-time chunking's steps of `guidance.mode` (model/rtc.py). A method of its own, so that
        a compiled loop keeps these graphs (one per mode and shape) apart from the unguided ones: compiled graphs
        are cached per function, up to a small recompile limit."""
        return self._integrate(noise, ctx, modulations, guidance)

    def _integrate(
        self,
        noise: torch.Tensor,
        ctx: DenoiseContext,
        modulations: Optional[list[list[torch.Tensor]]],
        guidance: Optional[rtc.ActionGuidance],
    ) -> torch.Tensor:
        dt = 1.0 / self.config.num_inference_timesteps
        x = start = noise.to(ctx.vl_embeds.dtype)
        batch = x.shape[0]
        for k, bucket in enumerate(self.timestep_buckets()):
            buckets = torch.full((batch,), bucket, dtype=torch.int64, device=x.device)
            step_mod = modulations[k] if modulations is not None else self.model.modulations(buckets)
            velocity = partial(self.velocity, bucket=buckets, ctx=ctx, modulations=step_mod)
            if guidance is None:
                x = x + dt * velocity(x)
            else:
                x = rtc.euler_step(velocity, x, start, k * dt, dt, guidance)
        return x if guidance is None else rtc.finish(x, guidance)

    def step_modulations(self, device: torch.device) -> list[list[torch.Tensor]]:
        """AdaLN terms of every Euler step for batch 1 (they broadcast over the batch)."""
        return [
            self.model.modulations(torch.full((1,), bucket, dtype=torch.int64, device=device))
            for bucket in self.timestep_buckets()
        ]
