"""Shared fixtures. Real data lives in `../shared/data` beside the repository; tests that need it skip when absent."""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[4]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the project's shared data at {SHARED_DATA} (not present on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def golden_dir(shared_data) -> Path:
    path = shared_data / "golden" / "tiny_A"
    if not path.is_dir():
        pytest.skip(f"needs the golden case at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The project's own tiny checkpoint (released layout, random weights), written once per test session."""
    from gr00t_npu_node.policy import Gr00tPolicy

    return Gr00tPolicy.create_tiny(tmp_path_factory.mktemp("tiny") / "checkpoint")
