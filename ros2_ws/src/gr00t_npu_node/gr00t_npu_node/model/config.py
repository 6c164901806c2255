# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Model configuration: the GR00T N1.6 head config (checkpoint `config.json`) and the Eagle backbone config
(backbone folder `config.json`), with the two presets this project ships."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP2 vision encoder."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    patch_size: int = 14
    num_channels: int = 3
    num_patches: int = 256
    layer_norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class TextConfig:
    """Qwen3 language model (only the first `Gr00tConfig.select_layer` layers are built)."""

    hidden_size: int = 2048
    intermediate_size: int = 6144
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    vocab_size: int = 151680


@dataclass(frozen=True)
class BackboneConfig:
    """Eagle-Block2A-2B-v2: SigLIP2 + pixel-unshuffle projector + Qwen3."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    downsample_ratio: float = 0.5
    image_token_index: int = 151669

    @property
    def unshuffle_factor(self) -> int:
        return round(1 / self.downsample_ratio)

    @classmethod
    def from_json(cls, path: str | Path) -> "BackboneConfig":
        """Reads a backbone folder's `config.json` (the Eagle3_VL format)."""
        path = Path(path)
        raw = json.loads(path.read_text())
        for required in ("vision_config", "text_config"):
            if required not in raw:
                raise ValueError(f"backbone config {path} lacks {required!r}: is this an Eagle3_VL config.json?")
        vision, text = raw["vision_config"], raw["text_config"]
        if vision.get("use_rope") or vision.get("use_windows_attn"):
            raise ValueError(
                f"backbone config {path}: vision use_rope/use_windows_attn are not supported (GR00T N1.6 uses neither)"
            )
        if text.get("rope_scaling"):
            raise ValueError(f"backbone config {path}: text rope_scaling={text['rope_scaling']!r} is not supported")
        return cls(
            vision=_pick(VisionConfig, vision),
            text=_pick(TextConfig, text),
            downsample_ratio=raw.get("downsample_ratio", 0.5),
            image_token_index=raw.get("image_token_index", 151669),
        )

    def to_json(self) -> dict[str, Any]:
        """The Eagle3_VL `config.json` fields this model reads."""
        return {
            "architectures": ["Eagle3_VLForConditionalGeneration"],
            "model_type": "eagle_3_vl",
            "downsample_ratio": self.downsample_ratio,
            "image_token_index": self.image_token_index,
            "select_layer": -1,
            "use_pixel_shuffle": True,
            "vision_config": {
                **asdict(self.vision),
                "model_type": "siglip2_vision_model",
                "hidden_act": "gelu_pytorch_tanh",
                "use_rope": False,
                "use_windows_attn": False,
            },
            "text_config": {
                **asdict(self.text),
                "model_type": "qwen3",
                "hidden_act": "silu",
                "attention_bias": False,
                "rope_scaling": None,
                "tie_word_embeddings": True,
            },
        }


@dataclass(frozen=True)
class Gr00tConfig:
    """GR00T N1.6 (`Gr00tN1d6Config`): the fields inference depends on. Defaults are the released 3B values."""

    backbone_embedding_dim: int = 2048
    select_layer: int = 16
    hidden_size: int = 1024
    input_embedding_dim: int = 1536
    max_state_dim: int = 128
    max_action_dim: int = 128
    action_horizon: int = 50
    max_seq_len: int = 1024
    max_num_embodiments: int = 32
    num_inference_timesteps: int = 4
    num_timestep_buckets: int = 1000
    dit_num_layers: int = 32
    dit_num_attention_heads: int = 32
    dit_attention_head_dim: int = 48
    dit_output_dim: int = 1024
    attend_text_every_n_blocks: int = 2
    backbone: BackboneConfig = field(default_factory=BackboneConfig)

    def __post_init__(self) -> None:
        if self.backbone_embedding_dim != self.backbone.text.hidden_size:
            raise ValueError(
                f"backbone_embedding_dim {self.backbone_embedding_dim} differs from the backbone's text hidden_size "
                f"{self.backbone.text.hidden_size}: the checkpoint and the backbone folder do not belong together"
            )
        if self.dit_output_dim != self.hidden_size:
            raise ValueError(
                f"diffusion_model_cfg.output_dim {self.dit_output_dim} must equal hidden_size {self.hidden_size}"
            )

    @property
    def dit_inner_dim(self) -> int:
        return self.dit_num_attention_heads * self.dit_attention_head_dim

    @classmethod
    def from_json(cls, path: str | Path, backbone: BackboneConfig) -> "Gr00tConfig":
        """Reads a checkpoint's `config.json` (`model_type` "Gr00tN1d6")."""
        path = Path(path)
        raw = json.loads(path.read_text())
        if raw.get("model_type") != "Gr00tN1d6":
            raise ValueError(
                f"{path} has model_type {raw.get('model_type')!r}; expected 'Gr00tN1d6' (a GR00T N1.6 checkpoint)"
            )
        for flag, supported in (("use_alternate_vl_dit", True), ("use_vlln", True), ("add_pos_embed", True)):
            if raw.get(flag, supported) != supported:
                raise ValueError(f"{path}: {flag}={raw[flag]!r} is not supported (the released N1.6 uses {supported})")
        dit = raw.get("diffusion_model_cfg", {})
        if not dit.get("interleave_self_attention", True) or dit.get("norm_type", "ada_norm") != "ada_norm":
            raise ValueError(f"{path}: diffusion_model_cfg must use interleave_self_attention and norm_type ada_norm")
        dit_fields = {
            "dit_num_layers": "num_layers",
            "dit_num_attention_heads": "num_attention_heads",
            "dit_attention_head_dim": "attention_head_dim",
            "dit_output_dim": "output_dim",
        }
        kwargs = {f.name: raw[f.name] for f in fields(cls) if f.name in raw and f.name != "backbone"}
        kwargs |= {ours: dit[theirs] for ours, theirs in dit_fields.items() if theirs in dit}
        return cls(
            **kwargs,
            backbone=backbone,
        )

    def to_json(self) -> dict[str, Any]:
        """A `config.json` in the released format (the fields upstream needs to rebuild the model)."""
        own = [f.name for f in fields(self) if not f.name.startswith("dit_") and f.name != "backbone"]
        values = {name: getattr(self, name) for name in own}
        return {
            "model_type": "Gr00tN1d6",
            "model_name": "nvidia/Eagle-Block2A-2B-v2",
            "backbone_model_type": "eagle",
            "model_dtype": "bfloat16",
            **values,
            "diffusion_model_cfg": {
                "num_layers": self.dit_num_layers,
                "num_attention_heads": self.dit_num_attention_heads,
                "attention_head_dim": self.dit_attention_head_dim,
                "output_dim": self.dit_output_dim,
                "norm_type": "ada_norm",
                "interleave_self_attention": True,
                "positional_embeddings": None,
                "dropout": 0.2,
                "final_dropout": True,
            },
            "use_alternate_vl_dit": True,
            "use_vlln": True,
            "add_pos_embed": True,
            "apply_sincos_state_encoding": True,
            "use_relative_action": True,
            "state_dropout_prob": 0.0,
        }


def _pick(cls: type, raw: dict[str, Any]) -> Any:
    """Builds dataclass `cls` from the keys of `raw` it knows (checkpoint configs carry many more)."""
    return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


PRESETS: dict[str, Gr00tConfig] = {
    "gr00t-n1.6-3b": Gr00tConfig(),
    "tiny": Gr00tConfig(
        backbone_embedding_dim=64,
        select_layer=2,
        hidden_size=32,
        input_embedding_dim=48,
        dit_num_layers=4,
        dit_num_attention_heads=4,
        dit_attention_head_dim=12,
        dit_output_dim=32,
        backbone=BackboneConfig(
            vision=VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
            text=TextConfig(
                hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                vocab_size=2048,
            ),
        ),
    ),
}


def preset(name: str) -> Gr00tConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]
