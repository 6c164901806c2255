# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""A bag back into an `Episode`: camera frames, the joint state at each frame, the recorded action and the
instruction, so a converted (or robot-recorded) bag can be evaluated like the data set it came from."""
from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np

from gr00t_npu_node.bag.rosbag2.bagio import BagError, BagReader
from gr00t_npu_node.bag.dataset.episode import Episode
from gr00t_npu_node.bag.dataset.layout import Topics
from gr00t_npu_node.bag.dataset.messages import decode_image, decode_joint_state, decode_string


def episode_from_bag(path: Path | str, topics: Topics = Topics()) -> Episode:
    """Frames in camera order; each frame's state is the newest joint state stamped at or before it, and its
    action the recorded action with the same stamp (the layout `convert` writes)."""
    with BagReader(path) as bag:
        needed = [topics.camera, topics.joint_states, topics.instruction, topics.recorded_action]
        if missing := [t for t in needed if t not in bag.topics]:
            raise BagError(f"{bag.path} lacks {missing} (has {sorted(bag.topics)}); evaluation needs camera, "
                           "joint states, instruction and recorded action, as `gr00t-npu-bag convert` writes them")
        images: list[bytes] = []
        image_stamps: list[int] = []
        states: list[tuple[int, tuple[str, ...], np.ndarray]] = []
        actions: dict[int, tuple[tuple[str, ...], np.ndarray]] = {}
        instructions: list[tuple[int, str]] = []
        for topic, receive_ns, data in bag.messages(needed):
            if topic == topics.camera:
                images.append(data)
                image_stamps.append(decode_image(data)[0])
            elif topic == topics.joint_states:
                states.append(decode_joint_state(data))
            elif topic == topics.recorded_action:
                stamp, names, values = decode_joint_state(data)
                actions[stamp] = (names, values)
            else:
                instructions.append((receive_ns, decode_string(data)))
    if not images or not states or not instructions:
        raise BagError(f"{path}: needs at least one image, joint state and instruction")
    names = states[0][1]
    state_stamps = [s[0] for s in states]
    frame_states, frame_actions = [], []
    for stamp in image_stamps:
        newest = bisect.bisect_right(state_stamps, stamp) - 1
        if newest < 0:
            raise BagError(f"{path}: the image stamped {stamp} ns comes before any joint state")
        if stamp not in actions:
            raise BagError(f"{path}: no recorded action stamped {stamp} ns like its image")
        for got, what in ((states[newest][1], "joint state"), (actions[stamp][0], "recorded action")):
            if got != names:
                raise BagError(f"{path}: a {what} names its joints differently from the first joint state")
        frame_states.append(states[newest][2])
        frame_actions.append(actions[stamp][1])
    changes = _instruction_changes(instructions, image_stamps)
    return Episode(
        name=Path(path).name,
        index=0,
        timestamps=(np.array(image_stamps, dtype=np.int64) - image_stamps[0]) * 1e-9,
        states=np.stack(frame_states),
        actions=np.stack(frame_actions),
        joint_names=names,
        instructions=changes,
        camera_frame_id="",
        frame_source=lambda: (decode_image(data)[1] for data in images),
        num_frames=len(images),
    )


def _instruction_changes(instructions: list[tuple[int, str]],
                         image_stamps: list[int]) -> tuple[tuple[int, str], ...]:
    """(frame, text) per instruction change: the first applies from frame 0, a later one from the first frame
    stamped at or after its receive time."""
    changes: list[tuple[int, str]] = []
    for receive_ns, text in sorted(instructions):
        if changes and changes[-1][1] == text:
            continue
        frame = bisect.bisect_left(image_stamps, receive_ns) if changes else 0
        if changes and changes[-1][0] == frame:
            changes[-1] = (frame, text)
        else:
            changes.append((frame, text))
    return tuple(changes)
