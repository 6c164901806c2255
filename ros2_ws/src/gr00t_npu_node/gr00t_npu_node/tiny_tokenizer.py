# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The tiny checkpoint's tokenizer: a small byte-level BPE tokenizer of the released backbone's kind (Qwen2
pre-tokenization, Qwen3's added tokens), trained on an embedded corpus of robot instructions and written in the
released backbone folder's file formats, so that it loads through the same `BackboneTokenizer.from_folder`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import pre_tokenizers, trainers

from gr00t_npu_node.processing.text import (
    EAGLE_CHAT_TEMPLATE,
    EOS_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    QWEN_ADDED_TOKENS,
    qwen2_bpe,
)

# Upper bound for the trainer: the embedded corpus runs out of pairs seen twice first (about 1360 tokens).
TINY_BPE_VOCAB_SIZE = 1536
_VERBS = (
    "pick", "place", "put", "move", "push", "pull", "open", "close", "lift", "lower", "grasp", "grab", "release",
    "drop", "hold", "carry", "rotate", "turn", "slide", "stack", "pour", "fill", "empty", "wipe", "clean", "fold",
    "hang", "insert", "remove", "plug", "press", "switch", "flip", "shake", "stir", "scoop", "sweep", "hand",
    "give", "fetch", "bring", "take", "set", "arrange", "sort", "align", "squeeze", "twist", "tilt", "reach",
    "touch", "cover", "load", "unload", "cut", "slice", "peel", "wash", "dry", "tidy", "store", "return",
)
_OBJECTS = (
    "apple", "pear", "banana", "orange", "lemon", "peach", "plum", "grape", "cherry", "tomato", "potato", "carrot",
    "onion", "pepper", "cucumber", "eggplant", "corn", "bread", "cheese", "egg", "milk", "juice", "water", "soda",
    "can", "bottle", "cup", "mug", "glass", "bowl", "plate", "dish", "pan", "pot", "kettle", "spoon", "fork",
    "knife", "spatula", "ladle", "towel", "sponge", "napkin", "box", "basket", "bag", "jar", "lid", "drawer",
    "door", "cabinet", "fridge", "microwave", "oven", "toaster", "faucet", "button", "handle", "knob", "block",
    "cube", "ball", "toy", "book", "pen", "pencil", "marker", "notebook", "phone", "remote", "laptop", "keyboard",
    "mouse", "cable", "charger", "battery", "screw", "bolt", "hammer", "wrench", "screwdriver", "tape", "glue",
    "scissors", "brush", "shoe", "sock", "shirt", "hat", "cloth", "blanket", "pillow", "plant", "flower", "vase",
    "lamp", "clock", "bin", "tray", "rack", "hook", "ring", "coin", "key", "wallet", "card", "paper", "bucket",
    "avocado", "mango", "pineapple", "melon", "watermelon", "strawberry", "blueberry", "kiwi", "lime", "garlic",
    "ginger", "lettuce", "cabbage", "broccoli", "mushroom", "pumpkin", "sausage", "chicken", "fish", "rice",
    "pasta", "noodles", "cereal", "cookie", "cake", "donut", "sandwich", "burger", "pizza", "chocolate", "candy",
    "sugar", "salt", "butter", "yogurt", "ketchup", "mustard", "honey", "coffee", "tea", "teapot", "thermos",
    "canister", "container", "lunchbox", "cutting board", "colander", "whisk", "grater", "peeler", "tongs",
    "chopsticks", "teaspoon", "saucer", "platter", "skillet", "wok", "blender", "mixer", "scale", "timer",
    "thermometer", "flashlight", "candle", "mirror", "picture", "frame", "poster", "calendar", "envelope",
    "folder", "binder", "stapler", "eraser", "ruler", "calculator", "headphones", "speaker", "camera", "tablet",
    "monitor", "printer", "router", "drill", "saw", "pliers", "clamp", "level", "nail", "washer", "spring",
    "gear", "pulley", "sensor", "motor", "wheel", "tire", "helmet", "glove", "mitten", "scarf", "jacket",
    "sweater", "trousers", "skirt", "dress", "sandal", "boot", "slipper", "umbrella", "backpack", "suitcase",
    "puzzle", "robot", "teddy bear", "rubber duck", "marble", "dice", "domino", "kite", "frisbee", "racket",
)
_PLACES = (
    "table", "counter", "shelf", "drawer", "cabinet", "sink", "stove", "fridge", "floor", "chair", "sofa", "bed",
    "desk", "tray", "plate", "bowl", "basket", "box", "bin", "rack", "cupboard", "countertop", "windowsill",
    "workbench", "conveyor", "pallet", "cutting board", "dish rack", "microwave", "oven", "kitchen", "room",
    "bathroom", "bedroom", "garage", "hallway", "garden", "balcony", "pantry", "closet", "wardrobe", "dresser",
    "nightstand", "bookcase", "ottoman", "bench", "stool", "crate", "cart", "trolley", "locker", "mat",
)
_ADJECTIVES = (
    "red", "green", "blue", "yellow", "black", "white", "purple", "pink", "brown", "gray", "small", "large", "big",
    "little", "tall", "short", "empty", "full", "left", "right", "top", "bottom", "middle", "front", "back",
    "wooden", "metal", "plastic", "clean", "dirty", "soft", "hard", "round", "square", "heavy", "light", "closed",
    "striped", "dotted", "shiny", "transparent", "ceramic", "paper", "cardboard", "rubber", "leather", "woolen",
    "cotton", "silver", "golden", "dark", "bright", "narrow", "wide", "thin", "thick", "fresh", "ripe", "frozen",
    "warm", "cold", "hot", "wet", "sticky", "fragile", "broken", "new", "old", "first", "second", "third", "last",
)
_PREPOSITIONS = (
    "on", "in", "into", "onto", "from", "to", "under", "over", "next to", "behind", "in front of", "inside",
    "beside", "between", "above", "below", "near", "off",
)
_PROSE = (
    "You are a helpful assistant. The robot looks at the scene through its camera and reads the instruction.",
    "A humanoid robot has two arms, two hands with six fingers each and a waist that can bend and turn.",
    "Each arm has seven joints: the shoulder, the elbow and the wrist move together to reach a target.",
    "The policy predicts a chunk of sixteen future actions, one for every step of fifty milliseconds.",
    "If the object is too far away, the robot should first move closer and then try again carefully.",
    "Please be gentle with fragile things such as eggs, glasses and plates, and never drop them.",
    "When the task is finished, the hands open slowly and the arms return to their resting position.",
    "The system checks every message, and the user can stop the robot at any time by pressing the button.",
    "Numbers like 1, 2, 3, 10, 16, 29, 42, 100 and 2024 are written with digits; angles are in radians.",
    "Questions? Answers! Commas, colons: semicolons; quotes \"like this\" and 'like that' (with brackets).",
    "Vision and language are combined: the model attends to image patches while it reads the words.",
    "During training, demonstrations were recorded by people who teleoperated the robot with a headset.",
    "Safety matters most; whenever something unexpected happens, the controller holds the current pose.",
    "The gripper closes around the handle, the wrist rotates by a quarter turn, and the door swings open.",
    "It's important that the robot doesn't collide with people, pets, furniture or the walls nearby.",
    "We'll measure latency, throughput and memory usage on several devices before the final deployment.",
    "They've calibrated the cameras so that depth, color and position estimates agree with each other.",
    "Although the kitchen was crowded, the assistant managed to serve breakfast without spilling anything.",
    "Morning, afternoon, evening and night; Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday.",
    "January, February, March, April, May, June, July, August, September, October, November, December.",
    "One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, twenty, hundred, thousand.",
    "North, south, east and west; up, down, forward, backward, clockwise and counterclockwise directions.",
    "Engineers, researchers, students and operators work together in the laboratory every single week.",
    "Temperature, pressure, velocity, acceleration, torque and force are measured by different sensors.",
    "Learning from experience, the agent improves its behaviour and generalizes to unfamiliar situations.",
)


def _tiny_corpus() -> list[str]:
    """Deterministic robot-instruction sentences plus a little prose, for the tiny tokenizer's BPE training."""
    lines = list(_PROSE)
    for i in range(len(_VERBS) * len(_ADJECTIVES)):
        verb, adjective = _VERBS[i % len(_VERBS)], _ADJECTIVES[(i * 7) % len(_ADJECTIVES)]
        item, other = _OBJECTS[(i * 5) % len(_OBJECTS)], _OBJECTS[(i * 11 + 3) % len(_OBJECTS)]
        place, target = _PLACES[(i * 3) % len(_PLACES)], _PLACES[(i * 13 + 1) % len(_PLACES)]
        preposition = _PREPOSITIONS[i % len(_PREPOSITIONS)]
        lines.append(f"{verb} the {adjective} {item} from the {place} and place it {preposition} the {target}")
        lines.append(f"{verb} the {other} {preposition} the {adjective} {place}")
    return lines


def write_tiny_tokenizer(folder: str | Path) -> dict[str, int]:
    """Trains a small byte-level BPE tokenizer (Qwen2 pre-tokenization) on an embedded corpus and writes it to
    `folder` in the released backbone's formats (vocab.json, merges.txt, added_tokens.json,
    special_tokens_map.json, tokenizer_config.json, chat_template.json), with Qwen3's added tokens appended
    after the BPE vocabulary. Deterministic. Returns vocab_size (with added tokens), image_token_index and
    pad_token_id for the backbone's config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = qwen2_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_BPE_VOCAB_SIZE, min_frequency=2, show_progress=False, special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_tiny_corpus(), trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    vocab: dict[str, int] = dict(sorted(model["vocab"].items(), key=lambda item: item[1]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    added = {content: len(vocab) + offset for offset, (content, _) in enumerate(QWEN_ADDED_TOKENS)}
    specials = [content for content, special in QWEN_ADDED_TOKENS if special and content != PAD_TOKEN]
    token_flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}

    def write(name: str, value: Any) -> None:
        (folder / name).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    write("added_tokens.json", dict(sorted(added.items())))
    write(
        "special_tokens_map.json",
        {
            "additional_special_tokens": specials,
            "eos_token": {"content": EOS_TOKEN, **token_flags},
            "pad_token": {"content": PAD_TOKEN, **token_flags},
        },
    )
    write(
        "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_eos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": {
                str(added[content]): {"content": content, **token_flags, "special": special}
                for content, special in QWEN_ADDED_TOKENS
            },
            "additional_special_tokens": specials,
            "bos_token": None,
            "clean_up_tokenization_spaces": False,
            "eos_token": EOS_TOKEN,
            "errors": "replace",
            "model_max_length": 32768,
            "pad_token": PAD_TOKEN,
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    write("chat_template.json", {"chat_template": EAGLE_CHAT_TEMPLATE})
    return {
        "vocab_size": len(vocab) + len(added),
        "image_token_index": added[IMAGE_TOKEN],
        "pad_token_id": added[PAD_TOKEN],
    }
