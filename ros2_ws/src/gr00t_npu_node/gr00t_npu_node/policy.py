"""Public API: `Gr00tPolicy` turns an observation dict into an action chunk dict.

    policy = Gr00tPolicy.from_pretrained(path, embodiment="gr1", device="cpu", dtype="float32")
    actions = policy.get_action(observation)        # {group: float32 [B, 16, D]}

The observation has upstream's format:
    {"video": {key: uint8 [B, T, H, W, 3]}, "state": {group: float32 [B, T, D]}, "language": {"task": [[str]]}}
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.buffers import InputBuffers
from gr00t_npu_node.model.config import BackboneConfig, Gr00tConfig, preset
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.model.weights import load_weights, tie_lm_head
from gr00t_npu_node.processing.processor import Gr00tProcessor, ModelInputs

# Where the backbone folder (tokenizer + backbone config.json) is looked for when not given.
BACKBONE_FOLDER_NAMES = ("backbone", "eagle-block2a-2b-v2", "Eagle-Block2A-2B-v2")
# Text tokens (everything but image tokens) are right-padded to one of these lengths on the optimized path, so
# the compiled denoising loop sees a handful of shapes and a new instruction never triggers a recompile.
TEXT_BUCKETS = (64, 128, 256)


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


class Gr00tPolicy:
    """GR00T N1.6 inference for one embodiment: processor -> model -> decoded action chunk.

    Attributes the ROS layer and tools rely on: `video_keys`, `state_dims`, `action_dims` (ordered group ->
    width), `action_horizon`, `description`, `last_timing` (seconds per stage of the last call)."""

    def __init__(
        self,
        model: Gr00tN1d6,
        processor: Gr00tProcessor,
        backend: Backend,
        dtype: torch.dtype,
        optimize: bool,
        name: str,
        seed: int = 0,
    ):
        self.model = model.eval()
        self.processor = processor
        self.backend = backend
        self.dtype = dtype
        self.optimize = optimize
        self.device = backend.device()
        self.description = (
            f"{name} embodiment={processor.embodiment} device={backend.name} dtype={str(dtype).removeprefix('torch.')} "
            f"{'optimized' if optimize else 'plain'}"
        )
        self.profile_stages = False
        self.last_timing: dict[str, float] = {}
        self.compile_seconds = 0.0
        self._compiled_shapes: set[tuple[int, ...]] = set()
        self._noise = torch.Generator().manual_seed(seed)
        self.input_buffers = InputBuffers(self.device) if optimize else None
        head = model.action_head
        if optimize:
            backend.prepare(model)
        self._modulations = head.step_modulations(self.device) if optimize else None
        self._denoise = backend.compile(head.denoise, name="denoise") if optimize else head.denoise

    # ---- construction ------------------------------------------------------------------------------------
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
    ) -> "Gr00tPolicy":
        """Loads a checkpoint folder in the released layout (config.json, model.safetensors or sharded with
        model.safetensors.index.json, processor_config.json, statistics.json, embodiment_id.json).

        `optimize=False` is the plain eager path (reference operators, nothing hoisted or compiled), the baseline
        of tests and benchmarks. `compile_cache_dir` keeps compiled graphs between processes where the device
        supports it (npu)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a GR00T N1.6 checkpoint folder: it has no config.json")
        backbone_dir = find_backbone_folder(path, tokenizer_path)
        config = Gr00tConfig.from_json(path / "config.json", BackboneConfig.from_json(backbone_dir / "config.json"))
        processor = Gr00tProcessor.from_folders(path, backbone_dir, embodiment)
        backend = get_backend(device, compile_cache_dir=compile_cache_dir)
        torch_dtype = _resolve_dtype(dtype, backend)
        with torch.device("meta"):
            model = Gr00tN1d6(config, backend if optimize else backend.plain())
        load_weights(model, path, torch_dtype, backend.device())
        return cls(model, processor, backend if optimize else backend.plain(), torch_dtype, optimize, path.name, seed)

    @classmethod
    def build_random(
        cls,
        preset_name: str,
        device: str = "cpu",
        dtype: Optional[str] = None,
        seed: int = 0,
        optimize: bool = True,
        processor_folder: Optional[Path] = None,
    ) -> "Gr00tPolicy":
        """A policy with random weights of a preset's size, for benchmarks. The processor files come from
        `processor_folder` (a checkpoint folder with its backbone) or from a freshly written tiny checkpoint."""
        from gr00t_npu_node.cache import cache_dir
        from gr00t_npu_node.tiny import write_tiny_checkpoint

        config = preset(preset_name)
        backend = get_backend(device)
        torch_dtype = _resolve_dtype(dtype, backend)
        if processor_folder is None:
            processor_folder = write_tiny_checkpoint(cache_dir() / "tiny", seed=0)
        processor = Gr00tProcessor.from_folders(processor_folder, find_backbone_folder(processor_folder, None), "gr1")
        model_backend = backend if optimize else backend.plain()
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch_dtype)
        try:
            with torch.device("meta"):
                model = Gr00tN1d6(_with_vocab(config, processor), model_backend)
        finally:
            torch.set_default_dtype(default_dtype)
        model.to_empty(device=backend.device())
        tie_lm_head(model)
        model.init_random(seed)
        model.requires_grad_(False)
        return cls(model, processor, model_backend, torch_dtype, optimize, f"random-{preset_name}", seed)

    @staticmethod
    def create_tiny(path: str | Path, seed: int = 0) -> Path:
        """Writes a complete tiny random-weight checkpoint in the released layout, with its own backbone folder
        and tokenizer (no download, no shared data); returns the checkpoint folder."""
        from gr00t_npu_node.tiny import write_tiny_checkpoint

        return write_tiny_checkpoint(Path(path), seed=seed)

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
    def action_horizon(self) -> int:
        return self.processor.action_horizon

    def check_image_size(self, height: int, width: int) -> None:
        """ValueError naming the problem when camera frames of this size cannot be processed; decided from the size
        alone, before any pixel is touched."""
        self.processor.images.output_size(height, width)

    def instruction_token_count(self, text: str) -> int:
        return self.processor.instruction_token_count(text)

    def example_observation(self, batch: int = 1, height: int = 256, width: int = 256) -> dict:
        """A well-formed observation of this embodiment (gray image, zero state, a fixed instruction)."""
        return {
            "video": {k: np.full((batch, 1, height, width, 3), 128, np.uint8) for k in self.video_keys},
            "state": {g: np.zeros((batch, 1, d), np.float32) for g, d in self.state_dims.items()},
            "language": {"task": [["pick the pear from the counter and place it in the plate"]] * batch},
        }

    @torch.inference_mode()
    def warmup(self, height: int = 256, width: int = 256) -> None:
        """Runs every text bucket once with a synthetic observation of camera frames of `height` x `width`, so that
        graph compilation for that camera happens before traffic."""
        observation = self.example_observation(height=height, width=width)
        buckets = TEXT_BUCKETS if self.optimize else TEXT_BUCKETS[:1]
        for bucket in buckets:
            self._run(self.processor(observation), None, text_length=bucket)

    @contextmanager
    def uncompiled(self) -> Iterator[None]:
        """Runs the denoising loop eagerly inside the block, so that hooks and wrapped operators see each call (the
        benchmark's instrumentation); the compiled loop is back afterwards."""
        compiled, self._denoise = self._denoise, self.model.action_head.denoise
        try:
            yield
        finally:
            self._denoise = compiled

    # ---- inference ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def get_action(self, observation: dict, noise: Optional[torch.Tensor] = None) -> dict[str, np.ndarray]:
        """observation -> {group: float32 [B, action_horizon, D]} in the embodiment's units (radians for GR1).

        `noise` [B, model action_horizon, max_action_dim] float32 replaces the seeded Gaussian draw. Raises
        ValueError naming the problem for a malformed observation and NonFiniteActionError instead of ever
        returning NaN or inf."""
        start = time.perf_counter()
        timing: dict[str, float] = {}
        with self._stage(timing, "preprocess"):
            inputs = self.processor(observation)
        action_pred = self._run(inputs, noise, timing=timing)
        with self._stage(timing, "decode"):
            actions = self.processor.decode(action_pred, observation)
        bad = [g for g, a in actions.items() if not np.isfinite(a).all()]
        if bad:
            raise NonFiniteActionError(f"decoded actions of {', '.join(bad)} are not finite; the chunk is dropped")
        timing["total"] = time.perf_counter() - start
        self.last_timing = timing
        return actions

    def _run(
        self,
        inputs: ModelInputs,
        noise: Optional[torch.Tensor],
        timing: Optional[dict[str, float]] = None,
        text_length: Optional[int] = None,
    ) -> np.ndarray:
        timing = {} if timing is None else timing
        cfg = self.model.config
        batch = inputs.input_ids.shape[0]
        if noise is None:
            noise = torch.randn(batch, cfg.action_horizon, cfg.max_action_dim, generator=self._noise)
        expected = (batch, cfg.action_horizon, cfg.max_action_dim)
        if tuple(noise.shape) != expected:
            raise ValueError(f"noise has shape {list(noise.shape)}; expected {list(expected)} (batch, horizon, max_action_dim)")
        device, dtype = self.device, self.dtype
        to_device = self.input_buffers.fill if self.input_buffers is not None else _copy_to(device)
        input_ids = to_device("input_ids", inputs.input_ids)
        attention_mask = to_device("attention_mask", inputs.attention_mask)
        image_mask = to_device("image_mask", inputs.image_mask)
        pixel_values = to_device("pixel_values", inputs.pixel_values, dtype)
        state, noise = to_device("state", inputs.state, dtype), to_device("noise", noise, dtype)
        eagle = self.model.backbone.model
        with self._stage(timing, "vision"):
            image_tokens = eagle.encode_images(pixel_values)
        with self._stage(timing, "llm"):
            features = self.model.backbone.features(input_ids, attention_mask, image_tokens)
        with self._stage(timing, "action_head"):
            if self.optimize:
                features, attention_mask, image_mask = self._pad_text(features, attention_mask, image_mask, text_length)
            head = self.model.action_head
            ctx = head.context(
                features, attention_mask, image_mask, state, self._embodiment_id(inputs.embodiment_id),
                cache_cross_kv=self.optimize,
            )
            shape_key = tuple(features.shape)
            first = self.optimize and shape_key not in self._compiled_shapes
            compile_start = time.perf_counter()
            action_pred = self._denoise(noise, ctx, self._modulations)
            action_pred = action_pred.float().cpu().numpy()
            if first:
                self._compiled_shapes.add(shape_key)
                self.compile_seconds += time.perf_counter() - compile_start
        if not np.isfinite(action_pred).all():
            raise NonFiniteActionError("the model produced non-finite actions (check the checkpoint and inputs)")
        return action_pred

    def _pad_text(
        self, features: torch.Tensor, attention_mask: torch.Tensor, image_mask: torch.Tensor, text_length: Optional[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-pads the backbone features so that their text part fills a fixed bucket: the compiled denoising
        loop then sees a handful of shapes. The LLM itself runs unpadded (not compiled, and causal attention needs
        no mask that way); the DiT's key masks remove the padding exactly."""
        images = int(image_mask[0].sum())
        text = features.shape[1] - images
        bucket = text_length or next((b for b in TEXT_BUCKETS if b >= text), None)
        if bucket is None:
            bucket = -(-text // TEXT_BUCKETS[-1]) * TEXT_BUCKETS[-1]
        extra = images + bucket - features.shape[1]
        if extra <= 0:
            return features, attention_mask, image_mask
        pad = torch.nn.functional.pad
        return pad(features, (0, 0, 0, extra)), pad(attention_mask, (0, extra)), pad(image_mask, (0, extra))

    def _embodiment_id(self, ids: torch.Tensor) -> torch.Tensor | int:
        """One int when the whole batch is one embodiment (always, for one processor): the embodiment-specific
        layers then use views of their weights instead of copying them at every call."""
        if bool((ids == ids[0]).all()):
            return int(ids[0])
        return ids.to(self.device)

    @contextmanager
    def _stage(self, timing: dict[str, float], name: str) -> Iterator[None]:
        if self.profile_stages:
            self.backend.synchronize()
        start = time.perf_counter()
        yield
        if self.profile_stages:
            self.backend.synchronize()
        timing[name] = time.perf_counter() - start


def _copy_to(device: torch.device):
    """The plain path's input transfer (upstream's): a new device tensor per input and call."""

    def copy(_name: str, value: torch.Tensor, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        return value.to(device, dtype)

    return copy


def _resolve_dtype(dtype: Optional[str | torch.dtype], backend: Backend) -> torch.dtype:
    if dtype is None or dtype == "":
        return backend.default_dtype
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype) or resolved not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype {dtype!r} is not supported; use float32, bfloat16 or float16")
    return resolved


def _with_vocab(config: Gr00tConfig, processor: Gr00tProcessor) -> Gr00tConfig:
    """The preset's config with the processor's image token, so random-weight policies accept its prompts."""
    from dataclasses import replace

    return replace(config, backbone=replace(config.backbone, image_token_index=processor.image_token_index))
