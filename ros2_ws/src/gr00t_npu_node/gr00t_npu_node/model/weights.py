# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Checkpoint weights in the released layout: `model.safetensors`, or shards listed by
`model.safetensors.index.json`. Loading builds nothing twice: the model is created on the meta device, each file is
opened once (memory-mapped), and each tensor is cast once to the target dtype/device and assigned in place."""
from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# In the checkpoint but not loaded: the LM head is tied to the embeddings and never evaluated; the mask token only
# exists for training with state dropout.
IGNORED = ("backbone.model.language_model.lm_head.weight", "action_head.mask_token")


class CheckpointMismatch(ValueError):
    """The checkpoint's tensors do not fit the model built from its config."""


def weight_files(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """(the files holding the weights, the index's tensor name -> file name map; empty for a single file)."""
    index = folder / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map")
        if not weight_map:
            raise CheckpointMismatch(f"{index} has no 'weight_map'")
        missing_files = sorted({f for f in weight_map.values() if not (folder / f).is_file()})
        if missing_files:
            raise CheckpointMismatch(f"{index} lists shard(s) not in {folder}: {', '.join(missing_files)}")
        return [folder / f for f in sorted(set(weight_map.values()))], weight_map
    single = folder / SINGLE_FILE
    if single.is_file():
        return [single], {}
    raise FileNotFoundError(f"no weights in {folder}: expected {SINGLE_FILE} or {INDEX_FILE} with its shards")


def load_weights(model: nn.Module, folder: str | Path, dtype: torch.dtype, device: torch.device) -> None:
    """Fills `model` (typically built on the meta device) from the checkpoint in `folder`, frozen for inference.

    Raises CheckpointMismatch listing every missing, unexpected and mis-shaped tensor by name."""
    folder = Path(folder)
    files, weight_map = weight_files(folder)
    expected = {name: tuple(p.shape) for name, p in model.state_dict(keep_vars=True).items()}
    with ExitStack() as stack:
        where = {}
        for path in files:
            handle = stack.enter_context(safe_open(path, framework="pt"))
            for name in handle.keys():
                if not weight_map or folder / weight_map.get(name, "") == path:  # as the index says, if any
                    where[name] = handle
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name, handle in where.items()}
        _check_names_and_shapes(folder, expected, shapes)
        tensors = {
            name: handle.get_tensor(name).to(device=device, dtype=dtype)
            for name, handle in where.items()
            if name in expected and name not in IGNORED
        }
    # Not strict: the names were checked above, with the tied LM head and the training-only mask token excepted.
    model.load_state_dict(tensors, strict=False, assign=True)
    model.requires_grad_(False)
    tie_lm_head(model)


def _check_names_and_shapes(folder: Path, expected: dict[str, tuple], shapes: dict[str, tuple]) -> None:
    missing = sorted(n for n in expected if n not in shapes and n not in IGNORED)
    unexpected = sorted(n for n in shapes if n not in expected and n not in IGNORED)
    misshaped = sorted(
        f"{n} (checkpoint {list(shapes[n])}, model {list(expected[n])})"
        for n in shapes
        if n in expected and shapes[n] != expected[n]
    )
    if missing or unexpected or misshaped:
        lines = [f"checkpoint at {folder} does not fit the model built from its config.json:"]
        for label, names in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if names:
                lines.append(f"  {label} ({len(names)}): " + ", ".join(names))
        raise CheckpointMismatch("\n".join(lines))


def tie_lm_head(model: nn.Module) -> None:
    """Assignment replaced the embedding Parameter; point the tied LM head at it again."""
    language_model = model.get_submodule("backbone.model.language_model")
    language_model.lm_head.weight = language_model.model.embed_tokens.weight


def save_weights(model: nn.Module, folder: str | Path, max_shard_bytes: int | None = None) -> list[Path]:
    """Writes the state dict in the released layout (tied tensors stored separately, as upstream saves them);
    sharded with an index when `max_shard_bytes` is given."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    if max_shard_bytes is None:
        save_file(tensors, folder / SINGLE_FILE, metadata={"format": "pt"})
        return [folder / SINGLE_FILE]
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    weight_map, paths = {}, []
    for i, shard in enumerate(shards, start=1):
        path = folder / f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, path, metadata={"format": "pt"})
        paths.append(path)
        weight_map.update({name: path.name for name in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=2))
    return paths
