# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Gr00tPolicy end to end: upstream's golden case through the public API, checkpoint round trips in the released
layout (single file and sharded), the tiny embedded checkpoint, and every bad input the API must refuse."""
import json
import shutil
from pathlib import Path

import golden
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gr00t_npu_node.keys import LANGUAGE, STATE, VIDEO
from gr00t_npu_node.model import weights
from gr00t_npu_node.model.weights import CheckpointMismatch, save_weights
from gr00t_npu_node.policy import Gr00tPolicy, NonFiniteActionError


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
def test_golden_case_decoded_actions_match_upstream(golden_dir, optimize):
    policy = Gr00tPolicy.from_pretrained(
        golden_dir / "checkpoint", tokenizer_path=golden_dir / "backbone", dtype="float32", optimize=optimize
    )
    reference = golden.reference(golden_dir, torch.float32)
    actions = policy.get_action(golden.observation(golden_dir, policy.processor), noise=golden.noise(golden_dir))
    assert list(actions) == list(golden.GROUPS)
    for group in golden.GROUPS:
        assert actions[group].dtype == np.float32
        np.testing.assert_allclose(actions[group], reference[f"action.{group}"], atol=1e-4, rtol=0, err_msg=group)


def test_golden_backbone_folder_is_found_beside_the_checkpoint(golden_dir, tmp_path):
    shutil.copytree(golden_dir / "checkpoint", tmp_path / "checkpoint")
    shutil.copytree(golden_dir / "backbone", tmp_path / "backbone")
    policy = Gr00tPolicy.from_pretrained(tmp_path / "checkpoint")
    assert policy.action_dims == {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6, "waist": 3}


@pytest.fixture(scope="module")
def tiny_policy(tiny_checkpoint):
    return Gr00tPolicy.from_pretrained(tiny_checkpoint)


def test_tiny_policy_gives_a_finite_gr1_chunk(tiny_policy):
    actions = tiny_policy.get_action(tiny_policy.example_observation(batch=2))
    assert {g: a.shape for g, a in actions.items()} == {g: (2, 16, d) for g, d in tiny_policy.action_dims.items()}
    assert all(np.isfinite(a).all() for a in actions.values())


def test_same_noise_same_actions_and_seeded_noise_differs_between_calls(tiny_policy):
    observation = tiny_policy.example_observation()
    noise = torch.randn(1, 50, 128)
    first = tiny_policy.get_action(observation, noise=noise)
    again = tiny_policy.get_action(observation, noise=noise)
    drawn = tiny_policy.get_action(observation)
    for g in first:
        np.testing.assert_array_equal(first[g], again[g])
    assert any(not np.array_equal(first[g], drawn[g]) for g in first)


def test_plain_and_optimized_paths_agree_on_the_tiny_model(tiny_checkpoint, tiny_policy):
    plain = Gr00tPolicy.from_pretrained(tiny_checkpoint, optimize=False)
    observation = tiny_policy.example_observation()
    noise = torch.randn(1, 50, 128)
    ours, theirs = tiny_policy.get_action(observation, noise=noise), plain.get_action(observation, noise=noise)
    for g in ours:
        np.testing.assert_allclose(ours[g], theirs[g], atol=1e-5)


def test_observation_is_built_under_the_checkpoints_language_key(tiny_checkpoint, tmp_path):
    folder = tmp_path / "described"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "processor_config.json").read_text())
    config["processor_kwargs"]["modality_configs"]["gr1"][LANGUAGE]["modality_keys"] = ["annotation.human.task"]
    (folder / "processor_config.json").write_text(json.dumps(config))
    policy = Gr00tPolicy.from_pretrained(folder)
    frame = np.zeros((120, 160, 3), np.uint8)
    states = {g: np.full(d, 0.1) for g, d in policy.state_dims.items()}
    observation = policy.observation({policy.video_keys[0]: frame}, states, "pick the pear")
    assert policy.language_key == "annotation.human.task"
    assert observation[LANGUAGE] == {"annotation.human.task": [["pick the pear"]]}
    assert observation[VIDEO][policy.video_keys[0]].shape == (1, 1, 120, 160, 3)
    assert observation[STATE]["waist"].dtype == np.float32 and observation[STATE]["waist"].shape == (1, 1, 3)
    assert set(policy.get_action(observation)) == set(policy.action_dims)
    observation[LANGUAGE] = {"task": [["pick the pear"]]}
    with pytest.raises(ValueError, match=r"missing \['annotation.human.task'\]"):
        policy.get_action(observation)


def test_sharded_round_trip_gives_the_same_actions_opening_each_shard_once(
    tiny_checkpoint, tiny_policy, tmp_path, monkeypatch
):
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_checkpoint, sharded, ignore=shutil.ignore_patterns("model.safetensors"))
    paths = save_weights(tiny_policy.model, sharded, max_shard_bytes=2_000_000)
    assert len(paths) > 1 and (sharded / "model.safetensors.index.json").is_file()
    opened = []

    def counted_open(path, **options):
        opened.append(Path(path).name)
        return safe_open(path, **options)

    monkeypatch.setattr(weights, "safe_open", counted_open)
    reloaded = Gr00tPolicy.from_pretrained(sharded)
    assert sorted(opened) == sorted(p.name for p in paths)
    observation, noise = tiny_policy.example_observation(), torch.randn(1, 50, 128)
    expected, actual = tiny_policy.get_action(observation, noise=noise), reloaded.get_action(observation, noise=noise)
    for g in expected:
        np.testing.assert_array_equal(expected[g], actual[g])


def _edited_checkpoint(tiny_checkpoint, tmp_path, edit):
    folder = tmp_path / "edited"
    shutil.copytree(tiny_checkpoint, folder)
    tensors = load_file(folder / "model.safetensors")
    edit(tensors)
    save_file(tensors, folder / "model.safetensors")
    return folder


def test_missing_tensor_is_named(tiny_checkpoint, tmp_path):
    folder = _edited_checkpoint(tiny_checkpoint, tmp_path, lambda t: t.pop("action_head.model.proj_out_2.weight"))
    with pytest.raises(CheckpointMismatch, match=r"missing \(1\): action_head.model.proj_out_2.weight"):
        Gr00tPolicy.from_pretrained(folder)


def test_misshaped_and_unexpected_tensors_are_named(tiny_checkpoint, tmp_path):
    def edit(tensors):
        tensors["action_head.vlln.weight"] = torch.ones(3)
        tensors["action_head.extra.weight"] = torch.ones(2)

    folder = _edited_checkpoint(tiny_checkpoint, tmp_path, edit)
    with pytest.raises(CheckpointMismatch) as error:
        Gr00tPolicy.from_pretrained(folder)
    assert "unexpected (1): action_head.extra.weight" in str(error.value)
    assert "action_head.vlln.weight (checkpoint [3], model [64])" in str(error.value)


def test_mask_token_of_a_training_checkpoint_is_accepted(tiny_checkpoint, tmp_path):
    folder = _edited_checkpoint(
        tiny_checkpoint, tmp_path, lambda t: t.__setitem__("action_head.mask_token", torch.zeros(1, 1, 48))
    )
    Gr00tPolicy.from_pretrained(folder)


def test_non_finite_weights_never_return_nan(tiny_checkpoint, tmp_path):
    def poison(tensors):
        tensors["action_head.action_decoder.layer2.b"][:] = float("nan")

    policy = Gr00tPolicy.from_pretrained(_edited_checkpoint(tiny_checkpoint, tmp_path, poison))
    with pytest.raises(NonFiniteActionError):
        policy.get_action(policy.example_observation())


def test_unknown_embodiment_lists_the_known_ones(tiny_checkpoint):
    with pytest.raises(ValueError, match="gr1"):
        Gr00tPolicy.from_pretrained(tiny_checkpoint, embodiment="spot")


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        Gr00tPolicy.from_pretrained(tmp_path)


def test_wrong_model_type_is_refused(tiny_checkpoint, tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "Gr00tN1d5"}))
    with pytest.raises(ValueError, match="Gr00tN1d6"):
        Gr00tPolicy.from_pretrained(folder)


def test_backbone_config_and_tokenizer_of_different_backbones_are_refused(tiny_checkpoint, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "backbone" / "config.json").read_text())
    config["image_token_index"] += 1
    (folder / "backbone" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="image_token_index=.*different backbones"):
        Gr00tPolicy.from_pretrained(folder)


def test_missing_backbone_folder_says_where_it_looked(tiny_checkpoint, tmp_path):
    folder = tmp_path / "alone"
    shutil.copytree(tiny_checkpoint, folder, ignore=shutil.ignore_patterns("backbone"))
    with pytest.raises(FileNotFoundError, match="tokenizer_path"):
        Gr00tPolicy.from_pretrained(folder)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda o: o[VIDEO].update({k: v.astype(np.float32) for k, v in o[VIDEO].items()}), "uint8"),
        (lambda o: o[VIDEO].update({k: v[..., :2] for k, v in o[VIDEO].items()}), "3"),
        (lambda o: o[STATE].pop("waist"), "waist"),
        (lambda o: o[STATE].update(extra=np.zeros((1, 1, 2), np.float32)), "extra"),
        (lambda o: o[STATE].update(left_arm=np.zeros((1, 1, 6), np.float32)), "left_arm"),
        (lambda o: o[STATE]["right_hand"].__setitem__((0, 0, 0), np.nan), "right_hand"),
        (lambda o: o[STATE]["left_hand"].__setitem__((0, 0, 1), np.inf), "left_hand"),
        (lambda o: o[LANGUAGE].update({k: [["   "]] for k in o[LANGUAGE]}), "instruction"),
    ],
    ids=["float-image", "two-channels", "missing-group", "extra-group", "wrong-width", "nan-state", "inf-state",
         "empty-instruction"],
)
def test_bad_observations_raise_errors_naming_the_problem(tiny_policy, corrupt, message):
    observation = tiny_policy.example_observation()
    corrupt(observation)
    with pytest.raises(ValueError, match=message):
        tiny_policy.get_action(observation)


def test_wrong_noise_shape_is_refused(tiny_policy):
    with pytest.raises(ValueError, match="noise"):
        tiny_policy.get_action(tiny_policy.example_observation(), noise=torch.zeros(1, 16, 29))
