# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Device backends, selected by name: the only place that knows about cpu, cuda and npu.

    get_backend("cpu" | "cuda" | "cuda:1" | "npu" | "npu:0" | "npu-emulated")

Accelerator libraries are imported only when their device is asked for, so every backend module imports on any
machine and `device=npu` without CANN fails with one sentence saying what to install.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from gr00t_npu_node.backends.base import Backend

DEVICES = ("cpu", "cuda", "npu", "npu-emulated")


def get_backend(device: str, *, compile_cache_dir: Optional[str | Path] = None) -> Backend:
    """The backend for `device` ("cuda" and "npu" take an optional ":index"). `compile_cache_dir` is where the NPU
    backend keeps torchair's compiled graphs between processes (ignored elsewhere: inductor has its own cache)."""
    kind, _, index_text = device.partition(":")
    if kind not in DEVICES or (index_text and (kind not in ("cuda", "npu") or not index_text.isdigit())):
        raise ValueError(
            f"unknown device {device!r}: expected one of {', '.join(DEVICES)} (cuda and npu may add :index)"
        )
    index = int(index_text) if index_text else None
    if kind == "cpu":
        from gr00t_npu_node.backends.cpu import CpuBackend

        return CpuBackend()
    if kind == "cuda":
        from gr00t_npu_node.backends.cuda import CudaBackend

        return CudaBackend(index)
    from gr00t_npu_node.backends.npu import EmulatedNpuBackend, NpuBackend, load_torch_npu

    if kind == "npu-emulated":
        return EmulatedNpuBackend()
    return NpuBackend(load_torch_npu(), index=index, compile_cache_dir=compile_cache_dir)


__all__ = ["Backend", "DEVICES", "get_backend"]
