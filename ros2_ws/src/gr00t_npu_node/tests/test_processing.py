# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Pre/post-processing: bit-exact against upstream's golden tensors, and behaviour on a synthetic embodiment with
two cameras, two frames, every state encoding and both action representations."""
import json
from pathlib import Path

import golden
import numpy as np
import pytest
import torch

from gr00t_npu_node.processing.image import ImagePreprocessor, eval_transform, image_token_count, smart_resize
from gr00t_npu_node.processing.processor import Gr00tProcessor
from gr00t_npu_node.tiny_tokenizer import write_tiny_tokenizer

GR1_VIDEO_KEY = "ego_view_bg_crop_pad_res256_freq20"

# ---- the synthetic embodiment ------------------------------------------------------------------------------------
BOT = "test_bot"
HORIZON = 4
MAX_STATE_DIM = 16
RELATIVE_SPAN = 0.1 * np.arange(1, HORIZON + 1)[:, None] * np.ones((1, 3))  # per-step relative range [4, 3]
STATISTICS = {
    BOT: {
        "state": {
            "arm": {"min": [-3.0] * 3, "max": [3.0] * 3, "mean": [0.0] * 3, "std": [1.0] * 3},
            "gripper": {"min": [0.0], "max": [0.08], "mean": [0.04], "std": [0.02]},
            "base": {"min": [-9.0, -9.0], "max": [9.0, 9.0], "mean": [1.0, -1.0], "std": [2.0, 0.5]},
        },
        "action": {
            "arm": {"min": [-3.0] * 3, "max": [3.0] * 3, "mean": [0.0] * 3, "std": [1.0] * 3},
            "gripper": {"min": [0.0], "max": [0.08], "mean": [0.04], "std": [0.02]},
        },
        "relative_action": {
            "arm": {"min": (-RELATIVE_SPAN).tolist(), "max": RELATIVE_SPAN.tolist(),
                    "mean": np.zeros((HORIZON, 3)).tolist(), "std": np.ones((HORIZON, 3)).tolist()},
        },
    }
}


def _modality(keys, delta_indices=(-1, 0), **extra):
    return {"delta_indices": list(delta_indices), "modality_keys": list(keys), "sin_cos_embedding_keys": None,
            "mean_std_embedding_keys": None, "action_configs": None} | extra


PROCESSOR_CONFIG = {
    "processor_class": "Gr00tN1d6Processor",
    "processor_kwargs": {
        "modality_configs": {
            BOT: {
                "video": _modality(["front", "wrist"]),
                "state": _modality(["arm", "gripper", "base"], sin_cos_embedding_keys=["arm"],
                                   mean_std_embedding_keys=["base"]),
                "action": _modality(["arm", "gripper"], delta_indices=range(HORIZON), action_configs=[
                    {"rep": "RELATIVE", "type": "NON_EEF", "format": "DEFAULT", "state_key": None},
                    {"rep": "ABSOLUTE", "type": "NON_EEF", "format": "DEFAULT", "state_key": None},
                ]),
                "language": _modality(["task"], delta_indices=[0]),
            }
        },
        "image_crop_size": None, "image_target_size": None, "use_albumentations": True, "shortest_image_edge": 256,
        "crop_fraction": 0.95, "model_name": "nvidia/Eagle-Block2A-2B-v2", "model_type": "eagle",
        "formalize_language": True, "max_state_dim": MAX_STATE_DIM, "max_action_dim": 8, "max_action_horizon": 6,
        "use_percentiles": False, "clip_outliers": True, "apply_sincos_state_encoding": True,
        "use_relative_action": True,
    },
}


@pytest.fixture(scope="module")
def bot_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bot_checkpoint")
    (folder / "processor_config.json").write_text(json.dumps(PROCESSOR_CONFIG))
    (folder / "statistics.json").write_text(json.dumps(STATISTICS))
    (folder / "embodiment_id.json").write_text(json.dumps({BOT: 7, "gr1": 20}))
    write_tiny_tokenizer(folder / "backbone")
    return folder


@pytest.fixture(scope="module")
def bot(bot_checkpoint) -> Gr00tProcessor:
    return Gr00tProcessor.from_folders(bot_checkpoint, bot_checkpoint / "backbone", BOT)


def bot_observation(batch=1, height=480, width=640, instructions=None) -> dict:
    rng = np.random.default_rng(0)
    return {
        "video": {k: rng.integers(0, 256, (batch, 2, height, width, 3), dtype=np.uint8) for k in ("front", "wrist")},
        "state": {
            "arm": rng.uniform(-1, 1, (batch, 2, 3)).astype(np.float32),
            "gripper": rng.uniform(0, 0.08, (batch, 2, 1)).astype(np.float32),
            "base": rng.uniform(-1, 1, (batch, 2, 2)).astype(np.float32),
        },
        "language": {"task": [[text] for text in (instructions or ["Pick up the red cup!"] * batch)]},
    }


# ---- against upstream --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_observation(golden_dir, gr1) -> dict:
    return golden.observation(golden_dir, gr1)


@pytest.fixture(scope="module")
def gr1(golden_dir) -> Gr00tProcessor:
    return Gr00tProcessor.from_folders(golden_dir / "checkpoint", golden_dir / "backbone", "gr1")


def test_image_transform_matches_upstream(golden_dir):
    image = np.load(golden_dir / "input.npz")["image"][0]
    reference = np.load(golden_dir / "reference_float32.npz")
    np.testing.assert_array_equal(eval_transform(image, 256, 0.95), reference["transformed_image"][0])
    pixels = ImagePreprocessor(256, 0.95)(image)
    assert pixels.dtype == np.float32 and pixels.shape == (3, 252, 252)
    np.testing.assert_array_equal(pixels, reference["pixel_values"][0])
    assert image_token_count(pixels) == 81


def test_processor_inputs_match_upstream(gr1, golden_observation, golden_dir):
    reference = np.load(golden_dir / "reference_float32.npz")
    inputs = gr1(golden_observation)
    for name in ("input_ids", "attention_mask", "pixel_values", "image_mask", "state", "embodiment_id"):
        ours = getattr(inputs, name).numpy()
        assert ours.dtype == reference[name].dtype, name
        np.testing.assert_array_equal(ours, reference[name], err_msg=name)
    assert gr1.video_keys == [GR1_VIDEO_KEY]
    assert gr1.state_dims == {"left_arm": 7, "right_arm": 7, "left_hand": 6, "right_hand": 6, "waist": 3}
    assert gr1.action_dims == gr1.state_dims and gr1.action_horizon == 16 and gr1.embodiment_id == 20


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_decoded_actions_match_upstream(gr1, golden_observation, golden_dir, dtype):
    reference = np.load(golden_dir / f"reference_{dtype}.npz")
    actions = gr1.decode(reference["action_pred"], golden_observation)
    assert list(actions) == list(gr1.action_dims)
    for group, values in actions.items():
        expected = reference[f"action.{group}"]
        assert values.dtype == np.float32 and values.shape == expected.shape == (1, 16, gr1.action_dims[group])
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-5, err_msg=group)


# ---- images ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, expected",
    [((480, 640), (252, 336)), ((640, 480), (336, 252)), ((720, 1280), (252, 448)), ((256, 256), (252, 252)),
     ((100, 100), (252, 252))],
)
def test_camera_resolutions_give_28_multiples(size, expected):
    pixels = ImagePreprocessor(256, 0.95)(np.full((*size, 3), 70, np.uint8))
    assert pixels.shape == (3, *expected)
    assert image_token_count(pixels) == expected[0] * expected[1] // 784
    np.testing.assert_array_equal(pixels, np.float32((70 - 127.5) / 127.5))


@pytest.mark.parametrize("size", [(480, 640), (1, 1), (3, 500), (1079, 1921), (37, 4000), (256, 256)])
def test_output_size_from_the_frame_size_alone_is_what_the_pipeline_gives(size):
    preprocessor = ImagePreprocessor(256, 0.95)
    assert preprocessor(np.zeros((*size, 3), np.uint8)).shape[1:] == preprocessor.output_size(*size)


def test_a_frame_too_thin_for_the_encoder_is_refused_before_anything_is_resized(monkeypatch):
    import gr00t_npu_node.processing.image as image_module

    def no_resize(*args, **kwargs):
        raise AssertionError("resized before the aspect ratio was checked")

    monkeypatch.setattr(image_module.cv2, "resize", no_resize)
    with pytest.raises(ValueError, match="aspect ratio"):
        ImagePreprocessor(256, 0.95)(np.zeros((2000, 1, 3), np.uint8))
    with pytest.raises(ValueError, match="no pixels"):
        ImagePreprocessor(256, 0.95).output_size(0, 640)


def test_smart_resize_limits():
    assert smart_resize(2000, 4000) == (1260, 2520)  # above max_pixels: scaled down, floored to 28
    assert smart_resize(20, 40) == (56, 84)  # below min_pixels: scaled up, ceiled to 28
    assert smart_resize(100, 7500) == (112, 7000)  # a side is capped at 7000
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)


def test_images_are_t_major_within_a_sample_and_samples_in_order(bot):
    observation = bot_observation(batch=2, height=64, width=64)
    for sample in range(2):
        for t in range(2):
            for view, key in enumerate(("front", "wrist")):
                observation["video"][key][sample, t] = 10 * (4 * sample + 2 * t + view)
    pixels = bot(observation).pixel_values
    assert pixels.shape == (8, 3, 252, 252) and pixels.dtype == torch.float32
    for index in range(8):
        assert torch.all(pixels[index] == np.float32((10 * index - 127.5) / 127.5)), index


def test_non_square_cameras_through_the_processor(bot):
    inputs = bot(bot_observation(height=480, width=640))
    assert inputs.pixel_values.shape == (4, 3, 252, 336)
    assert int(inputs.image_mask.sum()) == 4 * 108
    assert inputs.image_mask.dtype == torch.bool and inputs.embodiment_id.tolist() == [7]


def test_cameras_with_different_aspect_ratios_are_rejected(bot):
    observation = bot_observation(height=480, width=640)
    observation["video"]["wrist"] = np.zeros((1, 2, 480, 480, 3), np.uint8)
    with pytest.raises(ValueError, match="different sizes"):
        bot(observation)


# ---- state and actions -------------------------------------------------------------------------------------------
def test_state_encoding_per_group(bot):
    observation = bot_observation()
    arm = np.array([0.5, -1.0, 2.0], np.float32)
    observation["state"]["arm"][0, 1] = arm
    observation["state"]["gripper"][0, :, 0] = [0.04, 0.2]  # mid-range, then beyond max (clipped)
    observation["state"]["base"][0, 1] = [3.0, -1.5]
    state = bot(observation).state
    assert state.shape == (1, 2, MAX_STATE_DIM) and state.dtype == torch.float32
    last = state[0, 1].numpy()
    np.testing.assert_array_equal(last[:6], np.concatenate([np.sin(arm), np.cos(arm)]))
    assert last[6] == 1.0 and state[0, 0, 6] == 0.0
    np.testing.assert_allclose(last[7:9], [1.0, -1.0], atol=1e-6)  # (3 - 1) / 2, (-1.5 + 1) / 0.5
    assert not last[9:].any()


def test_decode_relative_and_absolute_groups(bot):
    observation = bot_observation(batch=2)
    action_pred = np.zeros((2, 6, 8), np.float32)
    action_pred[:, :, 0:3] = 1.0  # arm at the top of its per-step relative range
    action_pred[0, :, 3] = -1.0  # gripper at its min
    action_pred[1, :, 3] = 5.0  # beyond range: clipped to max
    action_pred[:, HORIZON:, :] = 9.0  # beyond the horizon: ignored
    actions = bot.decode(action_pred, observation)
    assert actions["arm"].shape == (2, HORIZON, 3) and actions["gripper"].shape == (2, HORIZON, 1)
    assert all(a.dtype == np.float32 for a in actions.values())
    last_arm = observation["state"]["arm"][:, -1].astype(np.float64)
    np.testing.assert_allclose(actions["arm"], last_arm[:, None, :] + RELATIVE_SPAN[None], atol=1e-6)
    np.testing.assert_allclose(actions["gripper"][0], 0.0, atol=1e-7)
    np.testing.assert_allclose(actions["gripper"][1], 0.08, atol=1e-7)
    with pytest.raises(ValueError, match="batch 3"):
        bot.decode(np.zeros((3, 6, 8), np.float32), observation)
    with pytest.raises(ValueError, match="expected"):
        bot.decode(np.zeros((2, 6, 3), np.float32), observation)


def test_encode_is_decodes_exact_inverse_for_relative_and_absolute_groups(bot):
    observation = bot_observation(batch=2)
    rng = np.random.default_rng(1)
    last_arm = observation["state"]["arm"][:, -1].astype(np.float64)
    actions = {
        "arm": last_arm[:, None, :] + rng.uniform(-1, 1, (2, HORIZON, 3)) * RELATIVE_SPAN[None],
        "gripper": rng.uniform(0.0, 0.08, (2, HORIZON, 1)),
    }
    encoded = bot.encode(actions, observation)
    assert encoded.shape == (2, HORIZON, 4) and encoded.dtype == np.float32 and np.abs(encoded).max() <= 1
    padded = np.zeros((2, 6, 8), np.float32)
    padded[:, :HORIZON, :4] = encoded
    decoded = bot.decode(padded, observation)
    for group, values in actions.items():
        np.testing.assert_allclose(decoded[group], values, rtol=0, atol=1e-6, err_msg=group)


def test_encode_normalizes_each_step_with_its_own_statistics_and_clips_what_decoding_clips(bot):
    observation = bot_observation()
    last_arm = observation["state"]["arm"][:, -1].astype(np.float64)
    offsets = np.full((1, HORIZON, 3), 0.1)  # the first step's range, a quarter of the last one's
    encoded = bot.encode({"arm": last_arm[:, None] + offsets, "gripper": np.full((1, HORIZON, 1), 0.2)}, observation)
    np.testing.assert_allclose(encoded[0, :, 0], [1.0, 1 / 2, 1 / 3, 1 / 4], atol=1e-6)  # 0.1 / span of the step
    assert (encoded[0, :, 3] == 1.0).all()  # gripper beyond its max: decodes to the max
    only_gripper = bot.encode({"gripper": np.full((1, HORIZON, 1), 0.04)}, observation)
    assert not only_gripper[..., :3].any() and np.allclose(only_gripper[..., 3], 0.0)
    assert bot.action_columns == {"arm": slice(0, 3), "gripper": slice(3, 4)}


@pytest.mark.parametrize(
    "actions, message",
    [
        ({"wheel": np.zeros((1, HORIZON, 2))},
         r"unknown groups \['wheel'\]; the action groups are \['arm', 'gripper'\]"),
        ({"gripper": np.zeros((1, HORIZON, 2))}, r"actions of 'gripper' has shape \[1, 4, 2\]; expected \[1, 4, 1\]"),
        ({"gripper": np.zeros((2, HORIZON, 1))}, "the observation's batch is 1"),
        ({"gripper": np.full((1, HORIZON, 1), np.nan)}, "'gripper' contain NaN"),
    ],
    ids=["unknown-group", "width", "batch", "nan"],
)
def test_encode_refuses_malformed_actions_naming_the_group(bot, actions, message):
    with pytest.raises(ValueError, match=message):
        bot.encode(actions, bot_observation())


def test_encode_inverts_decode_on_upstreams_decoded_golden_actions(gr1, golden_observation, golden_dir):
    reference = golden.reference(golden_dir, torch.float32)
    actions = {group: reference[f"action.{group}"] for group in golden.GROUPS}
    padded = np.pad(gr1.encode(actions, golden_observation), ((0, 0), (0, 34), (0, 99)))
    decoded = gr1.decode(padded, golden_observation)
    for group in golden.GROUPS:
        np.testing.assert_allclose(decoded[group], actions[group], rtol=0, atol=1e-6, err_msg=group)


# ---- text and batching -------------------------------------------------------------------------------------------
def test_batch_with_different_instruction_lengths_is_left_padded(bot):
    texts = ["Pick.", "Pick up the red cup from the table and put it in the basket, please!"]
    batched = bot(bot_observation(batch=2, height=64, width=64, instructions=texts))
    singles = [bot(bot_observation(batch=1, height=64, width=64, instructions=[t])) for t in texts]
    lengths = [s.input_ids.shape[1] for s in singles]
    assert batched.input_ids.shape == (2, max(lengths)) and lengths[0] < lengths[1]
    pad = lengths[1] - lengths[0]
    assert (batched.input_ids[0, :pad] == bot.pad_token_id).all()
    assert torch.equal(batched.input_ids[0, pad:], singles[0].input_ids[0])
    assert torch.equal(batched.input_ids[1], singles[1].input_ids[0])
    assert batched.attention_mask[0].tolist() == [0] * pad + [1] * lengths[0] and batched.attention_mask[1].all()
    assert not batched.image_mask[0, :pad].any()
    assert batched.image_mask.sum(1).tolist() == [4 * 81, 4 * 81]
    assert torch.equal(batched.image_mask, batched.input_ids == bot.image_token_index)


def test_instruction_token_count_is_what_the_prompt_grows_by(bot):
    short, long = "Pick.", "Pick up the red cup from the table and put it in the basket, please!"
    counts = [bot.instruction_token_count(t) for t in (short, long)]
    lengths = [bot(bot_observation(batch=1, height=64, width=64, instructions=[t])).input_ids.shape[1]
               for t in (short, long)]
    assert counts[1] - counts[0] == lengths[1] - lengths[0] > 0
    assert bot.instruction_token_count("PICK.") == counts[0], "counted after the checkpoint's normalization"


# ---- validation --------------------------------------------------------------------------------------------------
def _set(path, value):
    def mutate(observation):
        *parents, leaf = path
        target = observation
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value(target.get(leaf)) if callable(value) else value

    return mutate


BAD_OBSERVATIONS = {
    "image dtype": (_set(("video", "front"), lambda v: v.astype(np.float32)), r"dtype float32.*uint8"),
    "image ndim": (_set(("video", "front"), lambda v: v[:, 0]), r"5-D \[B, T, H, W, 3\]"),
    "image channels": (_set(("video", "front"), lambda v: np.concatenate([v, v[..., :1]], -1)), r"4 channels"),
    "image not an array": (_set(("video", "front"), lambda v: v.tolist()), r"must be a numpy array"),
    "missing video key": (_set(("video", "wrist"), KeyError), r"missing \['wrist'\].*expects exactly"),
    "extra video key": (_set(("video", "side"), np.zeros((1, 2, 8, 8, 3), np.uint8)), r"unexpected \['side'\]"),
    "video T": (_set(("video", "front"), lambda v: v[:, :1]), r"T=1 frames.*takes T=2"),
    "missing state group": (_set(("state", "base"), KeyError), r"missing \['base'\]"),
    "extra state group": (_set(("state", "leg"), np.zeros((1, 2, 2), np.float32)), r"unexpected \['leg'\]"),
    "state width": (_set(("state", "base"), np.zeros((1, 2, 3), np.float32)), r"\[1, 2, 3\]; expected \[B, 2, 2\]"),
    "state T": (_set(("state", "arm"), np.zeros((1, 1, 3), np.float32)), r"expected \[B, 2, 3\]"),
    "state dtype": (_set(("state", "arm"), lambda v: v.astype(np.float64)), r"float32 numpy array"),
    "state NaN": (_set(("state", "gripper"), np.full((1, 2, 1), np.nan, np.float32)), r"'gripper'.*NaN or inf"),
    "state inf": (_set(("state", "arm"), np.full((1, 2, 3), np.inf, np.float32)), r"'arm'.*NaN or inf"),
    "state batch": (_set(("state", "arm"), np.zeros((2, 2, 3), np.float32)), r"batch 2 but other modalities have 1"),
    "video batch": (_set(("video", "wrist"), np.zeros((3, 2, 8, 8, 3), np.uint8)), r"batch 3 but other modalities"),
    "language batch": (_set(("language", "task"), [["pick"], ["place"]]), r"2 entries but the batch is 1"),
    "empty instruction": (_set(("language", "task"), [[""]]), r"empty once cleaned"),
    "blank instruction": (_set(("language", "task"), [["   \n"]]), r"empty once cleaned"),
    "punctuation instruction": (_set(("language", "task"), [["?!..."]]), r"empty once cleaned"),
    "language a string": (_set(("language", "task"), "pick the cup"), r"list \(batch\) of lists"),
    "language flat list": (_set(("language", "task"), ["pick the cup"]), r"list \(batch\) of lists"),
    "two instructions": (_set(("language", "task"), [["pick", "place"]]), r"exactly one instruction"),
    "instruction not str": (_set(("language", "task"), [[3]]), r"exactly one instruction string"),
    "wrong language key": (_set(("language",), {"instruction": [["pick"]]}), r"missing \['task'\]"),
    "no language": (_set(("language",), KeyError), r"observation\['language'\] must be a dict"),
}


@pytest.mark.parametrize("mutate, message", BAD_OBSERVATIONS.values(), ids=BAD_OBSERVATIONS.keys())
def test_bad_observation_is_rejected_with_its_problem_named(bot, mutate, message):
    observation = bot_observation(height=32, width=32)
    mutate(observation)
    with pytest.raises(ValueError, match=message):
        bot(observation)


# ---- loading -----------------------------------------------------------------------------------------------------
def test_unknown_embodiment_lists_the_known_ones(bot_checkpoint):
    with pytest.raises(ValueError, match=r"unknown embodiment 'ufo'.*gr1, test_bot"):
        Gr00tProcessor.from_folders(bot_checkpoint, bot_checkpoint / "backbone", "ufo")


def test_embodiment_with_an_id_but_no_configuration_is_an_error(bot_checkpoint):
    with pytest.raises(ValueError, match=r"'gr1' has an id .* no entry in processor_config.json or statistics.json"):
        Gr00tProcessor.from_folders(bot_checkpoint, bot_checkpoint / "backbone", "gr1")


def test_backbone_without_config_is_an_error(bot_checkpoint, tmp_path):
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="config.json"):
        Gr00tProcessor.from_folders(bot_checkpoint, tmp_path, BOT)
