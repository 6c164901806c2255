"""Benchmark of one `get_action`: the plain eager path against the optimized path, stage by stage, in one run.

    gr00t-npu-bench --preset gr00t-n1.6-3b --device cpu --dtype bfloat16 --runs 5 --json bench.json

For each path: random weights of the preset's size (`Gr00tPolicy.build_random`), warm-up calls (the first one
compiles on the optimized path), then `--runs` timed calls on the same observation and noise. Per stage (preprocess,
vision, llm, action_head, decode, total) the median and 90th percentile; stages are synchronized with the device
(`profile_stages`), totals come from separate unsynchronized calls. Next to the times: the FLOPs each stage executes
(counted from the config and the sequence lengths actually used), the achieved GFLOP/s, and the device's throughput
on that stage's own weight matrix products run back to back with nothing else (same shapes, same number of distinct
weights, the kernels of the optimized path), measured right after each path, so both see the machine in one state. Peak memory: the
device allocator's peak on cuda/npu; on CPU the process's peak resident memory while the path was loaded.

The paths run one after the other, each alone in memory, so that each one's peak memory is its own.
"""
from __future__ import annotations

import argparse
import gc
import json
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
MATRIX_STAGES = ("vision", "llm", "action_head")
PATHS = ("plain", "optimized")
INSTRUCTION = "pick the pear from the counter and place it in the plate"


# ---- FLOPs ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gemm:
    """`count` distinct matrix products [m, k] x [k, n], each evaluated `passes` times per inference (the denoising
    steps reuse the DiT's weights); `weight` when [k, n] is a weight matrix."""

    m: int
    k: int
    n: int
    count: int = 1
    passes: int = 1
    weight: bool = True

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count * self.passes


@dataclass(frozen=True)
class Shapes:
    """Sequence lengths of one inference, read off the model's inputs."""

    images: int
    patches: int  # per image
    llm_tokens: int
    horizon: int


def stage_gemms(config: Gr00tConfig, shapes: Shapes, hoisted: bool) -> dict[str, list[Gemm]]:
    """Every matrix product of one inference per stage (batch 1). Attention is counted as dense products (the causal
    LLM included). `hoisted`: the VL keys/values and AdaLN terms once per inference instead of once per step."""
    vision, text = config.backbone.vision, config.backbone.text
    n, p, h = shapes.images, shapes.patches, vision.hidden_size
    unshuffle = config.backbone.unshuffle_factor
    image_tokens = p // unshuffle**2
    vis = [
        Gemm(n * p, vision.num_channels * vision.patch_size**2, h),
        Gemm(n * p, h, h, 4 * vision.num_hidden_layers),
        Gemm(n * p, h, vision.intermediate_size, vision.num_hidden_layers),
        Gemm(n * p, vision.intermediate_size, h, vision.num_hidden_layers),
        Gemm(p, vision.head_dim, p, 2 * n * vision.num_attention_heads * vision.num_hidden_layers, weight=False),
        Gemm(n * image_tokens, h * unshuffle**2, text.hidden_size),
        Gemm(n * image_tokens, text.hidden_size, text.hidden_size),
    ]
    t, d, layers = shapes.llm_tokens, text.hidden_size, config.select_layer
    q_width, kv_width = text.num_attention_heads * text.head_dim, text.num_key_value_heads * text.head_dim
    llm = [
        Gemm(t, d, q_width, layers),
        Gemm(t, d, kv_width, 2 * layers),
        Gemm(t, q_width, d, layers),
        Gemm(t, d, text.intermediate_size, 2 * layers),
        Gemm(t, text.intermediate_size, d, layers),
        Gemm(t, text.head_dim, t, 2 * text.num_attention_heads * layers, weight=False),
    ]
    steps, inner, e = config.num_inference_timesteps, config.dit_inner_dim, config.input_embedding_dim
    tokens, horizon = 1 + shapes.horizon, shapes.horizon
    blocks = config.dit_num_layers
    cross = (blocks + 1) // 2
    heads, head_dim = config.dit_num_attention_heads, config.dit_attention_head_dim
    once_or_every_step = 1 if hoisted else steps
    head = [
        Gemm(1, config.max_state_dim, config.hidden_size),
        Gemm(1, config.hidden_size, e),
        Gemm(t, config.backbone_embedding_dim, inner, 2 * cross, passes=once_or_every_step),
        Gemm(1, 256, inner, passes=once_or_every_step),
        Gemm(1, inner, inner, passes=once_or_every_step),
        Gemm(1, inner, 2 * inner, blocks + 1, passes=once_or_every_step),
        Gemm(horizon, config.max_action_dim, e, passes=steps),
        Gemm(horizon, 2 * e, e, passes=steps),
        Gemm(horizon, e, e, passes=steps),
        Gemm(tokens, inner, inner, 2 * blocks + 2 * (blocks - cross), passes=steps),
        Gemm(tokens, inner, 4 * inner, blocks, passes=steps),
        Gemm(tokens, 4 * inner, inner, blocks, passes=steps),
        Gemm(tokens, head_dim, tokens, 2 * heads * (blocks - cross), passes=steps, weight=False),
        Gemm(tokens, head_dim, t, 2 * heads * cross, passes=steps, weight=False),
        Gemm(tokens, inner, config.dit_output_dim, passes=steps),
        Gemm(tokens, config.hidden_size, config.hidden_size, passes=steps),
        Gemm(tokens, config.hidden_size, config.max_action_dim, passes=steps),
    ]
    return {"vision": vis, "llm": llm, "action_head": head}


def gflop(gemms: list[Gemm]) -> float:
    return sum(g.flops for g in gemms) / 1e9


# ---- matrix throughput ------------------------------------------------------------------------------------
def matrix_throughput(backend: Backend, dtype: torch.dtype, gemms: list[Gemm], repeats: int = 3) -> float:
    """GFLOP/s of a stage's weight products alone: one layer per distinct weight of the stage (so memory traffic
    matches the model's), prepared by the backend like the model's (packed on CPU), run back to back. The fastest of
    `repeats` passes (the first one also warms the kernels up)."""
    device = backend.device()
    holder = nn.Module()
    holder.layers = nn.ModuleList()
    inputs: list[torch.Tensor] = []
    by_shape: dict[tuple[int, int], torch.Tensor] = {}
    with torch.no_grad():
        for g in gemms:
            if not g.weight:
                continue
            x = by_shape.setdefault((g.m, g.k), torch.randn(g.m, g.k, device=device, dtype=dtype))
            for _ in range(g.count):
                layer = nn.Linear(g.k, g.n, bias=False, device=device, dtype=dtype)
                layer.weight.normal_(0.0, 0.02)
                holder.layers.append(layer)
                inputs.append(x)
        backend.prepare(holder)
    work = sum(2 * g.m * g.k * g.n * g.count for g in gemms if g.weight)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            backend.synchronize()
            start = time.perf_counter()
            for layer, x in zip(holder.layers, inputs):
                layer(x)
            backend.synchronize()
            best = min(best, time.perf_counter() - start)
    return work / best / 1e9


# ---- memory -----------------------------------------------------------------------------------------------
class PeakMemory:
    """Peak memory of one phase: the device allocator's peak where the backend tracks one, else the process's peak
    resident set (Linux VmHWM, restarted through /proc/self/clear_refs)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def reset(self) -> None:
        self.backend.reset_peak_memory()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    def device_peak_gb(self) -> Optional[float]:
        peak = self.backend.max_memory_allocated()
        return None if peak is None else peak / 1e9

    @staticmethod
    def process_peak_gb() -> Optional[float]:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9
        except OSError:
            pass
        return None


# ---- one path ---------------------------------------------------------------------------------------------
@dataclass
class PathResult:
    path: str
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> {median, p90} seconds
    gflop: dict[str, float] = field(default_factory=dict)
    matrix_gflops: dict[str, float] = field(default_factory=dict)
    compile_seconds: float = 0.0
    build_seconds: float = 0.0
    peak_process_gb: Optional[float] = None
    peak_device_gb: Optional[float] = None
    weights_gb: float = 0.0
    llm_tokens: int = 0


def weight_bytes(config: Gr00tConfig, dtype: torch.dtype) -> int:
    """Bytes of the model's weights in `dtype` (counted on a meta-device build: the loaded model may hold them in a
    device-specific layout that is no longer a parameter)."""
    with torch.device("meta"):
        model = Gr00tN1d6(config, Backend())
    return sum(p.numel() for p in model.parameters()) * torch.empty(0, dtype=dtype).element_size()


def observation_for(policy: Gr00tPolicy, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    observation = policy.example_observation()
    observation["video"] = {k: rng.integers(0, 256, v.shape, dtype=np.uint8) for k, v in observation["video"].items()}
    observation["state"] = {g: rng.uniform(-0.2, 0.2, v.shape).astype(np.float32) for g, v in observation["state"].items()}
    observation["language"] = {"task": [[INSTRUCTION]]}
    return observation


def record_shapes(policy: Gr00tPolicy) -> Callable[[], Shapes]:
    """Hooks that read the sequence lengths the model actually runs with (the optimized path pads the text)."""
    seen: dict[str, tuple[int, ...]] = {}
    eagle = policy.model.backbone.model
    eagle.vision_model.register_forward_pre_hook(lambda _m, args: seen.__setitem__("pixels", tuple(args[0].shape)))
    eagle.language_model.register_forward_pre_hook(lambda _m, args: seen.__setitem__("embeds", tuple(args[0].shape)))
    patch = eagle.vision_model.vision_model.embeddings.patch_size

    def shapes() -> Shapes:
        n, _, height, width = seen["pixels"]
        return Shapes(n, (height // patch) * (width // patch), seen["embeds"][1], policy.model.config.action_horizon)

    return shapes


def run_path(args: argparse.Namespace, path: str, backend: Backend, dtype: torch.dtype, noise: torch.Tensor) -> tuple[PathResult, dict]:
    memory = PeakMemory(backend)
    result = PathResult(path)
    optimize = path == "optimized"
    memory.reset()
    start = time.perf_counter()
    policy = Gr00tPolicy.build_random(args.preset, args.device, str(dtype).removeprefix("torch."), seed=args.seed, optimize=optimize)
    result.build_seconds = time.perf_counter() - start
    result.weights_gb = weight_bytes(policy.model.config, dtype) / 1e9
    shapes = record_shapes(policy)
    observation = observation_for(policy, args.seed)
    for _ in range(args.warmup):
        actions = policy.get_action(observation, noise=noise)
    result.compile_seconds = policy.compile_seconds
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    for profile in (True, False):
        policy.profile_stages = profile
        for _ in range(args.runs):
            actions = policy.get_action(observation, noise=noise)
            for stage, seconds in policy.last_timing.items():
                if profile != (stage == "total"):
                    samples[stage].append(seconds)
    result.stages = {s: {"median": statistics.median(v), "p90": float(np.percentile(v, 90))} for s, v in samples.items() if v}
    result.peak_process_gb = memory.process_peak_gb()
    result.peak_device_gb = memory.device_peak_gb()
    measured = shapes()
    result.llm_tokens = measured.llm_tokens
    gemms = stage_gemms(policy.model.config, measured, hoisted=optimize)
    result.gflop = {stage: gflop(g) for stage, g in gemms.items()}
    del policy, shapes  # the hooks' closure holds the policy: both go before the probe allocates its weights
    gc.collect()
    result.matrix_gflops = {stage: matrix_throughput(backend, dtype, g) for stage, g in gemms.items()}
    gc.collect()
    return result, actions


# ---- report -----------------------------------------------------------------------------------------------
def table(results: dict[str, PathResult], deviation: Optional[float], header: str) -> str:
    plain, opt = results.get("plain"), results.get("optimized")
    lines = [header, ""]
    columns = f"{'stage':<12}"
    for r in results.values():
        columns += f" {r.path + ' ms':>14} {'p90':>7} {'GFLOP':>7} {'GFLOP/s':>8} {'matrix':>7} {'eff':>5}"
    if plain and opt:
        columns += f" {'speedup':>8}"
    lines.append(columns)
    for stage in STAGES:
        row = f"{stage:<12}"
        for r in results.values():
            t = r.stages[stage]
            work = r.gflop.get(stage) if stage != "total" else sum(r.gflop.values())
            rate = work / t["median"] if work else None
            matrix = r.matrix_gflops.get(stage)
            row += f" {t['median'] * 1e3:>14.1f} {t['p90'] * 1e3:>7.1f}"
            row += f" {work:>7.1f}" if work else f" {'':>7}"
            row += f" {rate:>8.0f}" if rate else f" {'':>8}"
            row += f" {matrix:>7.0f} {rate / matrix:>5.0%}" if matrix and rate else f" {'':>7} {'':>5}"
        if plain and opt:
            row += f" {plain.stages[stage]['median'] / opt.stages[stage]['median']:>7.2f}x"
        lines.append(row)
    lines.append("")
    for r in results.values():
        memory = f"process peak {r.peak_process_gb:.2f} GB" if r.peak_process_gb is not None else "process peak n/a"
        if r.peak_device_gb is not None:
            memory += f", device peak {r.peak_device_gb:.2f} GB"
        lines.append(
            f"{r.path}: weights {r.weights_gb:.2f} GB, {memory}, LLM tokens {r.llm_tokens}, "
            f"build {r.build_seconds:.1f} s, compile {r.compile_seconds:.1f} s"
        )
    if deviation is not None:
        lines.append(f"max |optimized - plain| over the decoded actions (same noise): {deviation:.3g}")
    lines.append("matrix = the stage's weight GEMMs alone, same shapes and kernels (GFLOP/s); eff = GFLOP/s / matrix")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gr00t-npu-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--device", default="cpu", help=f"one of {', '.join(DEVICES)} (cuda/npu may add :index)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                        help="default: the device's (bfloat16 on npu/cuda, float32 on cpu)")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per path (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per path first (default 2)")
    parser.add_argument("--paths", default="plain,optimized", help="comma-separated subset of plain,optimized")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.split(",") if p]
    if not paths or any(p not in PATHS for p in paths):
        parser.error(f"--paths {args.paths!r}: give plain, optimized or both")
    if args.runs < 1 or args.warmup < 1:
        parser.error("--runs and --warmup must be at least 1 (the first call of the optimized path compiles)")
    try:
        backend = get_backend(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"gr00t-npu-bench: {error}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype) if args.dtype else backend.default_dtype
    config = PRESETS[args.preset]
    noise = torch.randn(1, config.action_horizon, config.max_action_dim, generator=torch.Generator().manual_seed(args.seed))

    results: dict[str, PathResult] = {}
    actions: dict[str, dict] = {}
    for path in paths:
        results[path], actions[path] = run_path(args, path, backend, dtype, noise)
    deviation = None
    if len(actions) == 2:
        deviation = max(float(np.abs(actions["plain"][g] - actions["optimized"][g]).max()) for g in actions["plain"])
    header = (
        f"gr00t-npu-bench: preset {args.preset}, device {args.device} ({backend.name}), dtype "
        f"{str(dtype).removeprefix('torch.')}, {args.runs} runs after {args.warmup} warm-up, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {platform.processor() or platform.machine()}"
    )
    print(table(results, deviation, header))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "preset": args.preset, "device": args.device, "dtype": str(dtype).removeprefix("torch."),
            "runs": args.runs, "warmup": args.warmup, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "max_action_deviation": deviation, "paths": {p: asdict(r) for p, r in results.items()},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
