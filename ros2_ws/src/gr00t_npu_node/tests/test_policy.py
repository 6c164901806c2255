"""Gr00tPolicy end to end: upstream's golden case through the public API, checkpoint round trips in the released
layout (single file and sharded), the tiny embedded checkpoint, and every bad input the API must refuse."""
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gr00t_npu_node.model.weights import CheckpointMismatch, save_weights
from gr00t_npu_node.policy import Gr00tPolicy, NonFiniteActionError

GOLDEN_VIDEO_KEY = "ego_view_bg_crop_pad_res256_freq20"
GROUPS = ("left_arm", "right_arm", "left_hand", "right_hand", "waist")


def golden_observation(golden_dir):
    data = np.load(golden_dir / "input.npz")
    return {
        "video": {GOLDEN_VIDEO_KEY: data["image"][:, None]},
        "state": {g: data[f"state.{g}"] for g in GROUPS},
        "language": {"task": [[str(data["instruction"][0])]]},
    }, torch.from_numpy(data["noise"])


@pytest.mark.parametrize("optimize", [False, True], ids=["plain", "optimized"])
def test_golden_case_decoded_actions_match_upstream(golden_dir, optimize):
    policy = Gr00tPolicy.from_pretrained(
        golden_dir / "checkpoint", tokenizer_path=golden_dir / "backbone", dtype="float32", optimize=optimize
    )
    observation, noise = golden_observation(golden_dir)
    reference = np.load(golden_dir / "reference_float32.npz")
    actions = policy.get_action(observation, noise=noise)
    assert list(actions) == list(GROUPS)
    for group in GROUPS:
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
    assert set(tiny_policy.last_timing) >= {"preprocess", "vision", "llm", "action_head", "decode", "total"}


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


def test_optimized_path_reads_its_inputs_from_buffers_refilled_in_place(tiny_checkpoint):
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint)
    seen = []
    vision = policy.model.backbone.model.vision_model
    vision.register_forward_pre_hook(lambda _module, args: seen.append((args[0].data_ptr(), args[0].clone())))
    observation = policy.example_observation()
    policy.get_action(observation)
    allocated = policy.input_buffers.allocations
    observation["video"] = {k: np.full_like(v, 7) for k, v in observation["video"].items()}
    policy.get_action(observation)
    assert policy.input_buffers.allocations == allocated, "same shapes must not allocate new input buffers"
    assert seen[0][0] == seen[1][0], "the vision encoder must read the same pixel buffer at every call"
    assert not torch.equal(seen[0][1], seen[1][1]), "the buffer must hold the new frame"
    policy.get_action(policy.example_observation(height=224, width=320))
    # Another image size changes the pixels and the image-token count: ids and both masks; state and noise stay.
    assert policy.input_buffers.allocations == allocated + 4
    plain = Gr00tPolicy.from_pretrained(tiny_checkpoint, optimize=False)
    assert plain.input_buffers is None
    noise = torch.randn(1, 50, 128)
    for g, action in policy.get_action(observation, noise=noise).items():
        np.testing.assert_allclose(action, plain.get_action(observation, noise=noise)[g], atol=1e-5)


def test_compiled_npu_path_reads_its_static_input_buffers_anew_at_every_call(tiny_checkpoint):
    """The noise buffer is marked static for the graph compiler: the compiled loop must read its contents at every
    call, not bake the first call's values in. (About 15 s: one inductor compile of the tiny loop.)"""
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint, device="npu-emulated", dtype="float32")
    plain = Gr00tPolicy.from_pretrained(tiny_checkpoint, device="npu-emulated", dtype="float32", optimize=False)
    observation = policy.example_observation()
    for noise in (torch.randn(1, 50, 128), torch.randn(1, 50, 128)):
        ours, reference = policy.get_action(observation, noise=noise), plain.get_action(observation, noise=noise)
        for g in ours:
            np.testing.assert_allclose(ours[g], reference[g], atol=1e-5, err_msg=g)
    assert policy.input_buffers.allocations == 6, "two calls of one shape: one buffer per input"


def test_warmup_runs_the_camera_size_so_its_first_frame_compiles_nothing(tiny_checkpoint):
    policy = Gr00tPolicy.from_pretrained(tiny_checkpoint)
    shapes = []
    vision = policy.model.backbone.model.vision_model
    vision.register_forward_pre_hook(lambda _module, args: shapes.append(tuple(args[0].shape)))
    policy.warmup(height=480, width=640)
    warmed = set(shapes)
    policy.get_action(policy.example_observation(height=480, width=640))
    assert shapes[-1] in warmed and shapes[-1] != (1, 3, 252, 252), shapes


def test_sharded_round_trip_gives_the_same_actions(tiny_checkpoint, tiny_policy, tmp_path):
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_checkpoint, sharded, ignore=shutil.ignore_patterns("model.safetensors"))
    paths = save_weights(tiny_policy.model, sharded, max_shard_bytes=2_000_000)
    assert len(paths) > 1 and (sharded / "model.safetensors.index.json").is_file()
    reloaded = Gr00tPolicy.from_pretrained(sharded)
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


def test_missing_backbone_folder_says_where_it_looked(tiny_checkpoint, tmp_path):
    folder = tmp_path / "alone"
    shutil.copytree(tiny_checkpoint, folder, ignore=shutil.ignore_patterns("backbone"))
    with pytest.raises(FileNotFoundError, match="tokenizer_path"):
        Gr00tPolicy.from_pretrained(folder)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda o: o["video"].update({k: v.astype(np.float32) for k, v in o["video"].items()}), "uint8"),
        (lambda o: o["video"].update({k: v[..., :2] for k, v in o["video"].items()}), "3"),
        (lambda o: o["state"].pop("waist"), "waist"),
        (lambda o: o["state"].update(extra=np.zeros((1, 1, 2), np.float32)), "extra"),
        (lambda o: o["state"].update(left_arm=np.zeros((1, 1, 6), np.float32)), "left_arm"),
        (lambda o: o["state"]["right_hand"].__setitem__((0, 0, 0), np.nan), "right_hand"),
        (lambda o: o["state"]["left_hand"].__setitem__((0, 0, 1), np.inf), "left_hand"),
        (lambda o: o["language"].update(task=[["   "]]), "instruction"),
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
