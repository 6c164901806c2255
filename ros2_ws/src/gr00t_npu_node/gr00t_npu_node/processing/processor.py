# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`Gr00tProcessor`: upstream's observation dict -> model tensors, and the model's action chunk -> joint targets,
for one embodiment of a GR00T N1.6 checkpoint folder (processor_config.json, statistics.json,
embodiment_id.json) and its backbone folder (tokenizer files, config.json).

    processor = Gr00tProcessor.from_folders(checkpoint_dir, backbone_dir, "gr1")
    inputs = processor(observation)                  # ModelInputs
    actions = processor.decode(action_pred, observation)   # {group: float32 [B, horizon, D]}
    normalized = processor.encode(actions, observation)    # decode's inverse: float32 [B, horizon, action width]

Observation: upstream's dict (`keys`), with this checkpoint's camera keys, state groups and language key. A
malformed one raises ValueError naming the problem and the fix.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from gr00t_npu_node.keys import ACTION, LANGUAGE, OBSERVATION_MODALITIES, STATE, VIDEO
from gr00t_npu_node.model.gr00t import ModelInputs
from gr00t_npu_node.processing.image import ImagePreprocessor, image_token_count
from gr00t_npu_node.processing.state_action import (
    ActionDecoder,
    ModalityConfig,
    NormalizationSettings,
    StateEncoder,
)
from gr00t_npu_node.processing.text import BackboneTokenizer, formalize_language

# Upstream's table, used when a checkpoint has no embodiment_id.json (upstream falls back to it the same way).
EMBODIMENT_TAG_TO_PROJECTOR_INDEX = {
    "robocasa_panda_omron": 13,
    "gr1": 20,
    "behavior_r1_pro": 24,
    "unitree_g1": 8,
    "libero_panda": 2,
    "oxe_google": 0,
    "oxe_widowx": 1,
    "oxe_droid": 16,
    "new_embodiment": 10,
}


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; a GR00T N1.6 checkpoint folder has it beside config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error


class Gr00tProcessor:
    """Pre/post-processing of one embodiment; see the module docstring. Build with `from_folders`."""

    def __init__(
        self,
        embodiment: str,
        embodiment_id: int,
        modalities: Mapping[str, ModalityConfig],
        statistics: Mapping[str, Any],
        kwargs: Mapping[str, Any],
        tokenizer: BackboneTokenizer,
    ):
        where = f"processor_config.json modality_configs[{embodiment!r}]"
        missing = [m for m in (*OBSERVATION_MODALITIES, ACTION) if m not in modalities]
        if missing:
            raise ValueError(f"{where} lacks the modalities {missing}")
        if kwargs.get("model_type", "eagle") != "eagle":
            raise ValueError(
                f"processor_config.json model_type {kwargs['model_type']!r} is not supported (only 'eagle')"
            )
        if not kwargs.get("use_albumentations", True):
            raise ValueError(
                "processor_config.json has use_albumentations=false (the torchvision image path), which this node "
                "does not implement; GR00T N1.6 checkpoints use the albumentations path"
            )
        language = modalities[LANGUAGE]
        if len(language.modality_keys) != 1 or len(language.delta_indices) != 1:
            raise ValueError(f"{where}.language must have exactly one key and one delta index (as upstream requires)")
        self.embodiment = embodiment
        self.embodiment_id = int(embodiment_id)
        self.tokenizer = tokenizer
        self._video = modalities[VIDEO]
        self._state = modalities[STATE]
        self.language_key = language.modality_keys[0]
        self.formalize_language = bool(kwargs.get("formalize_language", True))
        settings = NormalizationSettings(
            use_percentiles=bool(kwargs.get("use_percentiles", False)),
            clip_outliers=bool(kwargs.get("clip_outliers", True)),
            apply_sincos_state_encoding=bool(kwargs.get("apply_sincos_state_encoding", False)),
            use_relative_action=bool(kwargs.get("use_relative_action", False)),
        )
        self.state_encoder = StateEncoder(
            self._state, statistics, settings, int(kwargs.get("max_state_dim", 29)), f"{where}.state"
        )
        self.action_decoder = ActionDecoder(
            modalities[ACTION], statistics, settings, self.state_encoder.dims, f"{where}.action"
        )
        max_action_dim = int(kwargs.get("max_action_dim", 29))
        if self.action_decoder.width > max_action_dim:
            raise ValueError(
                f"{where}.action is {self.action_decoder.width} wide but max_action_dim is {max_action_dim}"
            )
        self.images = ImagePreprocessor(*_image_geometry(kwargs))

    @classmethod
    def from_folders(
        cls,
        checkpoint_dir: str | Path,
        backbone_dir: str | Path,
        embodiment: str,
        image_token_index: Optional[int] = None,
    ) -> "Gr00tProcessor":
        """`image_token_index` (the model's, from the backbone config.json), when given, is checked against the
        tokenizer's."""
        checkpoint_dir, backbone_dir = Path(checkpoint_dir), Path(backbone_dir)
        id_file = checkpoint_dir / "embodiment_id.json"
        if id_file.is_file():
            ids, id_source = _read_json(id_file), id_file.name
        else:
            ids, id_source = EMBODIMENT_TAG_TO_PROJECTOR_INDEX, "upstream's built-in embodiment table"
        if embodiment not in ids:
            raise ValueError(f"unknown embodiment {embodiment!r}; {id_source} knows: {', '.join(sorted(ids))}")
        config = _read_json(checkpoint_dir / "processor_config.json")
        kwargs = config.get("processor_kwargs")
        if not isinstance(kwargs, dict):
            raise ValueError(f"{checkpoint_dir / 'processor_config.json'} has no 'processor_kwargs' object")
        all_modalities = kwargs.get("modality_configs", {})
        statistics = _read_json(checkpoint_dir / "statistics.json")
        absent = [
            name for name, table in (("processor_config.json", all_modalities), ("statistics.json", statistics))
            if embodiment not in table
        ]
        if absent:
            raise ValueError(
                f"embodiment {embodiment!r} has an id in {id_source} but no entry in {' or '.join(absent)} of "
                f"{checkpoint_dir}; this checkpoint was not trained for it (configured: "
                f"{', '.join(sorted(all_modalities)) or 'none'})"
            )
        where = f"processor_config.json modality_configs[{embodiment!r}]"
        modalities = {
            name: ModalityConfig.from_json(value, f"{where}.{name}")
            for name, value in all_modalities[embodiment].items()
        }
        tokenizer = BackboneTokenizer.from_folder(backbone_dir, image_token_index)
        return cls(embodiment, ids[embodiment], modalities, statistics[embodiment], kwargs, tokenizer)

    # ---- what the policy and the ROS layer read ---------------------------------------------------------------
    @property
    def video_keys(self) -> list[str]:
        return list(self._video.modality_keys)

    @property
    def state_dims(self) -> dict[str, int]:
        return dict(self.state_encoder.dims)

    @property
    def action_dims(self) -> dict[str, int]:
        return dict(self.action_decoder.dims)

    @property
    def action_horizon(self) -> int:
        return self.action_decoder.horizon

    @property
    def action_columns(self) -> dict[str, slice]:
        """Where each action group's dims lie in the model's (normalized) action vector."""
        return dict(self.action_decoder.columns)

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def image_token_index(self) -> int:
        return self.tokenizer.image_token_id

    def observation(
        self, frames: Mapping[str, np.ndarray], states: Mapping[str, Any], instruction: str
    ) -> dict[str, dict[str, Any]]:
        """Upstream's observation dict for one sample at one time step: `frames` {camera key: uint8 [H, W, 3]},
        `states` {group: [D]} (cast to float32), `instruction` under this checkpoint's language key. The keys are
        checked when the observation is processed."""
        return {
            VIDEO: {key: frame[None, None] for key, frame in frames.items()},
            STATE: {group: np.asarray(value, dtype=np.float32)[None, None] for group, value in states.items()},
            LANGUAGE: {self.language_key: [[instruction]]},
        }

    # ---- processing -------------------------------------------------------------------------------------------
    def __call__(self, observation: Mapping[str, Any]) -> ModelInputs:
        batch, instructions = self._validate(observation)
        videos, states = observation[VIDEO], observation[STATE]
        state = self.state_encoder({g: states[g] for g in self._state.modality_keys})
        pixels, prompts = [], []
        for sample in range(batch):
            frames = [
                self.images(videos[key][sample, t])
                for t in range(len(self._video.delta_indices))
                for key in self._video.modality_keys
            ]
            sizes = {frame.shape[1:] for frame in frames}
            if len(sizes) > 1:
                raise ValueError(
                    f"the cameras {self.video_keys} give images of different sizes {sorted(sizes)} after resizing; "
                    "the vision encoder takes one size per call: give every camera the same aspect ratio"
                )
            pixels += frames
            prompts.append(self.tokenizer.prompt(instructions[sample], [image_token_count(f) for f in frames]))
        input_ids, attention_mask = self.tokenizer.encode_left_padded(prompts)
        input_ids_t = torch.from_numpy(input_ids)
        return ModelInputs(
            input_ids=input_ids_t,
            attention_mask=torch.from_numpy(attention_mask),
            pixel_values=torch.from_numpy(np.stack(pixels)),
            image_mask=input_ids_t == self.tokenizer.image_token_id,
            state=torch.from_numpy(state),
            embodiment_id=torch.full((batch,), self.embodiment_id, dtype=torch.int64),
        )

    def decode(self, action_pred: np.ndarray | torch.Tensor, observation: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Normalized model actions [B, H_model, max_action_dim] -> {group: float32 [B, action_horizon, D]} in the
        robot's units, relative groups made absolute with the observation's last raw state."""
        if isinstance(action_pred, torch.Tensor):
            action_pred = action_pred.detach().float().cpu().numpy()
        states = self._observation_states(observation, "decode")
        batch = self._validate_states(states, batch=None)
        if action_pred.shape[0] != batch:
            raise ValueError(f"action_pred has batch {action_pred.shape[0]} but the observation's state has {batch}")
        return self.action_decoder(action_pred, states)

    def encode(self, actions: Mapping[str, np.ndarray], observation: Mapping[str, Any]) -> np.ndarray:
        """`decode`'s inverse: {group: [B, action_horizon, D]} in the robot's units (any subset of the action groups)
        -> normalized actions float32 [B, action_horizon, width] (columns `action_columns`; absent groups 0), relative
        groups taken relative to the observation's last raw state, each step normalized with its step's statistics."""
        states = self._observation_states(observation, "encode")
        batch = self._validate_states(states, batch=None)
        for group, values in actions.items():
            if np.shape(values)[:1] != (batch,):
                raise ValueError(
                    f"actions of {group!r} have shape {list(np.shape(values))}; the observation's batch is {batch}"
                )
            if not np.isfinite(values).all():
                raise ValueError(f"actions of {group!r} contain NaN or inf; give finite joint positions")
        return self.action_decoder.encode(actions, states)

    @staticmethod
    def _observation_states(observation: Mapping[str, Any], what: str) -> Mapping[str, Any]:
        states = observation.get(STATE) if isinstance(observation, Mapping) else None
        if not isinstance(states, Mapping):
            raise ValueError(f"{what} needs the observation the actions belong to (with its {STATE!r} dict)")
        return states

    # ---- validation -------------------------------------------------------------------------------------------
    def _validate(self, observation: Mapping[str, Any]) -> tuple[int, list[str]]:
        """Checks the observation against this embodiment: (its batch size, its instructions as the prompt takes
        them)."""
        if not isinstance(observation, Mapping):
            raise ValueError(
                f"observation must be a dict with keys {list(OBSERVATION_MODALITIES)}, got {type(observation).__name__}"
            )
        for modality in OBSERVATION_MODALITIES:
            if not isinstance(observation.get(modality), Mapping):
                kind = type(observation.get(modality)).__name__
                raise ValueError(f"observation[{modality!r}] must be a dict; got {kind}")
        batch = self._validate_videos(observation[VIDEO])
        self._validate_states(observation[STATE], batch)
        return batch, self._instructions(observation[LANGUAGE], batch)

    def _check_keys(self, given: Mapping[str, Any], expected: tuple[str, ...], what: str) -> None:
        missing = [k for k in expected if k not in given]
        extra = [k for k in given if k not in expected]
        if missing or extra:
            problems = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
            raise ValueError(
                f"observation[{what!r}] has {' and '.join(problems)} keys; embodiment {self.embodiment!r} expects "
                f"exactly {list(expected)}"
            )

    def _validate_videos(self, videos: Mapping[str, Any]) -> int:
        self._check_keys(videos, self._video.modality_keys, VIDEO)
        horizon = len(self._video.delta_indices)
        batch = None
        for key in self._video.modality_keys:
            video = videos[key]
            name = f"observation[{VIDEO!r}][{key!r}]"
            if not isinstance(video, np.ndarray):
                raise ValueError(f"{name} must be a numpy array uint8 [B, T, H, W, 3]; got {type(video).__name__}")
            if video.dtype != np.uint8:
                raise ValueError(f"{name} has dtype {video.dtype}; it must be uint8 RGB (0..255): convert the frame")
            if video.ndim != 5:
                raise ValueError(f"{name} has shape {list(video.shape)}; it must be 5-D [B, T, H, W, 3]")
            if video.shape[-1] != 3:
                raise ValueError(
                    f"{name} has {video.shape[-1]} channels; it must be RGB with 3 (drop alpha, expand gray)"
                )
            if video.shape[1] != horizon:
                raise ValueError(
                    f"{name} has T={video.shape[1]} frames; embodiment {self.embodiment!r} takes T={horizon}"
                )
            if min(video.shape[:4]) < 1:
                raise ValueError(f"{name} is empty (shape {list(video.shape)})")
            if batch is not None and video.shape[0] != batch:
                raise ValueError(f"{name} has batch {video.shape[0]} but other modalities have {batch}")
            batch = video.shape[0]
        return batch

    def _validate_states(self, states: Mapping[str, Any], batch: int | None) -> int:
        self._check_keys(states, self._state.modality_keys, STATE)
        horizon = len(self._state.delta_indices)
        for group, width in self.state_encoder.dims.items():
            state = states[group]
            name = f"observation[{STATE!r}][{group!r}]"
            if not isinstance(state, np.ndarray) or state.dtype != np.float32:
                kind = state.dtype if isinstance(state, np.ndarray) else type(state).__name__
                raise ValueError(f"{name} must be a float32 numpy array [B, T, {width}]; got {kind}")
            if state.ndim != 3 or state.shape[1:] != (horizon, width):
                raise ValueError(f"{name} has shape {list(state.shape)}; expected [B, {horizon}, {width}]")
            if batch is not None and state.shape[0] != batch:
                raise ValueError(f"{name} has batch {state.shape[0]} but other modalities have {batch}")
            batch = state.shape[0]
            if not np.isfinite(state).all():
                raise ValueError(f"{name} contains NaN or inf; send finite joint positions")
        if batch is None or batch < 1:
            raise ValueError(f"observation[{STATE!r}] has an empty batch")
        return batch

    def _instructions(self, language: Mapping[str, Any], batch: int) -> list[str]:
        """The batch's instructions, checked and normalized as the checkpoint asks."""
        self._check_keys(language, (self.language_key,), LANGUAGE)
        texts = language[self.language_key]
        name = f"observation[{LANGUAGE!r}][{self.language_key!r}]"
        if not isinstance(texts, list) or not all(isinstance(item, list) for item in texts):
            raise ValueError(f"{name} must be a list (batch) of lists (one instruction each): [['pick the pear']]")
        if len(texts) != batch:
            raise ValueError(f"{name} has {len(texts)} entries but the batch is {batch}")
        instructions = []
        for index, item in enumerate(texts):
            if len(item) != 1 or not isinstance(item[0], str):
                raise ValueError(f"{name}[{index}] must hold exactly one instruction string; got {item!r}")
            text = self._normalized(item[0])
            if not text.strip():
                raise ValueError(
                    f"{name}[{index}] is {item[0]!r}, which is empty once cleaned (lower case, punctuation removed); "
                    "send a task instruction in words"
                )
            instructions.append(text)
        return instructions

    def instruction_token_count(self, text: str) -> int:
        """Tokens the instruction takes in the prompt, after the checkpoint's text normalization."""
        return len(self.tokenizer.encode(self._normalized(text)))

    def _normalized(self, text: str) -> str:
        return formalize_language(text) if self.formalize_language else text


def _image_geometry(kwargs: Mapping[str, Any]) -> tuple[int, float]:
    """(shortest edge, crop fraction) as upstream derives them: its defaults for absent keys, the target/crop
    sizes for keys set to null."""
    target, crop = kwargs.get("image_target_size"), kwargs.get("image_crop_size")
    edge, fraction = kwargs.get("shortest_image_edge", 512), kwargs.get("crop_fraction", 0.95)
    if fraction is None:
        if not target or not crop:
            raise ValueError("processor_config.json gives neither crop_fraction nor image_crop_size/image_target_size")
        fraction = crop[0] / target[0]
    if edge is None:
        if not target:
            raise ValueError("processor_config.json gives neither shortest_image_edge nor image_target_size")
        edge = target[0]
    return int(edge), float(fraction)
