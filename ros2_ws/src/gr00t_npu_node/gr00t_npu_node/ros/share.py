"""Where the package's data files (config/, launch/) are: the ament share directory when the package is
installed (colcon or pip with AMENT_PREFIX_PATH set), else the source tree (editable installs, tests)."""
from __future__ import annotations

from pathlib import Path

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
    source = SOURCE_ROOT.joinpath(*parts)
    if source.exists():
        return source
    raise FileNotFoundError(
        f"{'/'.join(parts)} is neither in the ament share directory of {PACKAGE} (install the package or set "
        f"AMENT_PREFIX_PATH) nor in the source tree {SOURCE_ROOT}"
    )
