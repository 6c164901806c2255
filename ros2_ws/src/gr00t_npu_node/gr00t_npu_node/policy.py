# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Public API: `Gr00tPolicy` turns an observation dict into an action chunk dict.

    policy = Gr00tPolicy.from_pretrained(path, embodiment="gr1", device="cpu", dtype="float32")
    observation = policy.observation({camera: rgb}, {group: joint positions}, "pick the pear")
    actions = policy.get_action(observation)        # {group: float32 [B, 16, D]}
    actions = policy.get_action(observation, guidance=ChunkGuidance(...))   # continuing the running chunk

The observation has upstream's format (`keys`):
    {"video": {key: uint8 [B, T, H, W, 3]}, "state": {group: float32 [B, T, D]}, "language": {language_key: [[str]]}}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.guidance import ChunkGuidance
from gr00t_npu_node.keys import LANGUAGE, STATE, VIDEO
from gr00t_npu_node.model.config import BackboneConfig
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.model.quantization import INT8, Int8Weights
from gr00t_npu_node.model.rtc import ActionGuidance
from gr00t_npu_node.processing.processor import Gr00tProcessor

# Where the backbone folder (tokenizer + backbone config.json) is looked for when not given.
BACKBONE_FOLDER_NAMES = ("backbone", "eagle-block2a-2b-v2", "Eagle-Block2A-2B-v2")
EXAMPLE_INSTRUCTION = "pick the pear from the counter and place it in the plate"


class NonFiniteActionError(RuntimeError):
    """The model produced NaN or inf; nothing is returned."""


def find_backbone_folder(checkpoint: Path, tokenizer_path: Optional[str | Path]) -> Path:
    if tokenizer_path is not None:
        folder = Path(tokenizer_path)
        if not (folder / "config.json").is_file() or not (folder / "vocab.json").is_file():
            raise FileNotFoundError(
                f"tokenizer_path {folder} must be the backbone folder with config.json, vocab.json and merges.txt "
                "(the files of nvidia/Eagle-Block2A-2B-v2)"
            )
        return folder
    candidates = [base / name for base in (checkpoint, checkpoint.parent) for name in BACKBONE_FOLDER_NAMES]
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "vocab.json").is_file():
            return folder
    raise FileNotFoundError(
        f"no backbone/tokenizer folder for checkpoint {checkpoint}: pass tokenizer_path, or put the "
        f"Eagle-Block2A-2B-v2 files at one of: {', '.join(str(c) for c in candidates)}"
    )


def resolve_dtype(dtype: Optional[str | torch.dtype], backend: Backend) -> torch.dtype:
    if dtype is None or dtype == "":
        return backend.default_dtype
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype) or resolved not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")
    return resolved


def resolve_weights(
    weight_dtype: Optional[str], group_size: Optional[int], dtype: torch.dtype
) -> Optional[Int8Weights]:
    """None (the weights keep the model dtype) for weight_dtype None, "" or the model dtype's name; the int8
    quantization for "int8". Raises ValueError naming the problem otherwise."""
    name = str(dtype).removeprefix("torch.")
    if weight_dtype in (None, "", name):
        if group_size is not None:
            raise ValueError(f"weight_group_size {group_size} needs weight_dtype='int8' (the weights are {name})")
        return None
    if weight_dtype != INT8:
        raise ValueError(
            f"weight_dtype {weight_dtype!r} is not supported: use 'int8', or leave it empty for {name} weights"
        )
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(
            f"weight_dtype='int8' computes with bfloat16 or float16 activations (W8A16), and dtype is {name}: "
            "pass dtype='bfloat16'"
        )
    return Int8Weights(group_size)


class Gr00tPolicy:
    """GR00T N1.6 inference for one embodiment: processor -> model -> decoded action chunk.

    Attributes the ROS layer and tools rely on: `video_keys`, `state_dims`, `action_dims` (ordered group ->
    width), `language_key`, `action_horizon`, `description`."""

    def __init__(self, model: Gr00tN1d6, processor: Gr00tProcessor, name: str, seed: int = 0):
        self.model = model.eval()
        self.processor = processor
        self.description = (
            f"{name} embodiment={processor.embodiment} device={model.backend.name} "
            f"dtype={str(model.dtype).removeprefix('torch.')} weights={model.weight_description} "
            f"{'optimized' if model.optimized else 'plain'}"
        )
        self._noise = torch.Generator().manual_seed(seed)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        embodiment: str = "gr1",
        device: str = "cpu",
        dtype: Optional[str] = None,
        tokenizer_path: Optional[str | Path] = None,
        optimize: bool = True,
        seed: int = 0,
        compile_cache_dir: Optional[str | Path] = None,
        weight_dtype: Optional[str] = None,
        weight_group_size: Optional[int] = None,
    ) -> "Gr00tPolicy":
        """Loads a checkpoint folder in the released layout (config.json, model.safetensors or sharded with
        model.safetensors.index.json, processor_config.json, statistics.json, embodiment_id.json).

        `optimize=False` is the plain eager path (reference operators, nothing hoisted or compiled), the baseline
        of tests and benchmarks. `compile_cache_dir` keeps compiled graphs between processes where the device
        supports it (npu). `weight_dtype="int8"` quantizes the LLM's and the DiT's linear layers at load (weight-only,
        one scale per output channel, or per `weight_group_size` input channels) and needs dtype bfloat16 or
        float16; by default the weights keep the model dtype."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a GR00T N1.6 checkpoint folder: it has no config.json")
        backbone_dir = find_backbone_folder(path, tokenizer_path)
        backbone = BackboneConfig.from_json(backbone_dir / "config.json")
        processor = Gr00tProcessor.from_folders(path, backbone_dir, embodiment, backbone.image_token_index)
        backend = get_backend(device, compile_cache_dir=compile_cache_dir)
        torch_dtype = resolve_dtype(dtype, backend)
        int8 = resolve_weights(weight_dtype, weight_group_size, torch_dtype)
        model = Gr00tN1d6.from_checkpoint(path, backbone, backend if optimize else backend.plain(), torch_dtype, int8)
        if optimize:
            model.optimize()
        return cls(model, processor, path.name, seed)

    # ---- contract used by the ROS layer ------------------------------------------------------------------
    @property
    def video_keys(self) -> list[str]:
        return self.processor.video_keys

    @property
    def state_dims(self) -> dict[str, int]:
        return self.processor.state_dims

    @property
    def action_dims(self) -> dict[str, int]:
        return self.processor.action_dims

    @property
    def language_key(self) -> str:
        return self.processor.language_key

    @property
    def action_horizon(self) -> int:
        return self.processor.action_horizon

    def check_image_size(self, height: int, width: int) -> None:
        """ValueError naming the problem when camera frames of this size cannot be processed; decided from the size
        alone, before any pixel is touched."""
        self.processor.images.output_size(height, width)

    def instruction_token_count(self, text: str) -> int:
        return self.processor.instruction_token_count(text)

    def observation(
        self, frames: Mapping[str, np.ndarray], states: Mapping[str, Any], instruction: str
    ) -> dict[str, dict[str, Any]]:
        """The observation of one sample at one time step: `frames` {video key: uint8 RGB [H, W, 3]}, `states`
        {group: joint positions [D]} (cast to float32), `instruction` (under this checkpoint's language key)."""
        return self.processor.observation(frames, states, instruction)

    def example_observation(self, batch: int = 1, height: int = 256, width: int = 256) -> dict[str, dict[str, Any]]:
        """A well-formed observation of this embodiment (gray image, zero state, a fixed instruction)."""
        return {
            VIDEO: {key: np.full((batch, 1, height, width, 3), 128, np.uint8) for key in self.video_keys},
            STATE: {group: np.zeros((batch, 1, dim), np.float32) for group, dim in self.state_dims.items()},
            LANGUAGE: {self.language_key: [[EXAMPLE_INSTRUCTION]] * batch},
        }

    def warmup(self, height: int = 256, width: int = 256, rtc_mode: Optional[str] = None) -> None:
        """Runs the model once per shape its compiled loop can meet with camera frames of `height` x `width`, so that
        graph compilation for that camera happens before traffic; with `rtc_mode` (real-time chunking), its guided
        loop as well."""
        self.model.warmup(self.processor(self.example_observation(height=height, width=width)), rtc_mode)

    @property
    def default_rtc_mode(self) -> str:
        """The real-time chunking mode this policy's device runs best (see its backend's `default_rtc_mode`)."""
        return self.model.backend.default_rtc_mode

    # ---- inference ----------------------------------------------------------------------------------------
    def get_action(
        self, observation: dict, noise: Optional[torch.Tensor] = None, guidance: Optional[ChunkGuidance] = None
    ) -> dict[str, np.ndarray]:
        """observation -> {group: float32 [B, action_horizon, D]} in the embodiment's units (radians for GR1).

        `noise` [B, model action_horizon, max_action_dim] float32 replaces the seeded Gaussian draw. `guidance`
        (real-time chunking) continues the chunk the robot is executing: the returned chunk's first
        `guidance.frozen_steps` steps of every group in its target are the target's (as float32), and the rest of
        the overlap is generated toward it in `guidance.mode`. Raises ValueError naming the problem for a malformed
        observation or guidance and NonFiniteActionError instead of ever returning NaN or inf."""
        inputs = self.processor(observation)
        batch = inputs.input_ids.shape[0]
        if noise is None:
            noise = torch.randn(self.model.noise_shape(batch), generator=self._noise)
        model_guidance = None if guidance is None else self._model_guidance(guidance, observation, batch)
        actions = self.processor.decode(self.model(inputs, noise, guidance=model_guidance), observation)
        if guidance is not None:
            # Set in robot units, so that the steps executed before this chunk takes over are exactly the running
            # chunk's, with no round trip through the normalization.
            for group, target in guidance.target.items():
                actions[group][:, : guidance.frozen_steps] = target[: guidance.frozen_steps]
        bad = [g for g, a in actions.items() if not np.isfinite(a).all()]
        if bad:
            raise NonFiniteActionError(
                f"decoded actions of {', '.join(bad)} are not finite (check the checkpoint and inputs); the chunk is "
                "dropped"
            )
        return actions

    def _model_guidance(self, guidance: ChunkGuidance, observation: dict, batch: int) -> ActionGuidance:
        """`guidance` in the model's normalized action space, shaped like its noise: the target re-encoded against
        this observation's state (relative groups) with the statistics of the new chunk's steps, the soft mask over
        the steps broadcast to the target's groups, zero elsewhere (other groups, padding dims, steps past the
        embodiment's horizon)."""
        horizon = self.action_horizon
        for group, target in guidance.target.items():
            if group not in self.action_dims:
                raise ValueError(
                    f"guidance target has group {group!r}, which is not an action group of this policy "
                    f"({', '.join(self.action_dims)})"
                )
            expected = (horizon, self.action_dims[group])
            if np.shape(target) != expected:
                raise ValueError(
                    f"guidance target of {group!r} has shape {list(np.shape(target))}; expected {list(expected)} "
                    "(action_horizon, the group's width)"
                )
        targets = {g: np.broadcast_to(t, (batch, *np.shape(t))) for g, t in guidance.target.items()}
        model_guidance = ActionGuidance.inert(guidance.mode, self.model.noise_shape(batch))
        encoded = self.processor.encode(targets, observation)
        model_guidance.target[:, :horizon, : encoded.shape[-1]] = torch.from_numpy(encoded)
        steps = torch.from_numpy(guidance.weights(horizon)).float()
        for group in guidance.target:
            columns = self.processor.action_columns[group]
            model_guidance.weights[0, :horizon, columns] = steps[:, None]
            model_guidance.frozen[0, : min(guidance.frozen_steps, horizon), columns] = True
        return model_guidance
