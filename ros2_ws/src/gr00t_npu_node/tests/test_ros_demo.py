# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`make demo` end to end: a bag replayed into the node on sim time, the listener's chunks and latency summary; the
demo must finish on its own, without the `bag` extra installed."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import SHARED
from gr00t_npu_node.bag.dataset.layout import load_joint_layout

DEMO_TIMEOUT_S = 90


# The `bag` extra (data-set conversion and progress bars), made unimportable: the demo must not need it.
WITHOUT_BAG_EXTRA = (
    "import runpy, sys; sys.modules.update(dict.fromkeys(('tqdm', 'av', 'pyarrow'))); "
    "sys.argv[0] = 'gr00t_npu_node.demo'; runpy.run_module('gr00t_npu_node.demo', run_name='__main__')"
)


def run_demo(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", WITHOUT_BAG_EXTRA, *args], env=env, capture_output=True,
                            text=True, timeout=DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    return result.stdout


def assert_chunks_for_every_controller(out: str) -> None:
    controllers = load_joint_layout().command_topics.values()
    for topic in controllers:
        line = rf"^  {re.escape(topic)} +\d+ points  t=\d\.\d\d\.\.\d\.\d\d s  q\[0\]=\[.*\]  \|v\|max=[\d.]+ rad/s$"
        assert re.search(line, out, re.MULTILINE), out
    summary = re.search(r"^summary: chunks per controller: (.*); latency p50 [\d.]+ ms, p95 [\d.]+ ms over (\d+) "
                        r"inferences$", out, re.MULTILINE)
    assert summary, out
    counts = dict(re.findall(r"(\S+) (\d+)(?:, |$)", summary.group(1)))
    assert set(counts) == set(controllers) and all(int(n) >= 1 for n in counts.values()), summary.group(0)
    assert int(summary.group(2)) >= 1
    assert "e-stop engaged: every controller received a single-point hold" in out
    assert "gr00t_node exited with code 0" in out


def test_demo_replays_the_synthetic_bag_into_the_node(ros_isolation, tmp_path):
    cache = tmp_path / "cache"
    out = run_demo(dict(ros_isolation, XDG_CACHE_HOME=str(cache)))
    assert_chunks_for_every_controller(out)
    # A 4 s bag at the node's cadence (a chunk every 8 steps of 50 ms): about ten chunks, fewer on a busy machine.
    assert len(re.findall(r"^chunk \d+: image at", out, re.MULTILINE)) >= 3, out
    assert (cache / "gr00t_npu_node" / "demo_bag" / "metadata.yaml").is_file(), "the demo bag is cached"
    assert (cache / "gr00t_npu_node" / "tiny").is_dir(), "the embedded tiny model is created once"


def test_demo_replays_a_converted_gr1_episode(ros_isolation, tmp_path):
    dataset = SHARED / "data" / "gr1.PickNPlace"
    if not dataset.is_dir():
        pytest.skip(f"needs the GR1 data set at {dataset} (not present on this machine)")
    convert = subprocess.run([sys.executable, "-m", "gr00t_npu_node.bag.cli", "convert", str(dataset),
                              str(tmp_path / "episodes"), "--episodes", "0", "--max-seconds", "2"],
                             capture_output=True, text=True, timeout=60)
    assert convert.returncode == 0, convert.stderr
    cache = tmp_path / "cache"
    bag = tmp_path / "episodes" / "episode_000000"
    out = run_demo(dict(ros_isolation, XDG_CACHE_HOME=str(cache)), "--bag", str(bag))
    assert_chunks_for_every_controller(out)
    assert not (cache / "gr00t_npu_node" / "demo_bag").exists(), "--bag replays only the given bag"


def test_demo_rejects_a_missing_bag(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gr00t_npu_node.demo", "--bag", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "no such bag directory" in result.stderr, result.stderr
