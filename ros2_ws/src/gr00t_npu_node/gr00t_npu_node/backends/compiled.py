"""Helpers shared by the backends' `compile`: inductor with the project's settings, and copying results out of
buffers that a replayed graph overwrites."""
from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch.utils._pytree import tree_map


def compile_inductor(fn: Callable, **options: Any) -> Callable:
    """One graph for the whole function (`fullgraph`: a graph break is an error, not a silent slowdown), compiled
    for the shapes of the first call only (`dynamic=False`: every later call has the same shapes)."""
    return torch.compile(fn, backend="inductor", fullgraph=True, dynamic=False, options=options or None)


def clone_outputs(compiled: Callable) -> Callable:
    """Wraps `compiled` so that each call returns fresh tensors, not views of a captured graph's output buffers."""

    @functools.wraps(compiled)
    def call(*args: Any, **kwargs: Any) -> Any:
        return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, compiled(*args, **kwargs))

    return call
