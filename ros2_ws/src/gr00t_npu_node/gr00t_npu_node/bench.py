"""Benchmark of one `get_action`: the plain eager path against the optimized path, stage by stage, in one run.

    gr00t-npu-bench --preset gr00t-n1.6-3b --device cpu --dtype bfloat16 --runs 10 --json bench.json

Both paths get random weights of the preset's size (`Gr00tPolicy.build_random`) and warm-up calls (the first one
compiles on the optimized path). Then `--runs` rounds, each timing both paths on the same observation and noise,
in alternating order, so that both see the machine in the same states (shared machines drift by several times
within a minute). Per stage (preprocess, vision, llm, action_head, decode, total): median and 90th percentile;
stages are synchronized with the device (`profile_stages`), totals come from separate unsynchronized calls.

Next to the times: the FLOPs each stage executes (counted from the config and the sequence lengths the model ran
with), the achieved GFLOP/s, and the device's matrix throughput on that stage: every linear-layer call of one
optimized inference of the stage replayed back to back with nothing else (same layers, weights, shapes and
kernels), once per round. A second table splits each optimized stage: its linear layers replayed alone, the same
calls as they ran (fused GELU epilogues included) plus its attention calls replayed alone ("kernels"), and what
remains (norms, residual adds, copies, Python). Peak memory: the device allocator's peak on cuda/npu, on CPU the
process's peak resident memory; each path's peak counts its own build, warm-up and inference only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn

from gr00t_npu_node.backends import DEVICES, Backend, get_backend
from gr00t_npu_node.model.config import PRESETS, Gr00tConfig
from gr00t_npu_node.model.gr00t import Gr00tN1d6
from gr00t_npu_node.policy import Gr00tPolicy

STAGES = ("preprocess", "vision", "llm", "action_head", "decode", "total")
# Module-name prefixes of the model stages the policy times.
STAGE_MODULES = {
    "vision": ("backbone.model.vision_model.", "backbone.model.mlp1."),
    "llm": ("backbone.model.language_model.",),
    "action_head": ("action_head.",),
}
PATHS = ("plain", "optimized")
INSTRUCTION = "pick the pear from the counter and place it in the plate"


# ---- FLOPs ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shapes:
    """Sequence lengths of one inference, read off the model's inputs."""

    images: int
    patches: int  # per image
    llm_tokens: int
    vl_tokens: int  # what the action head attends to: the LLM's tokens, padded to a text bucket when optimized
    horizon: int


def stage_gflop(config: Gr00tConfig, shapes: Shapes, hoisted: bool) -> dict[str, float]:
    """GFLOP (2 per multiply-add) of one inference's matrix products per stage, batch 1: linear layers and attention,
    the causal LLM attention counted dense. `hoisted`: the VL keys/values and AdaLN terms once per inference instead
    of once per denoising step."""
    vision, text = config.backbone.vision, config.backbone.text
    n, p, h = shapes.images, shapes.patches, vision.hidden_size
    unshuffle = config.backbone.unshuffle_factor
    tokens_out = n * p // unshuffle**2
    vis = n * p * (vision.num_channels * vision.patch_size**2 * h)
    vis += vision.num_hidden_layers * (n * p * (4 * h * h + 2 * h * vision.intermediate_size) + 2 * n * p * p * h)
    vis += tokens_out * (h * unshuffle**2 * text.hidden_size + text.hidden_size**2)

    t, d = shapes.llm_tokens, text.hidden_size
    q_width, kv_width = text.num_attention_heads * text.head_dim, text.num_key_value_heads * text.head_dim
    llm = config.select_layer * (t * (2 * d * q_width + 2 * d * kv_width + 3 * d * text.intermediate_size) + 2 * t * t * q_width)

    vl = shapes.vl_tokens
    steps, inner, e = config.num_inference_timesteps, config.dit_inner_dim, config.input_embedding_dim
    s, horizon, blocks = 1 + shapes.horizon, shapes.horizon, config.dit_num_layers
    cross = (blocks + 1) // 2
    once_or_every_step = 1 if hoisted else steps
    head = config.max_state_dim * config.hidden_size + config.hidden_size * e
    head += once_or_every_step * (
        cross * 2 * vl * config.backbone_embedding_dim * inner  # VL keys and values
        + 256 * inner + inner * inner + (blocks + 1) * inner * 2 * inner  # timestep embedding, AdaLN terms
    )
    per_step = horizon * (config.max_action_dim * e + 2 * e * e + e * e)  # action encoder
    per_step += s * inner * inner * (2 * blocks + 2 * (blocks - cross))  # q, out; self-attention k, v
    per_step += s * 8 * inner * inner * blocks  # feed-forward
    per_step += 2 * s * inner * (s * (blocks - cross) + vl * cross)  # attention scores and values
    per_step += s * (inner * config.dit_output_dim + config.hidden_size**2 + config.hidden_size * config.max_action_dim)
    head += steps * per_step
    return {stage: 2 * flops / 1e9 for stage, flops in (("vision", vis), ("llm", llm), ("action_head", head))}


# ---- matrix throughput ------------------------------------------------------------------------------------
@dataclass
class LinearCall:
    layer: nn.Module
    input: torch.Tensor

    @property
    def flops(self) -> int:
        return 2 * self.input.numel() // self.input.shape[-1] * self.layer.in_features * self.layer.out_features

    def run(self) -> torch.Tensor:
        return self.layer(self.input)


@dataclass
class StageCalls:
    """The calls of one stage of one inference, in order: its linear layers, and every kernel call as it ran
    (linear layers with their fused epilogues, attention)."""

    linear: list[LinearCall] = field(default_factory=list)
    kernels: list[Callable[[], torch.Tensor]] = field(default_factory=list)


def record_calls(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> dict[str, StageCalls]:
    """Every linear-layer and attention call of one inference, in order, per stage. Linear layers get a random input
    of the shape they had (one input per shape: the replay's memory traffic is the weights', as in the model);
    attention keeps its real inputs (layout and strides matter to its kernel). An attention call belongs to the
    stage of the projections before it."""
    calls: dict[str, StageCalls] = {stage: StageCalls() for stage in STAGE_MODULES}
    current_stage = next(iter(STAGE_MODULES))
    inputs: dict[tuple, torch.Tensor] = {}
    handles = []
    stage_of: dict[int, str] = {}
    inside_fused = False
    for name, module in policy.model.named_modules():
        stage = next((s for s, prefixes in STAGE_MODULES.items() if name.startswith(prefixes)), None)
        if stage is not None:
            stage_of[id(module)] = stage
        if stage is None or not hasattr(module, "in_features") or not hasattr(module, "out_features"):
            continue

        def hook(layer: nn.Module, args: tuple, stage: str = stage) -> None:
            nonlocal current_stage
            if inside_fused:
                return
            x = args[0]
            key = (tuple(x.shape), x.dtype, x.device)
            if key not in inputs:
                inputs[key] = torch.randn(x.shape, dtype=x.dtype, device=x.device)
            call = LinearCall(layer, inputs[key])
            calls[stage].linear.append(call)
            calls[stage].kernels.append(call.run)
            current_stage = stage

        handles.append(module.register_forward_pre_hook(hook))
    # A backend may run linear + GELU as one fused call that bypasses the layer's hooks: record those too.
    backend = policy.backend
    fused, attention = backend.linear_gelu, backend.attention

    def linear_gelu(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        nonlocal inside_fused, current_stage
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in inputs:
            inputs[key] = torch.randn(x.shape, dtype=x.dtype, device=x.device)
        stage, x_random = stage_of[id(layer)], inputs[key]
        calls[stage].linear.append(LinearCall(layer, x_random))
        calls[stage].kernels.append(lambda: fused(layer, x_random))
        current_stage = stage
        inside_fused = True
        try:
            return fused(layer, x)
        finally:
            inside_fused = False

    def recorded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **options) -> torch.Tensor:
        calls[current_stage].kernels.append(lambda: attention(q, k, v, **options))
        return attention(q, k, v, **options)

    backend.linear_gelu, backend.attention = linear_gelu, recorded_attention
    try:
        with policy.uncompiled():
            policy.get_action(observation, noise=noise)
    finally:
        del backend.linear_gelu, backend.attention
        for handle in handles:
            handle.remove()
    return calls


@torch.inference_mode()
def replay_seconds(backend: Backend, calls: list[Callable[[], torch.Tensor]]) -> float:
    """Seconds the calls take run back to back."""
    backend.synchronize()
    start = time.perf_counter()
    for call in calls:
        call()
    backend.synchronize()
    return time.perf_counter() - start


# ---- memory -----------------------------------------------------------------------------------------------
class MemoryPhase:
    """Peak memory of what a phase adds to what was there before it (the other path stays loaded and idle): the
    device allocator's where the backend tracks one, and the process's resident set (Linux VmHWM, restarted through
    /proc/self/clear_refs)."""

    def __init__(self, backend: Backend, baseline_rss: Optional[int]):
        self.backend, self.baseline_rss = backend, baseline_rss

    def __enter__(self) -> "MemoryPhase":
        self.backend.reset_peak_memory()
        self.device_start = self.backend.memory_allocated()
        self.rss_start = _status_bytes("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.rss_start = None  # the peak cannot be restarted: no per-phase figure
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _status_bytes("VmHWM")
        self.process_peak = None
        if peak is not None and self.rss_start is not None and self.baseline_rss is not None:
            self.process_peak = self.baseline_rss + peak - self.rss_start
        device_peak = self.backend.max_memory_allocated()
        self.device_peak = None if device_peak is None else device_peak - (self.device_start or 0)


def _status_bytes(field_name: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---- the run ----------------------------------------------------------------------------------------------
@dataclass
class PathResult:
    path: str
    seconds: dict[str, list[float]] = field(default_factory=dict)  # stage -> one value per round
    gflop: dict[str, float] = field(default_factory=dict)
    build_seconds: float = 0.0
    compile_seconds: float = 0.0
    peak_process_gb: Optional[float] = None
    peak_device_gb: Optional[float] = None
    llm_tokens: int = 0

    def median(self, stage: str) -> float:
        return statistics.median(self.seconds[stage])

    def p90(self, stage: str) -> float:
        return float(np.percentile(self.seconds[stage], 90))

    def best(self, stage: str) -> float:
        return min(self.seconds[stage])


def observation_for(policy: Gr00tPolicy, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    observation = policy.example_observation()
    observation["video"] = {k: rng.integers(0, 256, v.shape, dtype=np.uint8) for k, v in observation["video"].items()}
    observation["state"] = {g: rng.uniform(-0.2, 0.2, v.shape).astype(np.float32) for g, v in observation["state"].items()}
    observation["language"] = {"task": [[INSTRUCTION]]}
    return observation


def measured_shapes(policy: Gr00tPolicy, observation: dict, noise: torch.Tensor) -> Shapes:
    """The pixel and LLM input shapes of one call (the optimized path pads the text to a bucket)."""
    seen: dict[str, tuple[int, ...]] = {}
    eagle = policy.model.backbone.model
    handles = [
        eagle.vision_model.register_forward_pre_hook(lambda _m, args: seen.__setitem__("pixels", tuple(args[0].shape))),
        eagle.language_model.register_forward_pre_hook(lambda _m, args: seen.__setitem__("embeds", tuple(args[0].shape))),
        policy.model.action_head.vlln.register_forward_pre_hook(lambda _m, args: seen.__setitem__("vl", tuple(args[0].shape))),
    ]
    try:
        policy.get_action(observation, noise=noise)
    finally:
        for handle in handles:
            handle.remove()
    n, _, height, width = seen["pixels"]
    patch = eagle.vision_model.vision_model.embeddings.patch_size
    patches = (height // patch) * (width // patch)
    return Shapes(n, patches, seen["embeds"][1], seen["vl"][1], policy.model.config.action_horizon)


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
    baseline_rss = _status_bytes("VmRSS")
    policies: dict[str, Gr00tPolicy] = {}
    results: dict[str, PathResult] = {}
    observation: dict = {}
    for path in paths:
        result = results[path] = PathResult(path)
        with MemoryPhase(backend, baseline_rss) as memory:
            start = time.perf_counter()
            policy = policies[path] = Gr00tPolicy.build_random(
                args.preset, args.device, str(dtype).removeprefix("torch."), seed=args.seed, optimize=path == "optimized"
            )
            result.build_seconds = time.perf_counter() - start
            observation = observation or observation_for(policy, args.seed)
            for _ in range(args.warmup):
                policy.get_action(observation, noise=noise)
        result.compile_seconds = policy.compile_seconds
        result.peak_process_gb = None if memory.process_peak is None else memory.process_peak / 1e9
        result.peak_device_gb = None if memory.device_peak is None else memory.device_peak / 1e9
        shapes = measured_shapes(policy, observation, noise)
        result.llm_tokens = shapes.llm_tokens
        result.gflop = stage_gflop(config, shapes, hoisted=path == "optimized")
        result.seconds = {stage: [] for stage in STAGES}

    calls = record_calls(policies[paths[-1]], observation, noise)
    matrix: dict[str, list[float]] = {stage: [] for stage in calls}
    kernels: dict[str, list[float]] = {stage: [] for stage in calls}
    linear_flops = {stage: sum(c.flops for c in stage_calls.linear) for stage, stage_calls in calls.items()}
    linear_runs = {stage: [c.run for c in stage_calls.linear] for stage, stage_calls in calls.items()}
    for round_index in range(args.runs):
        for path in paths if round_index % 2 == 0 else paths[::-1]:
            policy = policies[path]
            for profile in (True, False):
                policy.profile_stages = profile
                policy.get_action(observation, noise=noise)
                for stage, seconds in policy.last_timing.items():
                    if profile != (stage == "total"):
                        results[path].seconds[stage].append(seconds)
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
            f"compile {r['compile_seconds']:.1f} s"
        )
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


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gr00t-npu-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--device", default="cpu", help=f"one of {', '.join(DEVICES)} (cuda/npu may add :index)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                        help="default: the device's (bfloat16 on npu/cuda, float32 on cpu)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds, each timing every path (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    parser.add_argument("--paths", default="plain,optimized", help="comma-separated subset of plain,optimized")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    paths = [p for p in PATHS if p in args.paths.split(",")]
    if not paths or set(args.paths.split(",")) - set(PATHS):
        parser.error(f"--paths {args.paths!r}: give plain, optimized or both")
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
