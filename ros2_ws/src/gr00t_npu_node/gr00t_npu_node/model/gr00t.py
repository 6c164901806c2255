# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The GR00T N1.6 model: Eagle backbone + action head, with the released checkpoint's parameter names, and its
inference entry point `forward(inputs, noise) -> action_pred`.

    model = Gr00tN1d6.from_checkpoint(folder, BackboneConfig.from_json(backbone_dir / "config.json"), backend, dtype)
    model.optimize()                       # optional: the optimized path (else upstream's computation, eager)
    action_pred = model(inputs, noise)     # normalized [B, action_horizon, max_action_dim], float32, host

This is the one place where static shapes and compilation are decided: `optimize` hands the weights to the backend
and captures the vision tower, the LLM, the denoising context and the denoising loop through it, and `forward` pads
the text to TEXT_BUCKETS and feeds the noise through a static buffer so that the captured functions only ever see a
handful of shapes and addresses.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.action_head import Gr00tActionHead
from gr00t_npu_node.model.config import BackboneConfig, Gr00tConfig
from gr00t_npu_node.model.eagle import EagleBackbone
from gr00t_npu_node.model.qwen3 import RMSNorm
from gr00t_npu_node.model.quantization import INT8, Int8Weights, quantize_linear_layers
from gr00t_npu_node.model.rtc import ActionGuidance
from gr00t_npu_node.model.weights import load_weights

# Text tokens (everything but image tokens) are right-padded to one of these lengths on the optimized path, so
# the captured LLM and denoising loop see a handful of shapes and a new instruction never triggers a recompile.
TEXT_BUCKETS = (64, 128, 256)


@dataclass
class ModelInputs:
    """One batch for the model, as the processor makes it (host tensors). Images are ordered per sample t-major
    (t0v0, t0v1, t1v0, ...), samples in order."""

    input_ids: torch.Tensor  # int64 [B, L], left-padded
    attention_mask: torch.Tensor  # int64 [B, L], 0 on padding
    pixel_values: torch.Tensor  # float32 [B * T * V, 3, H, W] in [-1, 1]
    image_mask: torch.Tensor  # bool [B, L], True on <IMG_CONTEXT> tokens
    state: torch.Tensor  # float32 [B, T_state, max_state_dim]
    embodiment_id: torch.Tensor  # int64 [B]


class Gr00tN1d6(nn.Module):
    def __init__(self, config: Gr00tConfig, backend: Backend):
        super().__init__()
        self.config = config
        self.backend = backend
        self.backbone = EagleBackbone(config, backend)
        self.action_head = Gr00tActionHead(config, backend)
        self.optimized = False
        self.int8: Optional[Int8Weights] = None
        # The functions `forward` runs in turn, each captured as one graph by `optimize` (benchmarks wrap `_encode`
        # and `_language` to time the vision and LLM stages).
        self._encode = self.backbone.model.encode_images
        self._language = self.backbone.features
        self._context = self.action_head.context
        self._denoise = self.action_head.denoise
        self._denoise_guided = self.action_head.denoise_guided
        self._step_modulations: Optional[list[list[torch.Tensor]]] = None
        self._static_noise: Optional[torch.Tensor] = None

    @classmethod
    def from_checkpoint(
        cls,
        folder: Path,
        backbone: BackboneConfig,
        backend: Backend,
        dtype: torch.dtype,
        int8: Optional[Int8Weights] = None,
    ) -> "Gr00tN1d6":
        """The model of a checkpoint folder in the released layout (config.json and weights) with its backbone's
        config, built on the meta device and loaded once, in `dtype` on the backend's device; with `int8`, its
        largest linear layers are then quantized (`model.quantization`)."""
        config = Gr00tConfig.from_json(folder / "config.json", backbone)
        with torch.device("meta"):
            model = cls(config, backend)
        load_weights(model, folder, dtype, backend.device())
        if int8 is not None:
            model.quantize(int8)
        return model

    def quantize(self, int8: Int8Weights) -> None:
        """Weight-only int8 for the layers `model.quantization.QUANTIZED_LAYERS` names; after the weights are
        loaded and before `optimize`."""
        if self.optimized:
            raise RuntimeError("quantize the model before optimize(): the captured graphs hold the weights they saw")
        quantize_linear_layers(self, int8, self.backend)
        self.int8 = int8

    @property
    def weight_description(self) -> str:
        """How the weights are held: the model dtype, or int8 with per-channel or group-wise scales."""
        if self.int8 is None:
            return str(self.dtype).removeprefix("torch.")
        return f"{INT8} (scale per {'channel' if self.int8.group_size is None else f'{self.int8.group_size} inputs'})"

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the weights were loaded in; `forward` casts the float inputs to it."""
        return self.action_head.vlln.weight.dtype

    def optimize(self) -> None:
        """Switches `forward` to the optimized path; once, after the weights are loaded. The backend puts the weights
        in its kernels' layout and captures the vision tower, the LLM, the denoising context and the denoising loop,
        each as one graph; every Euler step's AdaLN terms are computed here and the VL keys/values once per call,
        instead of at every step."""
        self.backend.prepare(self)
        self._step_modulations = self.action_head.step_modulations(self.backend.device())
        self._encode = self.backend.compile(self.backbone.model.encode_images, name="vision")
        self._language = self.backend.compile(self.backbone.features, name="language")
        self._context = self.backend.compile(self.action_head.context, name="context")
        self._denoise = self.backend.compile(self.action_head.denoise, name="denoise")
        self._denoise_guided = self.backend.compile(self.action_head.denoise_guided, name="denoise_guided")
        self.optimized = True

    def noise_shape(self, batch: int) -> tuple[int, int, int]:
        return batch, self.config.action_horizon, self.config.max_action_dim

    @torch.inference_mode()
    def forward(
        self,
        inputs: ModelInputs,
        noise: torch.Tensor,
        text_bucket: Optional[int] = None,
        guidance: Optional[ActionGuidance] = None,
    ) -> torch.Tensor:
        """The normalized action chunk [B, action_horizon, max_action_dim], float32 on the host, for the processor's
        `inputs` and the flow's starting `noise` [B, action_horizon, max_action_dim] (host tensors).

        On the optimized path the text is right-padded to `text_bucket` (warmup captures each bucket; by default the
        smallest that holds the text). Every decision that depends on the inputs' values (padding, which masks) is
        made on the host tensors, so that nothing waits for the device before the chunk's copy to the host.
        `guidance` (host tensors shaped like the noise) continues the running chunk (real-time chunking,
        model/rtc.py); without it the numbers are upstream's. The guided mode differentiates through the DiT with
        torch.func.vjp, which works inside this inference mode (the weights never require grad)."""
        expected = self.noise_shape(inputs.input_ids.shape[0])
        if tuple(noise.shape) != expected:
            raise ValueError(
                f"noise has shape {list(noise.shape)}; expected {list(expected)} "
                "(batch, action_horizon, max_action_dim)"
            )
        if guidance is not None and tuple(guidance.target.shape) != expected:
            raise ValueError(
                f"guidance target has shape {list(guidance.target.shape)}; expected {list(expected)} like the noise"
            )
        eagle = self.backbone.model
        image_tokens = int((inputs.input_ids == eagle.image_token_index).sum())
        if image_tokens != eagle.image_token_count(inputs.pixel_values):
            raise ValueError(
                f"the prompt has {image_tokens} <IMG_CONTEXT> tokens but the images give "
                f"{eagle.image_token_count(inputs.pixel_values)} tokens"
            )
        # The processor pads rows of different lengths on the left, which needs a key mask; the buckets' padding on the
        # right does not (attention is causal).
        left_padded = not bool(inputs.attention_mask.all())
        if self.optimized:
            inputs = pad_text(inputs, text_bucket)
            self.backend.begin_inference()
        device, dtype = self.backend.device(), self.dtype
        input_ids, attention_mask, image_mask = (
            t.to(device) for t in (inputs.input_ids, inputs.attention_mask, inputs.image_mask)
        )
        pixel_values = inputs.pixel_values.to(device, dtype)
        eagle.shape_tables(pixel_values, input_ids.shape[1])
        features = self._language(
            input_ids, attention_mask.bool() if left_padded else None, self._encode(pixel_values)
        )
        context = self._context(
            features, attention_mask, image_mask, inputs.state.to(device, dtype),
            embodiment_ids(inputs.embodiment_id, device), cache_cross_kv=self.optimized,
        )
        noise = self._noise_on_device(noise, dtype)
        if guidance is None:
            action_pred = self._denoise(noise, context, self._step_modulations)
        else:
            action_pred = self._denoise_guided(noise, context, self._step_modulations, guidance.to(device, dtype))
        # The copy to the host is also what takes the chunk out of a replayed graph's output buffer before the next
        # replay overwrites it, so no device-side clone is needed (on the CPU, a 25 kB copy).
        return action_pred.to("cpu", torch.float32, copy=True)

    def warmup(self, inputs: ModelInputs, rtc_mode: Optional[str] = None) -> None:
        """Runs every shape the captured functions can meet for inputs of this image size (one per text bucket), so
        that no later call of that size compiles; with `rtc_mode`, the guided loop of that real-time chunking mode
        too."""
        noise = torch.zeros(self.noise_shape(inputs.input_ids.shape[0]))
        guidance = None if rtc_mode is None else ActionGuidance.inert(rtc_mode, noise.shape)
        for bucket in TEXT_BUCKETS if self.optimized else (None,):
            self(inputs, noise, text_bucket=bucket)
            if guidance is not None:
                self(inputs, noise, text_bucket=bucket, guidance=guidance)

    def _noise_on_device(self, noise: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """On the optimized path the noise (the only input of the compiled loop that comes from the host) is refilled
        in place into one buffer marked static for the graph compilers: a captured graph reads it where it is
        instead of copying it into a private input slot before every replay."""
        if not self.optimized:
            return noise.to(self.backend.device(), dtype)
        if self._static_noise is None or self._static_noise.shape != noise.shape:
            self._static_noise = torch.empty(noise.shape, dtype=dtype, device=self.backend.device())
            torch._dynamo.mark_static_address(self._static_noise)
        return self._static_noise.copy_(noise)

    @torch.no_grad()
    def init_random(self, seed: int, std: float = 0.02) -> None:
        """Random weights for tests, the demo and benchmarks: unit-gain norms, normal(0, std) everything else."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, (nn.LayerNorm, RMSNorm)):
                    param.fill_(1.0 if name == "weight" else 0.0)
                else:
                    param.copy_(torch.randn(param.shape, generator=generator) * std)


def embodiment_ids(ids: torch.Tensor, device: torch.device) -> torch.Tensor | int:
    """One int when the whole batch is one embodiment (always, for one processor): the embodiment-specific layers
    then index views of their weights instead of gathering a copy per sample."""
    if bool((ids == ids[0]).all()):
        return int(ids[0])
    return ids.to(device)


def pad_text(inputs: ModelInputs, bucket: Optional[int]) -> ModelInputs:
    """The inputs with their text part right-padded to a bucket (by default the smallest of TEXT_BUCKETS that holds
    it, or a multiple of the largest), on the host. The LLM is causal, so padding on the right changes no real
    token's features, and the DiT's key masks remove the padded ones exactly. The padded ids are 0: any id would do,
    since no real token attends to them."""
    images = int(inputs.image_mask[0].sum())
    text = inputs.input_ids.shape[1] - images
    if bucket is None:
        bucket = next((b for b in TEXT_BUCKETS if b >= text), -(-text // TEXT_BUCKETS[-1]) * TEXT_BUCKETS[-1])
    extra = images + bucket - inputs.input_ids.shape[1]
    if extra <= 0:
        return inputs
    return replace(
        inputs,
        input_ids=F.pad(inputs.input_ids, (0, extra)),
        attention_mask=F.pad(inputs.attention_mask, (0, extra)),
        image_mask=F.pad(inputs.image_mask, (0, extra)),
    )
