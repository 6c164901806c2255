"""`make demo` end to end: node, simulated camera and robot, listener; it must finish on its own."""
from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import PACKAGE_ROOT


def test_demo_prints_chunks_for_every_controller_and_stops(ros_isolation, tmp_path):
    env = dict(ros_isolation, XDG_CACHE_HOME=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "gr00t_npu_node.demo", "--chunks", "2"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    parameters = yaml.safe_load((PACKAGE_ROOT / "config" / "gr1.yaml").read_text())["/**"]["ros__parameters"]
    controllers = [parameters["joint_groups"][g]["controller"] for g in parameters["policy_groups"]]
    chunk_2 = out[out.index("chunk 2: inference"):]
    assert all(f"  {c}" in chunk_2 for c in controllers), out
    assert "inference latency over" in out and "e-stop engaged: every controller received" in out
    assert "gr00t_node exited with code 0" in out
    assert (tmp_path / "cache" / "gr00t_npu_node" / "tiny").is_dir(), "the embedded tiny model is created once"
