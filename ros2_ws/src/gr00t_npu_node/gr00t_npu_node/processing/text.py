# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The backbone's text side: the Qwen2 byte-level BPE tokenizer built with `tokenizers` from a backbone folder,
the instruction clean-up, the Eagle chat prompt with its image placeholders, and left-padded batch encoding.

The tokenizer reproduces `Qwen2TokenizerFast` as transformers builds it from `vocab.json` + `merges.txt` (NFC,
Qwen2's split regex, byte-level BPE, added tokens matched before BPE).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import jinja2
import numpy as np
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

QWEN2_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
IMAGE_TOKEN = "<IMG_CONTEXT>"
IMAGE_START_TOKEN = "<img>"
IMAGE_END_TOKEN = "</img>"
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
# Eagle-Block2A-2B-v2's processor template (chat_template.json): text first, then one <image-k> per image.
EAGLE_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "<image {{ image_count.value }}>{% endif %}<image-{{ image_count.value }}>{% elif content['type'] == 'video' or "
    "'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}<video "
    "{{ video_count.value }}>{% endif %}<video-{{ video_count.value }}>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)
# Qwen3's added tokens as the released backbone lists them after its BPE vocabulary: (content, special).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False), ("<IMG_CONTEXT>", True), ("<img>", True), ("</img>", True),
    ("<box>", True), ("</box>", True), ("<quad>", True), ("</quad>", True), ("<ref>", True), ("</ref>", True),
    ("<interval>", True), ("</interval>", True),
)
_PLACEHOLDER = re.compile(r"<(image|video)-(\d+)>")


def formalize_language(text: str) -> str:
    """Upstream's `formalize_language`: lower case, then drop every character that is neither word nor space."""
    return re.sub(r"[^\w\s]", "", text.lower())


def expand_image_placeholders(text: str, tokens_per_image: Sequence[int]) -> str:
    """`<image-k>` -> `<image k><img>` + `<IMG_CONTEXT>` x N_k + `</img>`, as the Eagle processor does it."""

    def replace(match: re.Match) -> str:
        kind, index = match.group(1), int(match.group(2))
        if kind != "image":
            raise ValueError(f"prompt contains a video placeholder {match.group(0)!r}; only images are supported")
        if not 1 <= index <= len(tokens_per_image):
            raise ValueError(
                f"prompt refers to {match.group(0)!r} but only {len(tokens_per_image)} image(s) were given"
            )
        count = tokens_per_image[index - 1]
        return f"<image {index}>{IMAGE_START_TOKEN}{IMAGE_TOKEN * count}{IMAGE_END_TOKEN}"

    return _PLACEHOLDER.sub(replace, text)


def _raise_template_error(message: str) -> None:
    raise jinja2.TemplateError(message)


def compile_chat_template(source: str) -> jinja2.Template:
    """Compiles a chat template the way transformers does (sandboxed, trim_blocks, lstrip_blocks)."""
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    environment.globals["raise_exception"] = _raise_template_error
    return environment.from_string(source)


def render_prompt(template: jinja2.Template, language: str, num_images: int) -> str:
    """One user turn: the instruction then `num_images` images, no generation prompt (upstream's conversation)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": language}]
    content += [{"type": "image", "image": index} for index in range(num_images)]
    return template.render(messages=[{"role": "user", "content": content}], add_generation_prompt=False)


def _configure_qwen2(tokenizer: Tokenizer) -> None:
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)


def qwen2_bpe(vocab: dict[str, int] | None = None, merges: list[tuple[str, str]] | None = None) -> Tokenizer:
    model = models.BPE(
        vocab=vocab, merges=merges, dropout=None, unk_token=None, continuing_subword_prefix="",
        end_of_word_suffix="", fuse_unk=False, byte_fallback=False,
    )
    tokenizer = Tokenizer(model)
    _configure_qwen2(tokenizer)
    return tokenizer


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); re-copy the backbone tokenizer files") from error


def _read_merges(path: Path) -> list[tuple[str, str]]:
    merges = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        line = line.strip()
        if not line or (number == 0 and line.startswith("#version:")):
            continue
        pair = line.split()
        if len(pair) != 2:
            raise ValueError(f"{path} line {number + 1} is {line!r}; a merge line holds exactly two tokens")
        merges.append((pair[0], pair[1]))
    return merges


def _token_content(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _added_tokens(folder: Path, config: dict, special_map: dict) -> list[tuple[int, AddedToken]]:
    """Added tokens by id, with their flags: `added_tokens_decoder` of tokenizer_config.json when present (as
    transformers prefers), else `added_tokens.json` with the special-token names of special_tokens_map.json."""
    decoder = config.get("added_tokens_decoder")
    if decoder:
        return sorted(
            (
                int(token_id),
                AddedToken(
                    entry["content"], single_word=entry.get("single_word", False), lstrip=entry.get("lstrip", False),
                    rstrip=entry.get("rstrip", False), normalized=entry.get("normalized", False),
                    special=entry.get("special", False),
                ),
            )
            for token_id, entry in decoder.items()
        )
    path = folder / "added_tokens.json"
    if not path.is_file():
        return []
    special = {_token_content(v) for k, v in special_map.items() if k != "additional_special_tokens"}
    special |= {_token_content(v) for v in special_map.get("additional_special_tokens", [])}
    return sorted(
        (int(token_id), AddedToken(content, normalized=False, special=content in special))
        for content, token_id in _read_json(path).items()
    )


class BackboneTokenizer:
    """The backbone's tokenizer and prompt format. Build it with `from_folder`."""

    def __init__(self, tokenizer: Tokenizer, chat_template: str, pad_token: str):
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self._template = compile_chat_template(chat_template)
        pad_id = tokenizer.token_to_id(pad_token)
        image_id = tokenizer.token_to_id(IMAGE_TOKEN)
        if pad_id is None:
            raise ValueError(f"the pad token {pad_token!r} is not in the tokenizer's vocabulary")
        if image_id is None:
            raise ValueError(f"the image token {IMAGE_TOKEN!r} is not in the tokenizer; it must be an added token")
        self.pad_token_id: int = pad_id
        self.image_token_id: int = image_id

    @classmethod
    def from_folder(cls, folder: str | Path, image_token_index: Optional[int] = None) -> "BackboneTokenizer":
        """Loads vocab.json, merges.txt, the added tokens (tokenizer_config.json / added_tokens.json),
        special_tokens_map.json and chat_template.json. `image_token_index` (the backbone config's), when given, must
        equal the tokenizer's `<IMG_CONTEXT>` id."""
        folder = Path(folder)
        missing = [n for n in ("vocab.json", "merges.txt", "chat_template.json") if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"backbone folder {folder} lacks {', '.join(missing)}: it needs the tokenizer files of "
                "nvidia/Eagle-Block2A-2B-v2 (vocab.json, merges.txt, tokenizer_config.json, chat_template.json)"
            )
        config = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
        special_path = folder / "special_tokens_map.json"
        special_map = _read_json(special_path) if special_path.is_file() else {}
        vocab = _read_json(folder / "vocab.json")
        tokenizer = qwen2_bpe(vocab, _read_merges(folder / "merges.txt"))
        for token_id, token in _added_tokens(folder, config, special_map):
            if token_id < len(vocab) and vocab.get(token.content) == token_id:
                continue
            if token.special:
                tokenizer.add_special_tokens([token])
            else:
                tokenizer.add_tokens([token])
            given = tokenizer.token_to_id(token.content)
            if given != token_id:
                raise ValueError(
                    f"added token {token.content!r} has id {token_id} in {folder} but lands on id {given}: added "
                    "token ids must continue the vocabulary without gaps"
                )
        pad_token = _token_content(special_map.get("pad_token")) or _token_content(config.get("pad_token"))
        if not pad_token:
            raise ValueError(f"{folder} names no pad_token (tokenizer_config.json / special_tokens_map.json)")
        chat_template = _read_json(folder / "chat_template.json").get("chat_template")
        if not isinstance(chat_template, str):
            raise ValueError(f"{folder / 'chat_template.json'} has no 'chat_template' string")
        result = cls(tokenizer, chat_template, pad_token)
        if image_token_index is not None and image_token_index != result.image_token_id:
            raise ValueError(
                f"the backbone config.json says image_token_index={image_token_index} but the tokenizer in {folder} "
                f"gives {IMAGE_TOKEN!r} id {result.image_token_id}: the config and tokenizer files come from different "
                "backbones; use the matching pair"
            )
        return result

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def prompt(self, language: str, tokens_per_image: Sequence[int]) -> str:
        """The full model prompt for one sample: chat template with its images expanded to image tokens."""
        text = render_prompt(self._template, language, len(tokens_per_image))
        return expand_image_placeholders(text, tokens_per_image)

    def encode_left_padded(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Batch encode padded on the left with the pad token to the longest: (input_ids, attention_mask) int64."""
        encoded = [self.encode(text) for text in texts]
        length = max(len(ids) for ids in encoded)
        input_ids = np.full((len(encoded), length), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(encoded), length), dtype=np.int64)
        for row, ids in enumerate(encoded):
            input_ids[row, length - len(ids):] = ids
            attention_mask[row, length - len(ids):] = 1
        return input_ids, attention_mask
