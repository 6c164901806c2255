# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The keys of upstream's observation dict and of a checkpoint's modality and statistics tables: the one place they
are spelled.

    {VIDEO: {camera key: uint8 [B, T, H, W, 3]}, STATE: {group: float32 [B, T, D]}, LANGUAGE: {language key: [[str]]}}

Camera keys, groups and the language key inside LANGUAGE are the checkpoint's (processor_config.json); read them from
the policy (`video_keys`, `state_dims`, `language_key`), or build the dict with `Gr00tPolicy.observation`.
"""
VIDEO = "video"
STATE = "state"
LANGUAGE = "language"
ACTION = "action"
RELATIVE_ACTION = "relative_action"  # statistics.json: per-step ranges of the actions relative to the state
OBSERVATION_MODALITIES = (VIDEO, STATE, LANGUAGE)
