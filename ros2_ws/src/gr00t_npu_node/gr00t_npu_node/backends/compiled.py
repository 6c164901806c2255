# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Inductor with the project's settings, shared by the backends' `compile`."""
from __future__ import annotations

import types
from typing import Callable

import torch


def with_own_code(fn: Callable) -> Callable:
    """`fn` (a function or a bound method) as a function of the same body with a code object of its own. Dynamo keeps
    the graphs it compiles per code object, at most `recompile_limit` (8) of them: every model built in one process
    (benchmarks, tests) bakes its own weights into its graphs, so without their own code objects the models' parts
    (one graph per text bucket each) would share, and soon exhaust, one budget."""
    function = fn.__func__ if isinstance(fn, types.MethodType) else fn
    copy = types.FunctionType(
        function.__code__.replace(), function.__globals__, function.__name__, function.__defaults__,
        function.__closure__,
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    return types.MethodType(copy, fn.__self__) if isinstance(fn, types.MethodType) else copy


def compile_inductor(fn: Callable) -> Callable:
    """One graph for the whole function (`fullgraph`: a graph break is an error, not a silent slowdown), compiled
    for the shapes of the first call only (`dynamic=False`: every later call has the same shapes)."""
    return torch.compile(with_own_code(fn), backend="inductor", fullgraph=True, dynamic=False)
