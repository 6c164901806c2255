# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""flake8 over the package as ament_flake8 runs it for ROS 2 packages, with the package's own configuration
(setup.cfg [flake8]: 120 columns, the project's line length)."""
from __future__ import annotations

from pathlib import Path

import pytest
from ament_flake8.main import main_with_errors

PACKAGE = Path(__file__).resolve().parents[1]
CONFIG = PACKAGE / "setup.cfg"


def flake8(*paths: Path) -> tuple[int, list[str]]:
    return main_with_errors(argv=["--config", str(CONFIG), *map(str, paths)])


@pytest.mark.flake8
def test_the_package_is_flake8_clean():
    rc, errors = flake8(PACKAGE)
    assert rc == 0, f"{len(errors)} flake8 error(s):\n" + "\n".join(errors)


@pytest.mark.flake8
def test_the_configuration_reports_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = 1  \n" + "y = " + "1 + " * 40 + "1\n")
    rc, errors = flake8(bad)
    assert rc != 0
    assert {code for code in ("F401", "W291", "E501") if any(code in e for e in errors)} == {"F401", "W291", "E501"}
