# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Every Python file of the package opens with the copyright line and the SPDX identifier of the license that
package.xml declares (ament_copyright's check, which is not on the package index here)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
COPYRIGHT = re.compile(r"# Copyright (19|20)\d\d(-\d{4})? \S.*")


def declared_license() -> str:
    return ElementTree.parse(PACKAGE / "package.xml").getroot().findtext("license").strip()


def header_problem(path: Path, license_id: str) -> str | None:
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    if len(lines) < 2 or not COPYRIGHT.fullmatch(lines[0]):
        return f"{path}: the first line is not '# Copyright <year> <holder>'"
    if lines[1] != f"# SPDX-License-Identifier: {license_id}":
        return f"{path}: the second line is not '# SPDX-License-Identifier: {license_id}' (package.xml's license)"
    return None


def test_every_python_file_carries_the_copyright_and_license_header():
    license_id = declared_license()
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    problems = [p for p in (header_problem(f, license_id) for f in files) if p]
    assert problems == [], "\n".join(problems)


def test_a_missing_or_wrong_header_is_named(tmp_path):
    unlicensed = tmp_path / "a.py"
    unlicensed.write_text('"""No header."""\n')
    other = tmp_path / "b.py"
    other.write_text("# Copyright 2026 Someone\n# SPDX-License-Identifier: MIT\n")
    assert "Copyright" in header_problem(unlicensed, "Apache-2.0")
    assert "Apache-2.0" in header_problem(other, "Apache-2.0")
    assert header_problem(other, "MIT") is None
