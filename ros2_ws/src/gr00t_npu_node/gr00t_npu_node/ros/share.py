# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Where the package's data files (config/, launch/) are: the ament share directory when the package is
installed (colcon, or pip with AMENT_PREFIX_PATH set), else `<prefix>/share/<package>` (a plain pip install),
else the source tree (editable installs, tests)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from ament_index_python.packages import get_package_share_directory

PACKAGE = "gr00t_npu_node"
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def package_share_path(*parts: str) -> Path:
    try:
        installed = Path(get_package_share_directory(PACKAGE)).joinpath(*parts)
        if installed.exists():
            return installed
    except (LookupError, OSError, ValueError):  # not installed, or AMENT_PREFIX_PATH unset
        pass
    for folder in (Path(sys.prefix) / "share" / PACKAGE, SOURCE_ROOT):  # pip's data_files, then the source tree
        candidate = folder.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{'/'.join(parts)} is neither in the ament share directory of {PACKAGE} (install the package or set "
        f"AMENT_PREFIX_PATH), nor in {Path(sys.prefix) / 'share' / PACKAGE}, nor in the source tree {SOURCE_ROOT}"
    )


def write_gr1_config(path: Path, **overrides: Any) -> Path:
    """The package's config/gr1.yaml with `overrides` set on its parameters, written to `path`."""
    config = yaml.safe_load(package_share_path("config", "gr1.yaml").read_text())
    config["/**"]["ros__parameters"].update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path
