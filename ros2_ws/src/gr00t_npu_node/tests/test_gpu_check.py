# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The GPU check script end to end on the CPU with the tiny preset: its prep copies the golden case, its run checks
parity in float32, bfloat16 and int8, benchmarks every path and ends with the short table."""
import json

import pytest

from gr00t_npu_node.benchmarks import gpu_check


def test_prep_then_run_on_cpu_checks_parity_benchmarks_and_ends_with_the_table(golden_dir, tmp_path, capsys):
    data = tmp_path / "gpu_check_data"
    assert gpu_check.main(["prep", "--source", str(golden_dir), "--data", str(data)]) == 0
    assert sorted(p.name for p in (data / "golden").iterdir()) == sorted(gpu_check.GOLDEN_FILES)
    status = gpu_check.main(["run", "--device", "cpu", "--preset", "tiny", "--runs", "1", "--warmup", "1",
                             "--data", str(data)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for case in ("float32", "bfloat16", "int8"):
        assert f"golden parity {case}: " in printed and f"parity {case}" in printed
    report = json.loads((data / "bench_cpu.json").read_text())
    assert list(report["paths"]) == ["plain", "optimized", "int8"] and report["preset"] == "tiny"
    summary = printed[printed.index("== GPU check summary"):]
    assert all(path in summary for path in report["paths"]) and "goal 20 ms" in summary
    assert printed.rstrip().splitlines()[-1].startswith("(gpu check: ")


def test_run_without_the_golden_case_says_how_to_get_it(tmp_path, capsys):
    assert gpu_check.main(["run", "--device", "cpu", "--data", str(tmp_path)]) == 2
    assert "run `gpu_check prep` where ../shared exists first" in capsys.readouterr().err


def test_prep_names_what_the_source_lacks(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks checkpoint"):
        gpu_check.prep(tmp_path, tmp_path / "out")
