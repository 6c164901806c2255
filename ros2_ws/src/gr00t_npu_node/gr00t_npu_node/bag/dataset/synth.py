# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""A small synthetic episode (moving colour pattern, smooth joint motion inside the configured limits, an
instruction), generated deterministically so the demo and tests have a bag without any data set."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gr00t_npu_node.bag.dataset.convert import ConvertResult, write_episode_bag
from gr00t_npu_node.bag.dataset.episode import Episode
from gr00t_npu_node.bag.dataset.layout import JointLayout, Topics

SYNTH_INSTRUCTION = "pick the pear from the counter and place it in the plate"
SYNTH_EPISODE_INDEX = 999  # keeps the synthetic bag's time base apart from the data set's episodes


def _pattern_frames(count: int, size: int, fps: float) -> Iterator[np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        phase = 2 * np.pi * i / fps * 0.5
        red = 0.5 + 0.5 * np.sin(2 * np.pi * 2 * x + phase)
        green = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * y - phase)
        blue = ((np.floor(x * 8) + np.floor(y * 8) + i // 10) % 2).astype(np.float32)
        yield (np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)


def synthetic_episode(layout: JointLayout, *, seconds: float = 4.0, fps: float = 20.0,
                      image_size: int = 256) -> Episode:
    """Joint positions oscillate around the middle of each configured range; the action leads the state by a step."""
    joint_names = tuple(j for joints in layout.groups.values() for j in joints)
    limits = layout.limits(tuple(layout.groups))
    low = np.array([limits.get(j, (-0.5, 0.5))[0] for j in joint_names])
    high = np.array([limits.get(j, (-0.5, 0.5))[1] for j in joint_names])
    count = int(round(seconds * fps))
    timestamps = np.arange(count + 1) / fps
    phases = np.linspace(0, np.pi, len(joint_names))
    motion = np.sin(2 * np.pi * 0.25 * timestamps[:, None] + phases[None, :])
    positions = (low + high) / 2 + 0.25 * (high - low) / 2 * motion
    return Episode(
        name="synthetic",
        index=SYNTH_EPISODE_INDEX,
        timestamps=timestamps[:count],
        states=positions[:count],
        actions=positions[1:],
        joint_names=joint_names,
        instructions=((0, SYNTH_INSTRUCTION),),
        camera_frame_id="ego_view",
        frame_source=lambda: _pattern_frames(count, image_size, fps),
        num_frames=count,
    )


def write_synthetic_bag(out: Path | str, layout: JointLayout, *, seconds: float = 4.0,
                        topics: Topics = Topics(), storage: str = "mcap") -> ConvertResult:
    """The bundled demo bag: identical bytes on every run (zstd-compressed mcap by default)."""
    return write_episode_bag(synthetic_episode(layout, seconds=seconds), out, topics=topics, storage=storage,
                             compress=True)
