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


def test_cli_times_both_paths_stage_by_stage_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert inference.main(["--preset", "tiny", "--device", "cpu", "--runs", "3", "--warmup", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["paths"]) == {"plain", "optimized"} and report["dtype"] == "float32" and report["runs"] == 3
    for path in report["paths"].values():
        assert {stage: len(values) for stage, values in path["seconds"].items()} == {s: 3 for s in probes.STAGES}
        assert set(path["median"]) == set(probes.STAGES) and path["llm_tokens"] == 126
    gflop = {name: path["gflop"] for name, path in report["paths"].items()}
    assert gflop["plain"]["vision"] == gflop["optimized"]["vision"] and gflop["plain"]["llm"] == gflop["optimized"]["llm"]
    assert gflop["plain"]["action_head"] > gflop["optimized"]["action_head"]  # VL keys/values once, not per step
    assert set(report["matrix_gflops"]) == set(report["kernel_seconds"]) == set(probes.STAGE_MODULES)
    assert all(len(rates) == 3 for rates in report["matrix_gflops_per_round"].values())
    assert report["max_action_deviation"] <= 1e-4
    rtc = report["rtc"]
    assert rtc["path"] == "optimized" and list(rtc["modes"]) == list(RTC_MODES)
    for mode in rtc["modes"].values():
        assert len(mode["seconds"]) == len(mode["added_seconds"]) == 3 and mode["first_call_seconds"] > 0
        assert mode["added_median"] == pytest.approx(statistics.median(mode["added_seconds"]))
    # The paper's guidance brings the overlap toward the running chunk's plan; prefix replacement only freezes.
    assert rtc["modes"]["guided"]["overlap_rms"] < rtc["unguided_overlap_rms"]
    printed = capsys.readouterr().out
    assert "speedup" in printed and "action_head" in printed and "where the time goes" in printed
    assert "real-time chunking on the optimized path" in printed and "added ms" in printed


def test_cli_refuses_unknown_paths_and_unavailable_devices(capsys):
    with pytest.raises(SystemExit):
        inference.main(["--paths", "fast"])
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
