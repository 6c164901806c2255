# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Progress bars for the command-line tools, imported only when shown: tqdm belongs to the `bag` extra, and the
node's demo converts and plays bags without it."""
from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], show: bool, **tqdm_options) -> Iterable[T]:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, **tqdm_options)
