# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Inductor with the project's settings, shared by the backends' `compile`."""
from __future__ import annotations

from typing import Callable

import torch


def compile_inductor(fn: Callable) -> Callable:
    """One graph for the whole function (`fullgraph`: a graph break is an error, not a silent slowdown), compiled
    for the shapes of the first call only (`dynamic=False`: every later call has the same shapes)."""
    return torch.compile(fn, backend="inductor", fullgraph=True, dynamic=False)

