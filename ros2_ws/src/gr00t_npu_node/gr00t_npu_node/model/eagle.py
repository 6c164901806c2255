# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Eagle-Block2A-2B-v2 backbone: vision tokens projected into the LLM's embedding space in place of the
`<IMG_CONTEXT>` tokens, then the truncated Qwen3."""
from __future__ import annotations

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
        """Token embeddings with the `<IMG_CONTEXT>` rows replaced, in order, by the image tokens."""
        embeds = self.language_model.model.embed_tokens(input_ids)
        is_image = input_ids == self.image_token_index
        flat = image_tokens.reshape(-1, image_tokens.shape[-1])
        if int(is_image.sum()) != flat.shape[0]:
            raise ValueError(
                f"the prompt has {int(is_image.sum())} <IMG_CONTEXT> tokens but the images give {flat.shape[0]} tokens"
            )
        return embeds.masked_scatter(is_image[..., None], flat.to(embeds.dtype))


class EagleBackbone(nn.Module):
    """Named `backbone` in the checkpoint; its `model` is the Eagle3_VL module."""

    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        self.model = Eagle3VL(config, backend)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        return self.features(input_ids, attention_mask, self.model.encode_images(pixel_values))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """-> backbone features [B, L, hidden]: Qwen3's final norm applied to the last kept layer."""
        embeds = self.model.embed(input_ids, image_tokens)
        key_mask = None if bool(attention_mask.all()) else attention_mask.bool()
        return self.model.language_model(embeds, key_mask)
