# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The GPU check: upstream's golden case and the full-size benchmark on one machine that has only this repository.

    # here, where ../shared exists: copy the golden case into the repository (an ignored folder that travels with it)
    PYTHONPATH=ros2_ws/src/gr00t_npu_node python3 -m gr00t_npu_node.benchmarks.gpu_check prep
    # on the GPU machine (Python, torch, safetensors, tokenizers, numpy, jinja2, opencv, pillow, pyyaml; no rclpy)
    PYTHONPATH=ros2_ws/src/gr00t_npu_node python3 -m gr00t_npu_node.benchmarks.gpu_check run --device cuda

`run` does, in order: golden parity of the optimized (captured) path in float32 and bfloat16, and of int8 weights
in bfloat16, each against upstream's `action_pred` of that dtype; then the benchmark (`benchmarks.inference`) of the
full-size model with random weights, plain eager against the captured path and the captured path with int8 weights,
stage by stage against the machine's roofline; then a short table of both. It exits 1 when a parity check fails.
`--device cpu --preset tiny` runs the same steps on any machine in about a minute (tests).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gr00t_npu_node.benchmarks import inference
from gr00t_npu_node.model.gr00t import ModelInputs
from gr00t_npu_node.policy import Gr00tPolicy

REPO_ROOT = Path(__file__).resolve().parents[5]
# The golden case's copy inside the repository (listed in .gitignore) and where `prep` takes it from.
DATA_DIR = REPO_ROOT / "gpu_check_data"
SHARED_GOLDEN = REPO_ROOT.parent / "shared" / "data" / "golden" / "tiny_A"
GOLDEN_FILES = ("checkpoint", "backbone", "input.npz", "reference_float32.npz", "reference_bfloat16.npz", "README.md")
# Largest |ours - upstream| allowed on `action_pred` (normalized, actions span [-1, 1]). float32: upstream's
# reference is float32 on CPU; the GPU's kernels (SDPA, cuBLAS without TF32) reorder sums, a few 1e-5 at most,
# so 1e-3 only catches real errors. bfloat16 and int8: the bound test_model_golden and test_quantization set (0.08).
PARITY_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.08, "int8": 0.08}
# NVIDIA's H100 figures for GR00T N1.6 (the reference) and the H200 goal, end to end.
H100_MS = {"eager": 77.0, "torch.compile": 38.0, "TensorRT": 36.0}
GOAL_MS = 20.0


def prep(source: Path, target: Path) -> Path:
    """Copies the golden case into `target`/golden (replacing an older copy)."""
    missing = [name for name in GOLDEN_FILES if not (source / name).exists()]
    if missing:
        raise FileNotFoundError(f"{source} lacks {', '.join(missing)}: pass --source the golden case's folder (tiny_A)")
    golden = target / "golden"
    if golden.exists():
        shutil.rmtree(golden)
    golden.mkdir(parents=True)
    for name in GOLDEN_FILES:
        copy = shutil.copytree if (source / name).is_dir() else shutil.copy2
        copy(source / name, golden / name)
    return golden


def golden_parity(golden: Path, device: str) -> list[dict]:
    """action_pred of the optimized path against upstream's, per case: float32, bfloat16, int8 weights (bfloat16)."""
    data = np.load(golden / "input.npz")
    noise = torch.from_numpy(data["noise"])
    results = []
    for case, dtype, weight_dtype in (("float32", "float32", None), ("bfloat16", "bfloat16", None),
                                      ("int8", "bfloat16", "int8")):
        reference = dict(np.load(golden / f"reference_{dtype}.npz"))
        inputs = ModelInputs(**{name: torch.from_numpy(reference[name]) for name in (
            "input_ids", "attention_mask", "pixel_values", "image_mask", "state", "embodiment_id")})
        start = time.perf_counter()
        policy = Gr00tPolicy.from_pretrained(
            golden / "checkpoint", tokenizer_path=golden / "backbone", device=device, dtype=dtype,
            weight_dtype=weight_dtype,
        )
        action_pred = policy.model(inputs, noise)  # the first call captures (compiles)
        deviation = float(np.abs(action_pred.numpy() - reference["action_pred"]).max())
        results.append({
            "case": case, "deviation": deviation, "tolerance": PARITY_TOLERANCE[case],
            "passed": bool(np.isfinite(deviation) and deviation <= PARITY_TOLERANCE[case]),
            "seconds": time.perf_counter() - start,
        })
        print(f"golden parity {case}: max |action_pred - upstream| {deviation:.3g} (tolerance "
              f"{PARITY_TOLERANCE[case]:g}) {'ok' if results[-1]['passed'] else 'FAILED'}", flush=True)
        del policy
    return results


def summary(parity: list[dict], report: dict) -> str:
    """The short table: parity per case, then each path's stage medians and its total against the goal."""
    lines = ["", f"== GPU check summary: device {report['device']}, preset {report['preset']}, torch {report['torch']}"]
    lines += [f"parity {r['case']:<9} {r['deviation']:.3g} <= {r['tolerance']:g}: {'ok' if r['passed'] else 'FAILED'}"
              for r in parity]
    stages = ("vision", "llm", "action_head", "total")
    lines.append(f"{'path':<10}" + "".join(f" {stage + ' ms':>15}" for stage in stages))
    for path, result in report["paths"].items():
        lines.append(f"{path:<10}" + "".join(f" {result['median'][stage] * 1e3:>15.1f}" for stage in stages))
    best = min(result["median"]["total"] for result in report["paths"].values()) * 1e3
    lines.append(
        f"best total {best:.1f} ms; goal {GOAL_MS:.0f} ms end to end; NVIDIA's H100: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in H100_MS.items())
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    golden = args.data / "golden"
    if not (golden / "checkpoint").is_dir():
        print(f"gpu_check: no golden case at {golden}; run `gpu_check prep` where ../shared exists first",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    parity = golden_parity(golden, args.device)
    report_path = args.data / f"bench_{args.device.replace(':', '_')}.json"
    argv = ["--preset", args.preset, "--device", args.device, "--dtype", "bfloat16", "--paths", args.paths,
            "--runs", str(args.runs), "--warmup", str(args.warmup), "--rtc-modes", args.rtc_modes,
            "--json", str(report_path)]
    status = inference.main(argv)
    if status != 0:
        return status
    report = json.loads(report_path.read_text())
    print(summary(parity, report))
    print(f"(gpu check: {time.perf_counter() - start:.0f} s; results in {report_path})")
    return 0 if all(r["passed"] for r in parity) else 1


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep_parser = commands.add_parser("prep", help="copy the golden case into the repository (run where ../shared is)")
    prep_parser.add_argument("--source", type=Path, default=SHARED_GOLDEN)
    prep_parser.add_argument("--data", type=Path, default=DATA_DIR)
    run_parser = commands.add_parser("run", help="golden parity, then the full-size benchmark, then a short table")
    run_parser.add_argument("--device", default="cuda")
    run_parser.add_argument("--preset", default="gr00t-n1.6-3b")
    run_parser.add_argument("--paths", default="plain,optimized,int8")
    run_parser.add_argument("--runs", type=int, default=10)
    run_parser.add_argument("--warmup", type=int, default=2)
    run_parser.add_argument("--rtc-modes", default="", help="real-time chunking modes to time too (default: none)")
    run_parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    if args.command == "prep":
        print(f"golden case copied to {prep(args.source, args.data)}")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
