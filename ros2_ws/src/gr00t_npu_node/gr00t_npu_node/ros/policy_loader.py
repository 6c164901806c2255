# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The one place the node obtains its policy: the ROS layer reaches the model only here (gr00t_npu_node.policy, and
the embedded tiny checkpoint when no model_path is given)."""
from __future__ import annotations

from pathlib import Path

from gr00t_npu_node.cache import cache_dir
from gr00t_npu_node.policy import Gr00tPolicy
from gr00t_npu_node.ros.params import NodeParams
from gr00t_npu_node.tiny import write_tiny_checkpoint


def tiny_checkpoint_dir() -> Path:
    """The embedded tiny random-weight checkpoint, created once per user (about a second) and then reused."""
    return write_tiny_checkpoint(cache_dir() / "tiny")


def load_policy(params: NodeParams) -> Gr00tPolicy:
    path = Path(params.model_path).expanduser() if params.model_path else tiny_checkpoint_dir()
    if not path.is_dir():
        raise FileNotFoundError(f"model_path {str(path)!r} is not a folder; point it at a GR00T N1.6 checkpoint")
    return Gr00tPolicy.from_pretrained(
        path,
        embodiment=params.embodiment,
        device=params.device,
        dtype=params.dtype or None,
        weight_dtype=params.weight_dtype or None,
        tokenizer_path=params.tokenizer_path or None,
        compile_cache_dir=params.compile_cache_dir or None,
    )
