# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Eagle-Block2A-2B-v2 backbone: vision tokens projected into the LLM's embedding space in place of the
`<IMG_CONTEXT>` tokens, then the truncated Qwen3."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.config import Gr00tConfig
from gr00t_npu_node.model.qwen3 import Qwen3ForCausalLM
from gr00t_npu_node.model.siglip2 import Siglip2VisionModel


class Eagle3VL(nn.Module):
    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        bb = config.backbone
        self.image_token_index = bb.image_token_index
        self.unshuffle = bb.unshuffle_factor
        projector_in = bb.vision.hidden_size * self.unshuffle**2
        self.vision_model = Siglip2VisionModel(bb.vision, backend)
        self.mlp1 = nn.Sequential(
            nn.LayerNorm(projector_in),
            nn.Linear(projector_in, bb.text.hidden_size),
            nn.GELU(),
            nn.Linear(bb.text.hidden_size, bb.text.hidden_size),
        )
        self.language_model = Qwen3ForCausalLM(bb.text, config.select_layer, backend)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [N, 3, H, W] -> image tokens [N, (H/28)*(W/28), text hidden]."""
        patches = self.vision_model(pixel_values)
        n, _, c = patches.shape
        p = self.vision_model.vision_model.embeddings.patch_size
        rows, cols = pixel_values.shape[-2] // p, pixel_values.shape[-1] // p
        grid = patches.transpose(1, 2).reshape(n, c, rows, cols)
        tokens = F.pixel_unshuffle(grid, self.unshuffle).flatten(2).transpose(1, 2)
        return self.mlp1(tokens)

    def embed(self, input_ids: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the `<IMG_CONTEXT>` rows replaced, in order, by the image tokens (the caller checks
        that their counts agree: counting here would wait for the device).

        The k-th `<IMG_CONTEXT>` row of the batch (row-major) takes the k-th image token through an index computed on
        the device (a running count), with static shapes, so that the function can be captured as one graph."""
        embeds = self.language_model.model.embed_tokens(input_ids)
        is_image = input_ids == self.image_token_index
        flat = image_tokens.reshape(-1, image_tokens.shape[-1]).to(embeds.dtype)
        index = (is_image.flatten().cumsum(0) - 1).clamp(min=0)
        return torch.where(is_image[..., None], flat[index].view_as(embeds), embeds)

    def shape_tables(self, pixel_values: torch.Tensor, length: int) -> None:
        """Computes, once per shape, the tables the vision and language functions read (the position grid resized
        to the images, the RoPE table of `length` positions), so that a captured function only ever reads them:
        made inside a graph, they would be graph outputs written into a cache."""
        p = self.vision_model.vision_model.embeddings.patch_size
        self.vision_model.vision_model.embeddings.resized_position_embedding(
            pixel_values.shape[-2] // p, pixel_values.shape[-1] // p
        )
        language = self.language_model.model
        language.rotary(length, language.embed_tokens.weight.dtype, pixel_values.device)

    def image_token_count(self, pixel_values: torch.Tensor) -> int:
        """How many `<IMG_CONTEXT>` tokens the prompt must hold for these images."""
        p = self.vision_model.vision_model.embeddings.patch_size * self.unshuffle
        return pixel_values.shape[0] * (pixel_values.shape[-2] // p) * (pixel_values.shape[-1] // p)


class EagleBackbone(nn.Module):
    """Named `backbone` in the checkpoint; its `model` is the Eagle3_VL module."""

    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        self.model = Eagle3VL(config, backend)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        key_mask = None if bool(attention_mask.all()) else attention_mask.bool()
        return self.features(input_ids, key_mask, self.model.encode_images(pixel_values))

    def features(
        self, input_ids: torch.Tensor, key_mask: Optional[torch.Tensor], image_tokens: torch.Tensor
    ) -> torch.Tensor:
        """-> backbone features [B, L, hidden]: Qwen3's final norm applied to the last kept layer. `key_mask` [B, L]
        bool (False at padding), or None when no row is padded on the left (right padding needs no mask: attention
        is causal)."""
        return self.model.language_model(self.model.embed(input_ids, image_tokens), key_mask)
