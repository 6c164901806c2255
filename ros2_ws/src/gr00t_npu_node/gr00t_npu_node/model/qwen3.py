# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Qwen3 decoder, truncated to the layers GR00T uses, returning the final-normed hidden states (no LM head
computation: its logits are never used for actions)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.config import TextConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, backend: Backend):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.rms_norm(x, self.weight, self.eps)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for positions 0..L-1, computed once per length in float32 (exact frequencies; upstream's
    bf16 policy rounds `inv_freq` to bf16 first) and shared by every layer."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.head_dim = config.head_dim
        self.theta = config.rope_theta
        self._tables: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, length: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (length, dtype, device)
        if key not in self._tables:
            inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
            freqs = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
            angles = torch.cat((freqs, freqs), dim=-1)[None, :, None, :]
            tables = (angles.cos().to(device, dtype), angles.sin().to(device, dtype))
            for table in tables:  # a captured graph reads them where they are, instead of copying them in
                torch._dynamo.mark_static_address(table)
            self._tables[key] = tables
        return self._tables[key]


class Attention(nn.Module):
    def __init__(self, config: TextConfig, backend: Backend):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)
        self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps, backend)
        self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps, backend)
        self.backend = backend

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], key_mask: Optional[torch.Tensor]
    ) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, s, self.num_heads, self.head_dim))
        k = self.k_norm(self.k_proj(x).view(b, s, self.num_kv_heads, self.head_dim))
        v = self.v_proj(x).view(b, s, self.num_kv_heads, self.head_dim)
        cos, sin = rope
        q, k = self.backend.rotary(q, cos, sin), self.backend.rotary(k, cos, sin)
        out = self.backend.attention(q, k, v, causal=True, key_mask=key_mask, scale=self.head_dim**-0.5)
        return self.o_proj(out.reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, config: TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm block; the residual add is fused into the next norm (`add_rms_norm`), so a layer takes and returns
    the pending sub-layer output separately from the residual stream."""

    def __init__(self, config: TextConfig, backend: Backend):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, backend)
        self.self_attn = Attention(config, backend)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, backend)
        self.mlp = MLP(config)
        self.backend = backend

    def forward(
        self,
        x: torch.Tensor,
        residual: Optional[torch.Tensor],
        rope: tuple[torch.Tensor, torch.Tensor],
        key_mask: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual, h = x, self.input_layernorm(x)
        else:
            h, residual = self.backend.add_rms_norm(x, residual, self.input_layernorm.weight, self.input_layernorm.eps)
        h = self.self_attn(h, rope, key_mask)
        norm = self.post_attention_layernorm
        h, residual = self.backend.add_rms_norm(h, residual, norm.weight, norm.eps)
        return self.mlp(h), residual


class Qwen3Model(nn.Module):
    def __init__(self, config: TextConfig, num_layers: int, backend: Backend):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config, backend) for _ in range(num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, backend)
        self.rotary = RotaryEmbedding(config)
        self.backend = backend

    def forward(self, inputs_embeds: torch.Tensor, key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """inputs_embeds [B, L, hidden]; key_mask [B, L] bool (False at padding) or None -> final-normed [B, L, hidden].

        Positions are 0..L-1 for every row, as upstream (left padding does not shift them)."""
        rope = self.rotary(inputs_embeds.shape[1], inputs_embeds.dtype, inputs_embeds.device)
        x, residual = inputs_embeds, None
        for layer in self.layers:
            x, residual = layer(x, residual, rope, key_mask)
        if residual is None:
            return self.norm(x)
        return self.backend.add_rms_norm(x, residual, self.norm.weight, self.norm.eps)[0]


class Qwen3ForCausalLM(nn.Module):
    """Keeps the checkpoint's `language_model.{model,lm_head}` names. `lm_head` is tied to the embeddings (the
    config's tie_word_embeddings) and never evaluated."""

    def __init__(self, config: TextConfig, num_layers: int, backend: Backend):
        super().__init__()
        self.model = Qwen3Model(config, num_layers, backend)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, inputs_embeds: torch.Tensor, key_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.model(inputs_embeds, key_mask)
