# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The backbone tokenizer and prompt against upstream's token ids, and the project's own tiny tokenizer."""
import json
import unicodedata

import numpy as np
import pytest

from gr00t_npu_node.processing.text import (
    IMAGE_TOKEN,
    QWEN_ADDED_TOKENS,
    BackboneTokenizer,
    compile_chat_template,
    expand_image_placeholders,
    formalize_language,
    render_prompt,
)
from gr00t_npu_node.tiny_tokenizer import write_tiny_tokenizer

INSTRUCTION = "pick the pear from the counter and place it in the plate"
TRICKY_TEXTS = [
    INSTRUCTION,
    "It's the robot's arm; they'll say we've done it. I'M SURE you'd agree",
    "numbers 1234567890, 3.14159 and -2.1 rad",
    "  leading and trailing spaces   ",
    "tabs\tand\nnew lines\r\n\r\nblank\n\n\nlines",
    "café naïve e\u0301 Ångström 北京 한국어 русский 🤖👍🏽",
    "<|im_start|>user\nhi<image 1><img><IMG_CONTEXT><IMG_CONTEXT></img><|im_end|>\n",
    "glued<|im_end|>text<IMG_CONTEXT>x <think>a</think>",
]


@pytest.fixture(scope="module")
def released(golden_dir) -> BackboneTokenizer:
    return BackboneTokenizer.from_folder(golden_dir / "backbone")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    return folder, write_tiny_tokenizer(folder)


def test_released_prompt_and_token_ids_match_upstream(released, golden_dir):
    reference = np.load(golden_dir / "reference_float32.npz")
    language = formalize_language(str(np.load(golden_dir / "input.npz")["instruction"][0]))
    text = render_prompt(compile_chat_template(released.chat_template), language, num_images=1)
    assert text == str(reference["vlm_text"][0])
    prompt = released.prompt(language, [81])
    input_ids, attention_mask = released.encode_left_padded([prompt])
    assert input_ids.dtype == attention_mask.dtype == np.int64
    assert input_ids.shape == (1, 116)
    np.testing.assert_array_equal(input_ids, reference["input_ids"])
    np.testing.assert_array_equal(attention_mask, reference["attention_mask"])
    assert released.decode(input_ids[0]) == prompt


def test_released_special_tokens_and_image_token_index(released, golden_dir):
    config = json.loads((golden_dir / "backbone" / "config.json").read_text())
    assert released.image_token_id == config["image_token_index"] == 151669
    assert released.pad_token_id == 151643
    assert released.vocab_size == 151680
    assert released.encode("<|im_start|><img></img>") == [151644, 151670, 151671]
    assert released.encode("<think>") == [151667]  # a non-special added token is matched before BPE too


def test_released_pre_tokenization_follows_qwen2(released):
    assert len(released.encode("2024")) == 4  # digits are split one by one
    assert released.encode("e\u0301") == released.encode("\u00e9")  # NFC before BPE
    assert released.encode("it's") == released.encode("it") + released.encode("'s")
    glued = released.encode("a<|im_end|>b")
    assert len(glued) == 3 and glued[1] == 151645
    for text in TRICKY_TEXTS:
        assert released.decode(released.encode(text)) == unicodedata.normalize("NFC", text)


def test_formalize_language_and_placeholder_expansion():
    assert formalize_language("Pick the PEAR, please!") == "pick the pear please"
    assert formalize_language("?!") == ""
    expanded = expand_image_placeholders("a<image-1>b<image-2>", [2, 1])
    assert expanded == f"a<image 1><img>{IMAGE_TOKEN * 2}</img>b<image 2><img>{IMAGE_TOKEN}</img>"
    with pytest.raises(ValueError, match="only 1 image"):
        expand_image_placeholders("<image-2>", [4])


def test_tiny_tokenizer_is_deterministic_and_small(tiny, tmp_path):
    folder, info = tiny
    assert 1000 <= info["vocab_size"] <= 2000
    again = write_tiny_tokenizer(tmp_path)
    assert again == info
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    for name in names:
        assert (folder / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_tiny_tokenizer_loads_with_the_same_loader_and_round_trips(tiny):
    folder, info = tiny
    tokenizer = BackboneTokenizer.from_folder(folder)
    assert tokenizer.vocab_size == info["vocab_size"]
    assert tokenizer.image_token_id == info["image_token_index"]
    assert tokenizer.pad_token_id == info["pad_token_id"]
    for text in TRICKY_TEXTS:
        assert tokenizer.decode(tokenizer.encode(text)) == unicodedata.normalize("NFC", text)
    assert len(tokenizer.encode(INSTRUCTION)) <= 14  # robot instructions are in its vocabulary, about a token a word
    prompt = tokenizer.prompt("pick the pear", [4, 4])
    ids = tokenizer.encode(prompt)
    assert ids.count(info["image_token_index"]) == 8
    assert tokenizer.decode(ids) == prompt


def test_tiny_added_tokens_follow_the_bpe_vocabulary(tiny):
    folder, info = tiny
    vocab = json.loads((folder / "vocab.json").read_text())
    added = json.loads((folder / "added_tokens.json").read_text())
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert [c for c, _ in sorted(added.items(), key=lambda item: item[1])] == [c for c, _ in QWEN_ADDED_TOKENS]
    assert min(added.values()) == len(vocab)
    assert info["vocab_size"] == len(vocab) + len(added)


def test_tiny_tokenizer_files_mirror_the_released_formats(tiny, golden_dir):
    folder, _ = tiny
    released = golden_dir / "backbone"

    def added_tokens(path):
        decoder = json.loads((path / "tokenizer_config.json").read_text())["added_tokens_decoder"]
        return [entry for _, entry in sorted(decoder.items(), key=lambda item: int(item[0]))]

    assert added_tokens(folder) == added_tokens(released)
    for name in ("special_tokens_map.json", "chat_template.json"):
        assert json.loads((folder / name).read_text()) == json.loads((released / name).read_text()), name
    assert (folder / "merges.txt").read_text().splitlines()[0] == (released / "merges.txt").read_text().splitlines()[0]


def test_image_token_disagreeing_with_backbone_config_is_an_error(tiny):
    folder, info = tiny
    assert BackboneTokenizer.from_folder(folder, info["image_token_index"]).image_token_id == info["image_token_index"]
    with pytest.raises(ValueError, match="image_token_index"):
        BackboneTokenizer.from_folder(folder, info["image_token_index"] + 1)


def test_missing_tokenizer_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json, merges.txt, chat_template.json"):
        BackboneTokenizer.from_folder(tmp_path)


def test_batch_is_left_padded_with_the_pad_token(tiny):
    tokenizer = BackboneTokenizer.from_folder(tiny[0])
    short, long = "pick the pear", INSTRUCTION
    input_ids, attention_mask = tokenizer.encode_left_padded([short, long])
    short_ids, long_ids = tokenizer.encode(short), tokenizer.encode(long)
    pad = input_ids.shape[1] - len(short_ids)
    assert input_ids.shape == (2, len(long_ids)) and pad > 0
    assert (input_ids[0, :pad] == tokenizer.pad_token_id).all()
    assert input_ids[0, pad:].tolist() == short_ids
    assert attention_mask[0].tolist() == [0] * pad + [1] * len(short_ids)
    assert input_ids[1].tolist() == long_ids and attention_mask[1].all()
