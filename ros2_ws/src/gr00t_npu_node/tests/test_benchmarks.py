# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The inference benchmark on the tiny preset: its CLI and JSON (real-time chunking's modes included), and its FLOP
count (FlopCounterMode, with the CPU kernels it lacks formulas for) against the layer calls the model really makes."""
import json
import statistics

import pytest
import torch

from gr00t_npu_node.benchmarks import inference, probes
from gr00t_npu_node.guidance import RTC_MODES
from gr00t_npu_node.tiny import random_policy


@pytest.fixture(scope="module")
def policy():
    return random_policy("tiny", "cpu", "float32", optimize=True)


def test_cli_times_every_path_against_the_roofline_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--preset", "tiny", "--device", "cpu", "--dtype", "bfloat16", "--paths", "plain,optimized,int8",
            "--runs", "3", "--warmup", "1", "--json", str(out)]
    assert inference.main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report["paths"]) == ["plain", "optimized", "int8"]
    assert report["dtype"] == "bfloat16" and report["runs"] == 3
    for path in report["paths"].values():
        assert {stage: len(values) for stage, values in path["seconds"].items()} == {s: 3 for s in probes.STAGES}
        assert set(path["median"]) == set(probes.STAGES) and set(path["gbytes"]) == set(probes.STAGE_MODULES)
    paths = report["paths"]
    # The optimized path pads the text to its bucket (64 tokens after the 81 image tokens); plain does not.
    assert paths["plain"]["llm_tokens"] == 126 and paths["optimized"]["llm_tokens"] == 81 + 64
    assert paths["plain"]["gflop"]["vision"] == paths["optimized"]["gflop"]["vision"]
    assert paths["plain"]["gflop"]["action_head"] > paths["optimized"]["gflop"]["action_head"]  # VL keys/values once
    # int8 weights: the same products, fewer bytes where the layers are quantized (the LLM and the DiT).
    assert paths["int8"]["gflop"] == pytest.approx(paths["optimized"]["gflop"])
    assert paths["int8"]["gbytes"]["vision"] == paths["optimized"]["gbytes"]["vision"]
    for stage in ("llm", "action_head"):
        assert paths["int8"]["gbytes"][stage] < paths["optimized"]["gbytes"][stage]
    assert paths["int8"]["weights_gb"] < paths["optimized"]["weights_gb"]
    assert set(report["matrix_gflops"]) == set(report["kernel_seconds"]) == set(probes.STAGE_MODULES)
    assert all(len(rates) == 3 and min(rates) > 0 for rates in report["matrix_gflops_per_round"].values())
    assert len(report["bandwidth_gbs_per_round"]) == 3 and report["bandwidth_gbs"] > 0
    floors = inference.floors(report, "int8")
    assert all(floor == max(flop, byte) > 0 for flop, byte, floor in floors.values())
    assert report["max_action_deviation"]["optimized"] <= 0.05 and report["max_action_deviation"]["int8"] <= 0.2
    printed = capsys.readouterr().out
    for heading in ("byte floor", "x floor", "vs plain", "where the time goes"):
        assert heading in printed, heading
    rtc = report["rtc"]
    assert rtc["path"] == "int8" and list(rtc["modes"]) == list(RTC_MODES)
    for mode in rtc["modes"].values():
        assert len(mode["seconds"]) == len(mode["added_seconds"]) == 3 and mode["first_call_seconds"] > 0
        assert mode["added_median"] == pytest.approx(statistics.median(mode["added_seconds"]))
    # The paper's guidance brings the overlap toward the running chunk's plan; prefix replacement only freezes.
    assert rtc["modes"]["guided"]["overlap_rms"] < rtc["unguided_overlap_rms"]
    assert "real-time chunking on the int8 path" in printed and "added ms" in printed


def test_cli_refuses_unknown_paths_int8_in_float32_and_unavailable_devices(capsys):
    with pytest.raises(SystemExit):
        inference.main(["--paths", "fast"])
    with pytest.raises(SystemExit):
        inference.main(["--paths", "optimized,int8", "--dtype", "float32"])
    assert "int8 path computes with bfloat16 or float16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        inference.main(["--rtc-modes", "guided,soft"])
    assert "--rtc-modes 'guided,soft': give a subset of guided,identity,prefix" in capsys.readouterr().err
    assert inference.main(["--device", "npu"]) == 2
    assert "device=npu needs the Ascend CANN runtime" in capsys.readouterr().err


def test_flop_count_of_vision_and_llm_equals_their_linear_calls_plus_attention(policy):
    observation = inference.observation_for(policy, seed=0)
    noise = torch.zeros(policy.model.noise_shape(1))
    work = probes.stage_work(policy, observation, noise)
    recorded = probes.record_calls(policy, observation, noise)
    calls = {stage: c.linear for stage, c in recorded.items()}
    config = policy.model.config
    vision, text = config.backbone.vision, config.backbone.text
    patches = (252 // vision.patch_size) ** 2
    vision_attention = 4 * patches**2 * vision.hidden_size * vision.num_hidden_layers
    llm_attention = 4 * work.llm_tokens**2 * text.num_attention_heads * text.head_dim * config.select_layer
    assert sum(c.flops for c in calls["vision"]) + vision_attention == pytest.approx(work.gflop["vision"] * 1e9)
    assert sum(c.flops for c in calls["llm"]) + llm_attention == pytest.approx(work.gflop["llm"] * 1e9)
    # Kernels: every linear call and one attention per layer (the LLM's layers up to select_layer).
    assert len(recorded["vision"].kernels) == len(calls["vision"]) + vision.num_hidden_layers
    assert len(recorded["llm"].kernels) == len(calls["llm"]) + config.select_layer


def test_stage_times_come_from_the_models_own_calls(policy):
    observation = inference.observation_for(policy, seed=0)
    seconds = probes.stage_seconds(policy, observation, torch.zeros(policy.model.noise_shape(1)))
    assert list(seconds) == list(probes.STAGES[:-1])
    assert not policy.model._forward_hooks and not policy.model._forward_pre_hooks, "the probe's hooks stay behind"


def test_byte_count_reads_each_linear_weight_once_per_call_as_stored(policy):
    """The LLM runs each of its linear layers once: its byte count holds each weight once (int8 and its scales for
    the int8 model) plus the activations in and out."""
    observation = inference.observation_for(policy, seed=0)
    noise = torch.zeros(policy.model.noise_shape(1))
    int8 = random_policy("tiny", "cpu", "bfloat16", optimize=True, weight_dtype="int8")
    bf16 = random_policy("tiny", "cpu", "bfloat16", optimize=True)
    for model_policy in (bf16, int8):
        calls = probes.record_calls(model_policy, observation, noise)["llm"].linear
        layers = [m for name, m in model_policy.model.named_modules()
                  if ".language_model.model.layers." in name and hasattr(m, "in_features")]
        assert len(calls) == len(layers)
        stored = sum(probes.tensor_bytes(m.weight, getattr(m, "scale", None), m.bias) for m in layers)
        assert sum(c.weight_bytes for c in calls) == stored
    config = policy.model.config.backbone.text
    per_layer = 2 * (2 * config.hidden_size * config.num_attention_heads * config.head_dim
                     + 2 * config.hidden_size * config.num_key_value_heads * config.head_dim
                     + 3 * config.hidden_size * config.intermediate_size)
    int8_calls = probes.record_calls(int8, observation, noise)["llm"].linear
    assert sum(c.weight_bytes for c in int8_calls) < per_layer * policy.model.config.select_layer * 0.6
