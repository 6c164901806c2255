"""The benchmark CLI on the tiny preset, and its FLOP count against the layer calls the model really makes."""
import json

import pytest
import torch

from gr00t_npu_node import bench
from gr00t_npu_node.policy import Gr00tPolicy


def test_cli_times_both_paths_stage_by_stage_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--preset", "tiny", "--device", "cpu", "--runs", "2", "--warmup", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["paths"]) == {"plain", "optimized"} and report["dtype"] == "float32"
    for path in report["paths"].values():
        assert all(len(path["seconds"][stage]) == 2 for stage in bench.STAGES)
        assert all(path["median"][stage] > 0 for stage in bench.STAGES)
        assert path["gflop"]["action_head"] > 0 and path["peak_process_gb"] > 0
    assert report["paths"]["plain"]["gflop"]["action_head"] > report["paths"]["optimized"]["gflop"]["action_head"]
    assert all(v > 0 for v in report["matrix_gflops"].values())
    assert all(report["matrix_seconds"][s] > 0 and report["kernel_seconds"][s] > 0 for s in report["kernel_seconds"])
    assert report["max_action_deviation"] <= 1e-4
    printed = capsys.readouterr().out
    assert "speedup" in printed and "action_head" in printed and "where the time goes" in printed


def test_cli_refuses_unknown_paths_and_unavailable_devices(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--paths", "fast"])
    assert bench.main(["--device", "npu"]) == 2
    assert "device=npu needs the Ascend CANN runtime" in capsys.readouterr().err


def test_flop_count_of_vision_and_llm_equals_their_linear_calls_plus_attention():
    policy = Gr00tPolicy.build_random("tiny", "cpu", "float32", optimize=True)
    observation = bench.observation_for(policy, seed=0)
    noise = torch.zeros(1, policy.model.config.action_horizon, policy.model.config.max_action_dim)
    shapes = bench.measured_shapes(policy, observation, noise)
    counted = bench.stage_gflop(policy.model.config, shapes, hoisted=True)
    recorded = bench.record_calls(policy, observation, noise)
    calls = {stage: c.linear for stage, c in recorded.items()}
    vision, text = policy.model.config.backbone.vision, policy.model.config.backbone.text
    vision_attention = 4 * shapes.images * shapes.patches**2 * vision.hidden_size * vision.num_hidden_layers
    llm_attention = 4 * shapes.llm_tokens**2 * text.num_attention_heads * text.head_dim * policy.model.config.select_layer
    assert sum(c.flops for c in calls["vision"]) + vision_attention == pytest.approx(counted["vision"] * 1e9)
    assert sum(c.flops for c in calls["llm"]) + llm_attention == pytest.approx(counted["llm"] * 1e9)
    # Kernels: every linear call and one attention per layer (the LLM's layers up to select_layer).
    assert len(recorded["vision"].kernels) == len(calls["vision"]) + vision.num_hidden_layers
    assert len(recorded["llm"].kernels) == len(calls["llm"]) + policy.model.config.select_layer
    plain = bench.stage_gflop(policy.model.config, shapes, hoisted=False)
    assert plain["action_head"] > counted["action_head"] and plain["vision"] == counted["vision"]
