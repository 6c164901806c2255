# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Upstream's golden case (../shared/data/golden/tiny_A, see its README) as the model, the processor and the policy
take it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gr00t_npu_node.backends import Backend
from gr00t_npu_node.model.config import BackboneConfig
from gr00t_npu_node.model.gr00t import Gr00tN1d6, ModelInputs
from gr00t_npu_node.processing.processor import Gr00tProcessor

GROUPS = ("left_arm", "right_arm", "left_hand", "right_hand", "waist")


def reference(golden_dir: Path, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """Upstream's tensors of the case, computed in `dtype`."""
    return dict(np.load(golden_dir / f"reference_{str(dtype).removeprefix('torch.')}.npz"))


def noise(golden_dir: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(golden_dir / "input.npz")["noise"])


def model(golden_dir: Path, backend: Backend, dtype: torch.dtype, optimized: bool) -> Gr00tN1d6:
    """The golden checkpoint loaded on the CPU; `optimized` switches it to the backend's optimized path."""
    backbone = BackboneConfig.from_json(golden_dir / "backbone" / "config.json")
    loaded = Gr00tN1d6.from_checkpoint(golden_dir / "checkpoint", backbone, backend, dtype)
    if optimized:
        loaded.optimize()
    return loaded


def model_inputs(ref: dict[str, np.ndarray]) -> ModelInputs:
    """Upstream's own preprocessed inputs."""
    return ModelInputs(
        input_ids=torch.from_numpy(ref["input_ids"]),
        attention_mask=torch.from_numpy(ref["attention_mask"]),
        pixel_values=torch.from_numpy(ref["pixel_values"]),
        image_mask=torch.from_numpy(ref["image_mask"]),
        state=torch.from_numpy(ref["state"]),
        embodiment_id=torch.from_numpy(ref["embodiment_id"]),
    )


def observation(golden_dir: Path, processor: Gr00tProcessor) -> dict:
    """The case's observation in upstream's format, built with the processor's keys."""
    data = np.load(golden_dir / "input.npz")
    (video_key,) = processor.video_keys
    states = {group: data[f"state.{group}"][0, 0] for group in GROUPS}
    return processor.observation({video_key: data["image"][0]}, states, str(data["instruction"][0]))
