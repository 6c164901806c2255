# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Per-user cache of things the project generates once (the embedded tiny checkpoint, the demo bag)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/gr00t_npu_node`, else `~/.cache/gr00t_npu_node`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gr00t_npu_node"


def build_once(target: Path, write: Callable[[Path], None], is_complete: Callable[[Path], bool] = Path.is_dir) -> Path:
    """`target` when it is complete; else `write` creates a staging folder beside it (the path it is given does not
    exist yet), which is then renamed into place, so a reader never sees a half-written folder and concurrent
    builders do not collide."""
    target = Path(target)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging = work / target.name
    try:
        write(staging)
        if target.exists() and not is_complete(target):
            shutil.rmtree(target)
        staging.rename(target)
    except OSError:
        if not is_complete(target):  # another process may have won the rename with the same content
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
