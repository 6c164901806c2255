# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmark of one `get_action`: the plain eager path against the optimized path, stage by stage, in one run.

    gr00t-npu-bench --preset gr00t-n1.6-3b --device cpu --dtype bfloat16 --runs 10 --json bench.json

Both paths get random weights of the preset's size (`tiny.random_policy`) and warm-up calls (the first one compiles
on the optimized path; its time is reported). Then `--runs` rounds, each timing both paths on the same observation
and noise, in alternating order, so that both see the machine in the same states (shared machines drift by several
times within a minute). Per stage (preprocess, vision, llm, action_head, decode, total): median and 90th
percentile; stages are synchronized with the device at their boundaries, totals come from separate unsynchronized
calls.

Next to the times: the FLOPs each stage executes (counted by FlopCounterMode), the achieved GFLOP/s, and the
device's matrix throughput on that stage: every linear-layer call of one optimized inference of the stage replayed
back to back with nothing else (same layers, weights, shapes and kernels), once per round. A second table splits
each optimized stage: its linear layers replayed alone, the same calls as they ran (fused GELU epilogues included)
plus its attention calls replayed alone ("kernels"), and what remains (norms, residual adds, copies, Python). Peak
memory: the device allocator's peak on cuda/npu, on CPU the process's peak resident memory; each path's peak counts
its own build, warm-up and inference only.

Real-time chunking (`--rtc-modes`, all by default): on the last path, every round also times one `get_action` per
mode, continuing a running chunk planned RTC_EXECUTE_STEPS steps earlier from the same images with other noise, which
the robot has followed since (RTC_DELAY_STEPS of its remaining steps frozen). Reported per mode: its total, the latency it adds (median over the rounds of its
total less the unguided total of the same round), its first call (the guided loop's compilation, where the backend
compiles), and how far the chunk's guided overlap after the frozen steps lies from the running chunk's plan (RMS,
robot units), next to the unguided chunk's distance.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gr00t_npu_node.backends import DEVICES, Backend, get_backend
from gr00t_npu_node.benchmarks.probes import (
    STAGES,
    MemoryPhase,
    record_calls,
    replay_seconds,
    stage_seconds,
    stage_work,
    status_bytes,
)
from gr00t_npu_node.guidance import RTC_MODES, ChunkGuidance
from gr00t_npu_node.keys import STATE
from gr00t_npu_node.model.config import PRESETS, Gr00tConfig
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.policy import Gr00tPolicy
from gr00t_npu_node.tiny import random_policy

PATHS = ("plain", "optimized")
INSTRUCTION = "pick the pear from the counter and place it in the plate"
# The node's default cadence: a chunk hands over to the next after 8 of its 16 steps, so the running chunk still
# plans the new chunk's first 8; 3 of those run before the new chunk can take over (an inference of ~0.15 s at 20 Hz).
RTC_EXECUTE_STEPS = 8
RTC_DELAY_STEPS = 3


# ---- the run ----------------------------------------------------------------------------------------------
@dataclass
class PathResult:
    path: str
    seconds: dict[str, list[float]] = field(default_factory=dict)  # stage -> one value per round
    gflop: dict[str, float] = field(default_factory=dict)
    build_seconds: float = 0.0
    first_call_seconds: float = 0.0  # the first warm-up call: graph compilation (where the backend compiles) included
    peak_process_gb: Optional[float] = None
    peak_device_gb: Optional[float] = None
    llm_tokens: int = 0

    def median(self, stage: str) -> float:
        return statistics.median(self.seconds[stage])

    def p90(self, stage: str) -> float:
        return float(np.percentile(self.seconds[stage], 90))

    def best(self, stage: str) -> float:
        return min(self.seconds[stage])


@dataclass
class RtcResult:
    mode: str
    seconds: list[float] = field(default_factory=list)  # one total per round
    added_seconds: list[float] = field(default_factory=list)  # that total less the same round's unguided total
    first_call_seconds: float = 0.0
    overlap_rms: float = 0.0  # guided overlap after the frozen steps vs the running chunk's plan


def continued_chunk(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> tuple[dict, ChunkGuidance]:
    """A running chunk planned from `observation` with `noise`, and what it asks of the next chunk once the robot has
    followed it for RTC_EXECUTE_STEPS steps: the next observation (the same images, the state where the chunk put the
    joints) and the chunk's remaining steps as the target (held at its last point past its end)."""
    planned = policy.get_action(observation, noise=noise)
    reached = {group: planned[group][:, RTC_EXECUTE_STEPS - 1 : RTC_EXECUTE_STEPS] for group in policy.state_dims}
    following = {**observation, STATE: {g: reached.get(g, s) for g, s in observation[STATE].items()}}
    target = {
        group: np.concatenate([chunk[0, RTC_EXECUTE_STEPS:], np.repeat(chunk[0, -1:], RTC_EXECUTE_STEPS, axis=0)])
        for group, chunk in planned.items()
    }
    guidance = ChunkGuidance(target, frozen_steps=RTC_DELAY_STEPS, overlap_steps=policy.action_horizon - RTC_EXECUTE_STEPS)
    return following, guidance


def overlap_rms(actions: dict[str, np.ndarray], guidance: ChunkGuidance) -> float:
    """RMS distance of the chunk's steps after the frozen ones, within the overlap, from the guidance's target."""
    steps = slice(guidance.frozen_steps, guidance.overlap_steps)
    errors = np.concatenate([(actions[g][0, steps] - t[steps]).ravel() for g, t in guidance.target.items()])
    return float(np.sqrt(np.mean(errors**2)))


def observation_for(policy: Gr00tPolicy, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    frames = {key: rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for key in policy.video_keys}
    states = {group: rng.uniform(-0.2, 0.2, dim) for group, dim in policy.state_dims.items()}
    return policy.observation(frames, states, INSTRUCTION)


def weight_gb(config: Gr00tConfig, dtype: torch.dtype) -> float:
    """The model's weights in `dtype`, counted on a meta-device build (a prepared model may hold them in a
    device-specific layout that is no longer a parameter)."""
    with torch.device("meta"):
        model = Gr00tN1d6(config, Backend())
    return sum(p.numel() for p in model.parameters()) * torch.empty(0, dtype=dtype).element_size() / 1e9


def run(args: argparse.Namespace, paths: list[str], backend: Backend, dtype: torch.dtype) -> dict:
    config = PRESETS[args.preset]
    noise = torch.randn(1, config.action_horizon, config.max_action_dim, generator=torch.Generator().manual_seed(args.seed))
    load_before = os.getloadavg()[0]
    baseline_rss = status_bytes("VmRSS")
    policies: dict[str, Gr00tPolicy] = {}
    results: dict[str, PathResult] = {}
    observation: dict = {}
    for path in paths:
        result = results[path] = PathResult(path)
        with MemoryPhase(backend, baseline_rss) as memory:
            start = time.perf_counter()
            policy = policies[path] = random_policy(
                args.preset, args.device, str(dtype).removeprefix("torch."), seed=args.seed, optimize=path == "optimized"
            )
            result.build_seconds = time.perf_counter() - start
            observation = observation or observation_for(policy, args.seed)
            for call in range(args.warmup):
                start = time.perf_counter()
                policy.get_action(observation, noise=noise)
                if call == 0:
                    result.first_call_seconds = time.perf_counter() - start
        result.peak_process_gb = None if memory.process_peak is None else memory.process_peak / 1e9
        result.peak_device_gb = None if memory.device_peak is None else memory.device_peak / 1e9
        work = stage_work(policy, observation, noise)
        result.llm_tokens, result.gflop = work.llm_tokens, work.gflop
        result.seconds = {stage: [] for stage in STAGES}

    rtc_policy = policies[paths[-1]]
    running_noise = torch.randn(noise.shape, generator=torch.Generator().manual_seed(args.seed + 1))
    rtc_observation, continued = continued_chunk(rtc_policy, observation, running_noise)
    guidance = {mode: replace(continued, mode=mode) for mode in args.rtc_modes}
    unguided_rms = overlap_rms(rtc_policy.get_action(rtc_observation, noise=noise), continued)
    rtc = {mode: RtcResult(mode) for mode in args.rtc_modes}
    for mode, result in rtc.items():
        start = time.perf_counter()
        actions = rtc_policy.get_action(rtc_observation, noise=noise, guidance=guidance[mode])
        result.first_call_seconds = time.perf_counter() - start
        result.overlap_rms = overlap_rms(actions, guidance[mode])

    calls = record_calls(policies[paths[-1]], observation, noise)
    matrix: dict[str, list[float]] = {stage: [] for stage in calls}
    kernels: dict[str, list[float]] = {stage: [] for stage in calls}
    linear_flops = {stage: sum(c.flops for c in stage_calls.linear) for stage, stage_calls in calls.items()}
    linear_runs = {stage: [c.run for c in stage_calls.linear] for stage, stage_calls in calls.items()}
    for round_index in range(args.runs):
        for path in paths if round_index % 2 == 0 else paths[::-1]:
            policy, seconds = policies[path], results[path].seconds
            for stage, stage_s in stage_seconds(policy, observation, noise).items():
                seconds[stage].append(stage_s)
            start = time.perf_counter()
            policy.get_action(observation, noise=noise)
            seconds["total"].append(time.perf_counter() - start)
        for mode, result in rtc.items():
            start = time.perf_counter()
            rtc_policy.get_action(rtc_observation, noise=noise, guidance=guidance[mode])
            result.seconds.append(time.perf_counter() - start)
            result.added_seconds.append(result.seconds[-1] - results[paths[-1]].seconds["total"][-1])
        for stage, stage_calls in calls.items():
            matrix[stage].append(linear_flops[stage] / replay_seconds(backend, linear_runs[stage]) / 1e9)
            kernels[stage].append(replay_seconds(backend, stage_calls.kernels))

    actions = {path: policies[path].get_action(observation, noise=noise) for path in paths}
    deviation = None
    if len(paths) == 2:
        deviation = max(float(np.abs(actions["plain"][g] - actions["optimized"][g]).max()) for g in actions["plain"])
    return {
        "preset": args.preset, "device": args.device, "backend": backend.name, "dtype": str(dtype).removeprefix("torch."),
        "runs": args.runs, "warmup": args.warmup, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "weights_gb": weight_gb(config, dtype),
        "max_action_deviation": deviation, "load_average": [load_before, os.getloadavg()[0]],
        "matrix_gflops": {stage: statistics.median(v) for stage, v in matrix.items()},
        "matrix_gflops_per_round": matrix,
        "matrix_seconds": {stage: linear_flops[stage] / 1e9 / statistics.median(v) for stage, v in matrix.items()},
        "kernel_seconds": {stage: statistics.median(v) for stage, v in kernels.items()},
        "kernels_path": paths[-1],
        "rtc": {
            "path": paths[-1], "execute_steps": RTC_EXECUTE_STEPS, "delay_steps": RTC_DELAY_STEPS,
            "unguided_overlap_rms": unguided_rms,
            "modes": {
                mode: asdict(r) | {"median": statistics.median(r.seconds), "added_median": statistics.median(r.added_seconds)}
                for mode, r in rtc.items()
            },
        },
        "paths": {
            path: asdict(r) | {key: {s: getattr(r, key)(s) for s in STAGES} for key in ("median", "p90", "best")}
            for path, r in results.items()
        },
    }


# ---- report -----------------------------------------------------------------------------------------------
def table(report: dict) -> str:
    paths = report["paths"]
    matrix = report["matrix_gflops"]
    lines = [
        f"gr00t-npu-bench: preset {report['preset']}, device {report['device']} ({report['backend']}), dtype "
        f"{report['dtype']}, {report['runs']} rounds after {report['warmup']} warm-up calls, torch {report['torch']}, "
        f"{report['threads']} CPU threads, {report['machine']}, 1-min load average {report['load_average'][0]:.1f} "
        f"before / {report['load_average'][1]:.1f} after (other processes competing for the cores inflate the p90)",
        "",
    ]
    header = f"{'stage':<12}"
    for path in paths:
        header += f" {path + ' ms':>13} {'p90':>7} {'best':>7} {'GFLOP':>6} {'GFLOP/s':>8}"
    header += f" {'matrix':>7}" + "".join(f" {'eff ' + p[:3]:>8}" for p in paths)
    if len(paths) == 2:
        header += f" {'speedup':>8}"
    lines.append(header)
    for stage in STAGES:
        row = f"{stage:<12}"
        rates = {}
        for path, r in paths.items():
            median = r["median"][stage]
            work = sum(r["gflop"].values()) if stage == "total" else r["gflop"].get(stage)
            rates[path] = work / median if work else None
            row += f" {median * 1e3:>13.1f} {r['p90'][stage] * 1e3:>7.1f} {r['best'][stage] * 1e3:>7.1f}"
            row += f" {work:>6.1f} {rates[path]:>8.0f}" if work else f" {'':>6} {'':>8}"
        if stage in matrix:
            row += f" {matrix[stage]:>7.0f}" + "".join(f" {rates[p] / matrix[stage]:>8.0%}" for p in paths)
        else:
            row += f" {'':>7}" + "".join(f" {'':>8}" for _ in paths)
        if len(paths) == 2:
            row += f" {paths['plain']['median'][stage] / paths['optimized']['median'][stage]:>7.2f}x"
        lines.append(row)
    lines += ["", *kernel_table(report), ""]
    for path, r in paths.items():
        memory = f"process peak {r['peak_process_gb']:.2f} GB" if r["peak_process_gb"] is not None else "process peak n/a"
        if r["peak_device_gb"] is not None:
            memory += f", device peak {r['peak_device_gb']:.2f} GB"
        lines.append(
            f"{path}: {memory}, LLM tokens {r['llm_tokens']}, build {r['build_seconds']:.1f} s, "
            f"first call {r['first_call_seconds']:.1f} s (compilation and kernel set-up included)"
        )
    lines += rtc_table(report["rtc"])
    lines.append(f"weights {report['weights_gb']:.2f} GB")
    if report["max_action_deviation"] is not None:
        lines.append(f"max |optimized - plain| over the decoded actions (same noise): {report['max_action_deviation']:.3g}")
    lines.append(
        "ms: median, 90th percentile and best of the rounds; GFLOP/s = stage GFLOP / median time;\n"
        "matrix = GFLOP/s of the stage's linear-layer calls replayed alone (median over rounds); eff = GFLOP/s / matrix"
    )
    return "\n".join(lines)


def kernel_table(report: dict) -> list[str]:
    """Where each stage's time goes on the path whose calls were recorded."""
    path = report["kernels_path"]
    lines = [
        f"{path} path, where the time goes:",
        f"{'stage':<12} {'ms':>8} {'linear alone':>13} {'kernels alone':>14} {'outside':>8}",
    ]
    for stage, kernel_s in report["kernel_seconds"].items():
        stage_s = report["paths"][path]["median"][stage]
        lines.append(
            f"{stage:<12} {stage_s * 1e3:>8.1f} {report['matrix_seconds'][stage] * 1e3:>13.1f} "
            f"{kernel_s * 1e3:>14.1f} {(stage_s - kernel_s) * 1e3:>8.1f}"
        )
    lines.append(
        "linear alone: the stage's linear-layer calls replayed (what `matrix` is computed from); kernels alone: the\n"
        "same calls as they ran (fused GELU epilogues included) and the stage's attention calls, replayed; outside:\n"
        "the rest of the stage's median (norms, residual adds, copies, Python)"
    )
    return lines


def rtc_table(rtc: dict) -> list[str]:
    if not rtc["modes"]:
        return []
    lines = [
        f"real-time chunking on the {rtc['path']} path ({rtc['execute_steps']} steps executed per chunk, "
        f"{rtc['delay_steps']} frozen):",
        f"{'mode':<10} {'total ms':>9} {'added ms':>9} {'first call s':>13} {'overlap rms':>12}",
        f"{'none':<10} {'':>9} {'':>9} {'':>13} {rtc['unguided_overlap_rms']:>12.4f}",
    ]
    for mode, r in rtc["modes"].items():
        lines.append(
            f"{mode:<10} {r['median'] * 1e3:>9.1f} {r['added_median'] * 1e3:>9.1f} {r['first_call_seconds']:>13.1f} "
            f"{r['overlap_rms']:>12.4f}"
        )
    lines.append(
        "added ms: median over the rounds of the mode's total less the unguided total of the same round; overlap rms:\n"
        "distance of the steps after the frozen ones, within the overlap, from the running chunk's plan (robot units)"
    )
    return lines + [""]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gr00t-npu-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--device", default="cpu", help=f"one of {', '.join(DEVICES)} (cuda/npu may add :index)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                        help="default: the device's (bfloat16 on npu/cuda, float32 on cpu)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds, each timing every path (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    parser.add_argument("--paths", default="plain,optimized", help="comma-separated subset of plain,optimized")
    parser.add_argument("--rtc-modes", default=",".join(RTC_MODES),
                        help=f"real-time chunking modes to time, comma-separated subset of {','.join(RTC_MODES)} "
                             "(default: all; empty: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    paths = [p for p in PATHS if p in args.paths.split(",")]
    if not paths or set(args.paths.split(",")) - set(PATHS):
        parser.error(f"--paths {args.paths!r}: give plain, optimized or both")
    args.rtc_modes = [mode for mode in args.rtc_modes.split(",") if mode]
    if set(args.rtc_modes) - set(RTC_MODES):
        parser.error(f"--rtc-modes {','.join(args.rtc_modes)!r}: give a subset of {','.join(RTC_MODES)}")
    if args.runs < 1 or args.warmup < 1:
        parser.error("--runs and --warmup must be at least 1 (the first call of the optimized path compiles)")
    try:
        backend = get_backend(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"gr00t-npu-bench: {error}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype) if args.dtype else backend.default_dtype
    report = run(args, paths, backend, dtype)
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
