# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Docstrings checked by ament_pep257 as ROS 2 packages do, under the project's docstring convention: ament's
own ignores, and a summary that may run over several lines as one sentence, written as a description rather
than a command (D205, D209, D213, D400, D401, D403, D415 off). Everything else of PEP 257 holds: triple double
quotes, no blank docstrings, no stray blank lines or whitespace around them."""
from __future__ import annotations

from pathlib import Path

import pytest
from ament_pep257.main import main

PACKAGE = Path(__file__).resolve().parents[1]
PROJECT_CONVENTION = ["D205", "D209", "D213", "D400", "D401", "D403", "D415"]


def pep257(*paths: Path) -> int:
    return main(argv=["--add-ignore", *PROJECT_CONVENTION, "--", *map(str, paths)])


@pytest.mark.pep257
def test_the_package_follows_the_docstring_convention(capsys):
    rc = pep257(PACKAGE)
    assert rc == 0, capsys.readouterr().err[-4000:]


@pytest.mark.pep257
def test_the_convention_still_reports_malformed_docstrings(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    '''Single quotes.'''\n\n\ndef g():\n    \"\"\"   \"\"\"\n")
    assert pep257(bad) != 0
    report = capsys.readouterr().err
    assert "D300" in report and "D419" in report, report
