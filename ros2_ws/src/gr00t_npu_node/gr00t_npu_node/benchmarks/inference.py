# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmark of one `get_action`, stage by stage, against the machine's roofline, for several paths in one run.

    gr00t-npu-bench --preset gr00t-n1.6-3b --device cpu --dtype bfloat16 --paths optimized,int8 --runs 10

Paths: `plain` (upstream's computation, eager), `optimized` (the captured path) and `int8` (the optimized path with
weight_dtype='int8'; `--weight-group-size` for group-wise scales). Each gets random weights of the preset's size
(`tiny.random_policy`, the same weights for every path) and warm-up calls (the first compiles where the backend
compiles; its time is reported). Then `--runs` rounds, each timing every path on the same observation and noise, in
alternating order, so that all see the machine in the same states (shared machines drift by several times within a
minute). Per stage (preprocess, vision, llm, action_head, decode, total): median, 90th percentile and best;
stages are synchronized with the device at their boundaries, totals come from separate unsynchronized calls.

The roofline: every round also measures the machine's two ceilings, its matrix throughput at each stage's GEMM
shapes (`probes.MatrixProbe`: those products on fresh layers in the model dtype, weights in cache) and its memory
bandwidth (`probes.BandwidthProbe`); each ceiling is the best of the rounds (other processes only lower it). A
stage's FLOP floor is its FLOPs (FlopCounterMode, attention included) at the matrix ceiling, its byte floor the
bytes its matrix products and attention calls must move (weights read once, as stored: int8 weights and their scales
on the int8 path; inputs read and outputs written once) at the bandwidth; its floor is the larger, and the time over
the floor says how far from the machine's limit the stage runs. A second table splits each stage of the last path:
its matrix products replayed alone, the same calls as they ran (fused epilogues included) plus its attention calls
replayed alone ("kernels"), and what remains (norms, residual adds, copies, Python). Peak memory: the device
allocator's peak on cuda/npu, on CPU the process's peak resident memory; each path's peak counts its own build,
warm-up and inference only.

Real-time chunking (`--rtc-modes`, all by default): on the last path, every round also times one `get_action` per
mode, continuing a running chunk planned RTC_EXECUTE_STEPS steps earlier from the same images with other noise, which
the robot has followed since (RTC_DELAY_STEPS of its remaining steps frozen). Reported per mode: its total, the
latency it adds (median over the rounds of its total less the unguided total of the same round), its first call
(the guided loop's compilation, where the backend compiles), and how far the chunk's guided overlap after the frozen
steps lies from the running chunk's plan (RMS, robot units), next to the unguided chunk's distance.
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
    STAGE_MODULES,
    STAGES,
    BandwidthProbe,
    MatrixProbe,
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
from gr00t_npu_node.model.quantization import INT8, Int8Weights
from gr00t_npu_node.policy import Gr00tPolicy
from gr00t_npu_node.tiny import random_policy

PATHS = ("plain", "optimized", INT8)
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
    gbytes: dict[str, float] = field(default_factory=dict)  # the fewest bytes each stage's products must move
    weights_gb: float = 0.0
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
    reached = {group: planned[group][:, RTC_EXECUTE_STEPS - 1:RTC_EXECUTE_STEPS] for group in policy.state_dims}
    following = {**observation, STATE: {g: reached.get(g, s) for g, s in observation[STATE].items()}}
    target = {
        group: np.concatenate([chunk[0, RTC_EXECUTE_STEPS:], np.repeat(chunk[0, -1:], RTC_EXECUTE_STEPS, axis=0)])
        for group, chunk in planned.items()
    }
    guidance = ChunkGuidance(
        target, frozen_steps=RTC_DELAY_STEPS, overlap_steps=policy.action_horizon - RTC_EXECUTE_STEPS
    )
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


def weight_gb(config: Gr00tConfig, dtype: torch.dtype, int8: Optional[Int8Weights]) -> float:
    """The model's weights as stored (int8 layers and their scales included), counted on a meta-device build (a
    prepared model may hold them in a device-specific layout that is no longer a parameter)."""
    with torch.device("meta"):
        model = Gr00tN1d6(config, Backend()).to(dtype)
        if int8 is not None:
            model.quantize(int8)
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9


def build_policy(args: argparse.Namespace, path: str, dtype: torch.dtype) -> Gr00tPolicy:
    return random_policy(
        args.preset, args.device, str(dtype).removeprefix("torch."), seed=args.seed, optimize=path != "plain",
        weight_dtype=INT8 if path == INT8 else None, weight_group_size=args.weight_group_size if path == INT8 else None,
    )


def run(args: argparse.Namespace, paths: list[str], backend: Backend, dtype: torch.dtype) -> dict:
    config = PRESETS[args.preset]
    noise = torch.randn(
        1, config.action_horizon, config.max_action_dim, generator=torch.Generator().manual_seed(args.seed)
    )
    load_before = os.getloadavg()[0]
    baseline_rss = status_bytes("VmRSS")
    policies: dict[str, Gr00tPolicy] = {}
    results: dict[str, PathResult] = {}
    calls = {}
    observation: dict = {}
    for path in paths:
        result = results[path] = PathResult(path)
        with MemoryPhase(backend, baseline_rss) as memory:
            start = time.perf_counter()
            policy = policies[path] = build_policy(args, path, dtype)
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
        calls[path] = record_calls(policy, observation, noise)
        result.gbytes = {stage: stage_calls.bytes / 1e9 for stage, stage_calls in calls[path].items()}
        result.weights_gb = weight_gb(config, dtype, policy.model.int8)
        result.seconds = {stage: [] for stage in STAGES}

    # The machine's ceilings at the model's shapes (the same for every path: each path's products have them).
    matrix_probes = {
        stage: MatrixProbe(backend, stage_calls.linear, dtype) for stage, stage_calls in calls[paths[0]].items()
    }
    bandwidth_probe = BandwidthProbe(backend, dtype)
    matrix: dict[str, list[float]] = {stage: [] for stage in STAGE_MODULES}
    bandwidth: list[float] = []
    kernels: dict[str, list[float]] = {stage: [] for stage in STAGE_MODULES}
    linear_alone: dict[str, list[float]] = {stage: [] for stage in STAGE_MODULES}
    last = calls[paths[-1]]
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

    for round_index in range(args.runs):
        for path in paths if round_index % 2 == 0 else paths[::-1]:
            policy, seconds = policies[path], results[path].seconds
            for stage, stage_s in stage_seconds(policy, observation, noise).items():
                seconds[stage].append(stage_s)
            start = time.perf_counter()
            policy.get_action(observation, noise=noise)
            seconds["total"].append(time.perf_counter() - start)
        bandwidth.append(bandwidth_probe.gbytes_per_second())
        for stage in STAGE_MODULES:
            matrix[stage].append(matrix_probes[stage].gflops())
            linear_alone[stage].append(replay_seconds(backend, [c.run for c in last[stage].linear]))
            kernels[stage].append(replay_seconds(backend, last[stage].kernels))
        for mode, result in rtc.items():
            start = time.perf_counter()
            rtc_policy.get_action(rtc_observation, noise=noise, guidance=guidance[mode])
            result.seconds.append(time.perf_counter() - start)
            result.added_seconds.append(result.seconds[-1] - results[paths[-1]].seconds["total"][-1])
    del bandwidth_probe, matrix_probes

    actions = {path: policies[path].get_action(observation, noise=noise) for path in paths}
    first = paths[0]
    deviation = {
        path: max(float(np.abs(actions[first][g] - actions[path][g]).max()) for g in actions[first])
        for path in paths[1:]
    }
    return {
        "preset": args.preset, "device": args.device, "backend": backend.name,
        "dtype": str(dtype).removeprefix("torch."),
        "weight_group_size": args.weight_group_size, "runs": args.runs, "warmup": args.warmup,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "max_action_deviation": deviation, "load_average": [load_before, os.getloadavg()[0]],
        # A ceiling is what the machine reaches when nothing competes for it: the best round, not the median.
        "matrix_gflops": {stage: max(v) for stage, v in matrix.items()},
        "matrix_gflops_per_round": matrix,
        "bandwidth_gbs": max(bandwidth),
        "bandwidth_gbs_per_round": bandwidth,
        "linear_seconds": {stage: statistics.median(v) for stage, v in linear_alone.items()},
        "kernel_seconds": {stage: statistics.median(v) for stage, v in kernels.items()},
        "kernels_path": paths[-1],
        "rtc": {
            "path": paths[-1], "execute_steps": RTC_EXECUTE_STEPS, "delay_steps": RTC_DELAY_STEPS,
            "unguided_overlap_rms": unguided_rms,
            "modes": {
                mode: asdict(r) | {
                    "median": statistics.median(r.seconds), "added_median": statistics.median(r.added_seconds)
                }
                for mode, r in rtc.items()
            },
        },
        "paths": {
            path: asdict(r) | {key: {s: getattr(r, key)(s) for s in STAGES} for key in ("median", "p90", "best")}
            for path, r in results.items()
        },
    }


# ---- report -----------------------------------------------------------------------------------------------
def floors(report: dict, path: str) -> dict[str, tuple[float, float, float]]:
    """Per model stage and in total: (FLOP floor, byte floor, floor) in seconds."""
    r = report["paths"][path]
    out = {}
    for stage, gflop in r["gflop"].items():
        flop_floor = gflop / report["matrix_gflops"][stage]
        byte_floor = r["gbytes"][stage] / report["bandwidth_gbs"]
        out[stage] = (flop_floor, byte_floor, max(flop_floor, byte_floor))
    out["total"] = tuple(sum(v[i] for v in out.values()) for i in range(3))
    return out


def table(report: dict) -> str:
    paths = report["paths"]
    first = next(iter(paths))
    lines = [
        f"gr00t-npu-bench: preset {report['preset']}, device {report['device']} ({report['backend']}), dtype "
        f"{report['dtype']}, {report['runs']} rounds after {report['warmup']} warm-up calls, torch {report['torch']}, "
        f"{report['threads']} CPU threads, {report['machine']}, 1-min load average {report['load_average'][0]:.1f} "
        f"before / {report['load_average'][1]:.1f} after (other processes competing for the cores inflate the p90)",
        f"ceilings (best of the rounds): memory {report['bandwidth_gbs']:.1f} GB/s; matrix at each stage's GEMM "
        "shapes " + ", ".join(f"{s} {v:.0f}" for s, v in report["matrix_gflops"].items()) + " GFLOP/s",
        "",
        f"{'stage':<12} {'path':<10} {'ms':>8} {'p90':>8} {'best':>8} {'GFLOP':>7} {'GB':>6} {'FLOP floor':>10} "
        f"{'byte floor':>10} {'floor':>8} {'x floor':>8} {'vs ' + first:>12}",
    ]
    path_floors = {path: floors(report, path) for path in paths}
    for stage in STAGES:
        for path, r in paths.items():
            times = "".join(f" {r[key][stage] * 1e3:>8.1f}" for key in ("median", "p90", "best"))
            row = f"{stage:<12} {path:<10}{times}"
            if stage in path_floors[path]:
                gflop = sum(r["gflop"].values()) if stage == "total" else r["gflop"][stage]
                gbytes = sum(r["gbytes"].values()) if stage == "total" else r["gbytes"][stage]
                flop_floor, byte_floor, floor = path_floors[path][stage]
                # The total's floor covers the model stages only (preprocess and decode have none).
                model_s = sum(r["median"][s] for s in STAGE_MODULES) if stage == "total" else r["median"][stage]
                row += (
                    f" {gflop:>7.1f} {gbytes:>6.2f} {flop_floor * 1e3:>10.1f} {byte_floor * 1e3:>10.1f} "
                    f"{floor * 1e3:>8.1f} {model_s / floor:>7.2f}x"
                )
            else:
                row += f" {'':>7} {'':>6} {'':>10} {'':>10} {'':>8} {'':>8}"
            row += f" {paths[first]['median'][stage] / r['median'][stage]:>11.2f}x"
            lines.append(row)
    lines += ["", *kernel_table(report), ""]
    for path, r in paths.items():
        memory = "process peak n/a"
        if r["peak_process_gb"] is not None:
            memory = f"process peak {r['peak_process_gb']:.2f} GB"
        if r["peak_device_gb"] is not None:
            memory += f", device peak {r['peak_device_gb']:.2f} GB"
        lines.append(
            f"{path}: weights {r['weights_gb']:.2f} GB, {memory}, LLM tokens {r['llm_tokens']}, build "
            f"{r['build_seconds']:.1f} s, first call {r['first_call_seconds']:.1f} s (compilation and kernel set-up "
            "included)"
        )
    lines += rtc_table(report["rtc"])
    for path, deviation in report["max_action_deviation"].items():
        lines.append(f"max |{path} - {first}| over the decoded actions (same weights and noise): {deviation:.3g}")
    lines.append(
        "ms: median, 90th percentile and best of the rounds; GB: the fewest bytes the stage's matrix products and\n"
        "attention move (weights as stored, read once); FLOP floor = GFLOP / matrix ceiling, byte floor = GB / memory\n"
        "ceiling, floor = the larger; x floor = median / floor (the total: the model stages' medians over the sum of\n"
        f"their floors); vs {first}: its median over this path's"
    )
    return "\n".join(lines)


def kernel_table(report: dict) -> list[str]:
    """Where each stage's time goes on the path whose calls are replayed."""
    path = report["kernels_path"]
    lines = [
        f"{path} path, where the time goes:",
        f"{'stage':<12} {'ms':>8} {'products alone':>15} {'kernels alone':>14} {'outside':>8}",
    ]
    for stage, kernel_s in report["kernel_seconds"].items():
        stage_s = report["paths"][path]["median"][stage]
        lines.append(
            f"{stage:<12} {stage_s * 1e3:>8.1f} {report['linear_seconds'][stage] * 1e3:>15.1f} "
            f"{kernel_s * 1e3:>14.1f} {(stage_s - kernel_s) * 1e3:>8.1f}"
        )
    lines.append(
        "products alone: the stage's matrix products replayed (eager kernels); kernels alone: the same calls as they\n"
        "ran (fused GELU epilogues included) and the stage's attention calls, replayed; outside: the rest of the\n"
        "stage's median (norms, residual adds, copies, Python; negative where the captured stage beats its eager calls)"
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
                        help="default: the device's (bfloat16 on npu/cuda, float32 on cpu); the int8 path needs "
                             "bfloat16/float16")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds, each timing every path (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    parser.add_argument("--paths", default="plain,optimized",
                        help=f"comma-separated subset of {','.join(PATHS)}, timed in that order; the first is the "
                             "baseline (int8: the optimized path with weight_dtype='int8')")
    parser.add_argument("--weight-group-size", type=int, default=None,
                        help="the int8 path's scales per group of this many input channels (default: per channel)")
    parser.add_argument("--rtc-modes", default=",".join(RTC_MODES),
                        help=f"real-time chunking modes to time, comma-separated subset of {','.join(RTC_MODES)} "
                             "(default: all; empty: none)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    paths = args.paths.split(",")
    if not paths or set(paths) - set(PATHS) or len(set(paths)) != len(paths):
        parser.error(f"--paths {args.paths!r}: give distinct names out of {', '.join(PATHS)}")
    args.rtc_modes = [mode for mode in args.rtc_modes.split(",") if mode]
    if set(args.rtc_modes) - set(RTC_MODES):
        parser.error(f"--rtc-modes {','.join(args.rtc_modes)!r}: give a subset of {','.join(RTC_MODES)}")
    if args.runs < 1 or args.warmup < 1:
        parser.error("--runs and --warmup must be at least 1 (the first call of the optimized path compiles)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        backend = get_backend(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"gr00t-npu-bench: {error}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype) if args.dtype else backend.default_dtype
    if INT8 in paths and dtype not in (torch.bfloat16, torch.float16):
        parser.error("the int8 path computes with bfloat16 or float16 activations: pass --dtype bfloat16")
    report = run(args, paths, backend, dtype)
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
