# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Random-weight models the project makes itself (no download, no shared data): the embedded default model, a
tiny GR00T N1.6 checkpoint in the released layout with its own backbone folder and tokenizer (used by the node
without `model_path`, the demo and tests), and in-memory policies of any preset's size (benchmarks).

    gr00t-npu-create-tiny OUT [--seed N]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gr00t_npu_node.backends import Backend, get_backend
from gr00t_npu_node.cache import build_once, cache_dir
from gr00t_npu_node.keys import ACTION, LANGUAGE, RELATIVE_ACTION, STATE, VIDEO
from gr00t_npu_node.model.config import preset
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.model.weights import save_weights, tie_lm_head
from gr00t_npu_node.policy import Gr00tPolicy, resolve_dtype, resolve_weights
from gr00t_npu_node.processing.processor import Gr00tProcessor
from gr00t_npu_node.tiny_tokenizer import write_tiny_tokenizer

GR1 = "gr1"
GR1_EMBODIMENT_ID = 20
GR1_VIDEO_KEY = "ego_view_bg_crop_pad_res256_freq20"
GR1_LANGUAGE_KEY = "task"
GR1_GROUPS = {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6, "waist": 3}
RELATIVE_GROUPS = ("left_arm", "right_arm", "left_hand", "right_hand")
ACTION_HORIZON = 16
# Plausible GR1 joint ranges (rad) for the tiny model's statistics: the project's own round numbers.
STATE_RANGE = {
    "left_arm": ([-0.6, -0.3, -0.6, -2.3, -0.8, -0.6, -0.5], [0.6, 0.8, 0.6, -0.2, 0.8, 0.6, 0.5]),
    "right_arm": ([-0.6, -0.8, -0.6, -2.3, -0.8, -0.6, -0.5], [0.6, 0.3, 0.6, -0.2, 0.8, 0.6, 0.5]),
    "left_hand": ([0.0] * 6, [1.5, 1.5, 1.5, 1.5, 1.0, 1.5]),
    "right_hand": ([0.0] * 6, [1.5, 1.5, 1.5, 1.5, 1.0, 1.5]),
    "waist": ([-0.3, -0.1, -0.2], [0.3, 0.4, 0.2]),
}
# Largest per-step change of a relative action at the first and last chunk step (rad).
RELATIVE_SPAN = {"left_arm": (0.02, 0.3), "right_arm": (0.02, 0.3), "left_hand": (0.1, 1.2), "right_hand": (0.1, 1.2)}
COMPLETE_MARKER = ".complete"


def gr1_modality_config() -> dict:
    """The GR1 modality layout in `processor_config.json` form."""

    def modality(keys, **extra):
        base = {"delta_indices": [0], "modality_keys": list(keys), "sin_cos_embedding_keys": None,
                "mean_std_embedding_keys": None, "action_configs": None}
        return base | extra

    action_configs = [
        {"rep": "RELATIVE" if g in RELATIVE_GROUPS else "ABSOLUTE", "type": "NON_EEF", "format": "DEFAULT",
         "state_key": None}
        for g in GR1_GROUPS
    ]
    return {
        VIDEO: modality([GR1_VIDEO_KEY]),
        STATE: modality(GR1_GROUPS, sin_cos_embedding_keys=list(GR1_GROUPS)),
        ACTION: modality(GR1_GROUPS, delta_indices=list(range(ACTION_HORIZON)), action_configs=action_configs),
        LANGUAGE: modality([GR1_LANGUAGE_KEY]),
    }


def processor_config(max_state_dim: int, max_action_dim: int, action_horizon: int) -> dict:
    return {
        "processor_class": "Gr00tN1d6Processor",
        "processor_kwargs": {
            "modality_configs": {GR1: gr1_modality_config()},
            "image_crop_size": None,
            "image_target_size": None,
            "use_albumentations": True,
            "random_rotation_angle": None,
            "color_jitter_params": None,
            "shortest_image_edge": 256,
            "crop_fraction": 0.95,
            "model_name": "nvidia/Eagle-Block2A-2B-v2",
            "model_type": "eagle",
            "formalize_language": True,
            "max_state_dim": max_state_dim,
            "max_action_dim": max_action_dim,
            "max_action_horizon": action_horizon,
            "use_percentiles": False,
            "clip_outliers": True,
            "apply_sincos_state_encoding": True,
            "use_relative_action": True,
        },
    }


def _stats(low: np.ndarray, high: np.ndarray) -> dict:
    mean, std = (low + high) / 2, (high - low) / 4
    return {k: v.tolist() for k, v in
            {"min": low, "max": high, "mean": mean, "std": std, "q01": low + 0.01 * (high - low),
             "q99": high - 0.01 * (high - low)}.items()}


def gr1_statistics() -> dict:
    state, action, relative = {}, {}, {}
    steps = np.linspace(0.0, 1.0, ACTION_HORIZON)[:, None]
    for group, (low, high) in STATE_RANGE.items():
        low, high = np.asarray(low), np.asarray(high)
        state[group] = _stats(low, high)
        action[group] = _stats(low, high)
        if group in RELATIVE_SPAN:
            first, last = RELATIVE_SPAN[group]
            span = np.repeat(first + (last - first) * steps, len(low), axis=1)
            relative[group] = _stats(-span, span)
    return {GR1: {STATE: state, ACTION: action, RELATIVE_ACTION: relative}}


def write_tiny_checkpoint(folder: Path, seed: int = 0) -> Path:
    """Writes the tiny checkpoint to `folder` (its backbone to `folder/backbone`) once and returns `folder`; a
    complete folder written with the same seed is reused."""
    return build_once(Path(folder), lambda staging: _write(staging, seed), lambda path: _is_complete(path, seed))


def _is_complete(folder: Path, seed: int) -> bool:
    marker = folder / COMPLETE_MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("seed") == seed


def _write(folder: Path, seed: int) -> None:
    backbone_dir = folder / "backbone"
    backbone_dir.mkdir(parents=True)
    tokenizer = write_tiny_tokenizer(backbone_dir)
    config = preset("tiny")
    backbone = replace(
        config.backbone,
        text=replace(config.backbone.text, vocab_size=tokenizer["vocab_size"]),
        image_token_index=tokenizer["image_token_index"],
    )
    config = replace(config, backbone=backbone)
    (backbone_dir / "config.json").write_text(json.dumps(backbone.to_json(), indent=2))
    (folder / "config.json").write_text(json.dumps(config.to_json(), indent=2))
    (folder / "processor_config.json").write_text(
        json.dumps(processor_config(config.max_state_dim, config.max_action_dim, config.action_horizon), indent=2)
    )
    (folder / "statistics.json").write_text(json.dumps(gr1_statistics(), indent=2))
    (folder / "embodiment_id.json").write_text(json.dumps({GR1: GR1_EMBODIMENT_ID}, indent=2))
    model = Gr00tN1d6(config, Backend())
    model.init_random(seed)
    save_weights(model, folder)
    (folder / COMPLETE_MARKER).write_text(json.dumps({"seed": seed}))


def random_policy(
    preset_name: str,
    device: str = "cpu",
    dtype: Optional[str] = None,
    seed: int = 0,
    optimize: bool = True,
    weight_dtype: Optional[str] = None,
    weight_group_size: Optional[int] = None,
) -> Gr00tPolicy:
    """A GR1 policy with random weights of a preset's size, built in memory (benchmarks); its processor files are the
    tiny checkpoint's, written once to the user's cache. `weight_dtype`/`weight_group_size` as for
    `Gr00tPolicy.from_pretrained` (the same random weights, quantized)."""
    backend = get_backend(device)
    torch_dtype = resolve_dtype(dtype, backend)
    int8 = resolve_weights(weight_dtype, weight_group_size, torch_dtype)
    folder = write_tiny_checkpoint(cache_dir() / "tiny")
    processor = Gr00tProcessor.from_folders(folder, folder / "backbone", GR1)
    config = preset(preset_name)
    # The tiny tokenizer's image token, so that the model accepts the processor's prompts.
    config = replace(config, backbone=replace(config.backbone, image_token_index=processor.image_token_index))
    with torch.device("meta"):
        model = Gr00tN1d6(config, backend if optimize else backend.plain()).to(torch_dtype)
    model.to_empty(device=backend.device())
    tie_lm_head(model)
    model.init_random(seed)
    model.requires_grad_(False)
    if int8 is not None:
        model.quantize(int8)
    if optimize:
        model.optimize()
    return Gr00tPolicy(model, processor, f"random-{preset_name}", seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random-weight GR00T N1.6 checkpoint (released layout).")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_tiny_checkpoint(args.out, args.seed))


if __name__ == "__main__":
    main()
