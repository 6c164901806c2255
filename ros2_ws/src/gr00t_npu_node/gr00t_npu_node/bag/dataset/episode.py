# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""An episode in memory (states, actions, instruction) with its camera frames decoded on demand, and the LeRobot
reader that produces one from a data set (parquet + mp4 + meta, the layout of NVIDIA's GR00T demo data)."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gr00t_npu_node.bag.dataset.layout import JointLayout
from gr00t_npu_node.keys import ACTION, STATE, VIDEO

# The column whose index into meta/tasks.jsonl is the language instruction (GR00T's `task` input); `task_index`
# is the fallback for data sets without the annotation.
INSTRUCTION_COLUMNS = ("annotation.human.action.task_description", "task_index")


class DatasetError(ValueError):
    """A LeRobot data set this tool cannot read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Episode:
    """One episode: per-frame timestamps, 44-value states and actions, and lazily decoded RGB frames.

    `instructions` lists (frame index, text) for every change of instruction, the first at frame 0.
    """

    name: str
    index: int
    timestamps: np.ndarray            # [N] float64 seconds since the episode's start
    states: np.ndarray                # [N, D] float64, columns named by joint_names
    actions: np.ndarray               # [N, D] float64, same columns
    joint_names: tuple[str, ...]
    instructions: tuple[tuple[int, str], ...]
    camera_frame_id: str
    frame_source: Callable[[], Iterator[np.ndarray]]   # yields N uint8 [H, W, 3] RGB frames
    num_frames: int

    def frames(self) -> Iterator[np.ndarray]:
        yielded = 0
        for frame in self.frame_source():
            if yielded == self.num_frames:
                return
            yielded += 1
            yield frame
        if yielded != self.num_frames:
            raise DatasetError(f"{self.name}: the video has {yielded} frames but the data has {self.num_frames} rows")

    @property
    def instruction(self) -> str:
        return self.instructions[0][1]

    def head(self, max_seconds: float | None) -> Episode:
        """The first `max_seconds` of the episode (all of it for None)."""
        if max_seconds is None:
            return self
        # 1 us of slack: data-set stamps are float32 multiples of the frame period (0.1 s may read 0.10000001).
        count = int(np.searchsorted(self.timestamps - self.timestamps[0], max_seconds + 1e-6, side="right"))
        if count == 0:
            raise ValueError(f"{self.name}: no frame within the first {max_seconds} s")
        return replace(self, timestamps=self.timestamps[:count], states=self.states[:count],
                       actions=self.actions[:count], num_frames=count,
                       instructions=tuple((i, text) for i, text in self.instructions if i < count))

    def group_columns(self, layout: JointLayout, groups: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Column indices of each group's joints in this episode's vectors."""
        position = {name: i for i, name in enumerate(self.joint_names)}
        columns = {}
        for group in groups:
            if missing := [j for j in layout.groups[group] if j not in position]:
                raise ValueError(f"{self.name}: joints {missing} of group {group!r} are not in the episode")
            columns[group] = np.array([position[j] for j in layout.groups[group]])
        return columns


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: not a LeRobot data set (expected meta/info.json, meta/modality.json, "
                           "meta/tasks.jsonl, data/ and videos/)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a LeRobot data set lists its tasks and episodes there")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} is not valid JSON lines: {err}") from None


def _decode_video(path: Path, expected_shape: tuple[int, ...] | None) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise DatasetError(f"cannot open video {path}: {err}") from None
    with container:
        if not container.streams.video:
            raise DatasetError(f"{path} has no video stream")
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if expected_shape is not None and rgb.shape != expected_shape:
                raise DatasetError(f"{path}: frame shape {rgb.shape} differs from meta/info.json's {expected_shape}")
            yield rgb


@dataclass(frozen=True)
class LeRobotDataset:
    """A LeRobot v2 data set on disk, checked on open."""

    root: Path
    info: dict
    modality: dict
    tasks: dict[int, str]
    episode_indices: tuple[int, ...]
    video_key: str

    @classmethod
    def open(cls, root: Path | str) -> LeRobotDataset:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"data set directory {root} does not exist")
        info = _read_json(root / "meta" / "info.json")
        modality = _read_json(root / "meta" / "modality.json")
        for key in (STATE, ACTION, VIDEO):
            if key not in modality:
                raise DatasetError(f"{root / 'meta' / 'modality.json'} has no {key!r} section")
        for key in ("data_path", "video_path"):
            if key not in info:
                raise DatasetError(f"{root / 'meta' / 'info.json'} has no {key!r}")
        try:
            tasks = {row["task_index"]: row["task"] for row in _read_jsonl(root / "meta" / "tasks.jsonl")}
            episodes = tuple(row["episode_index"] for row in _read_jsonl(root / "meta" / "episodes.jsonl"))
        except (KeyError, TypeError) as err:
            raise DatasetError(f"{root / 'meta'}: tasks.jsonl rows need task_index and task, episodes.jsonl rows "
                               f"need episode_index ({err!r} is missing)") from None
        video_specs = list(modality[VIDEO].values())
        if len(video_specs) != 1:
            raise DatasetError(f"{root}: expected one camera in meta/modality.json, found {len(video_specs)}")
        video_key = video_specs[0].get("original_key") or next(iter(modality[VIDEO]))
        return cls(root, info, modality, tasks, episodes, video_key)

    def slices(self, section: str) -> dict[str, tuple[int, int]]:
        return {group: (spec["start"], spec["end"]) for group, spec in self.modality[section].items()}

    def episode(self, index: int, layout: JointLayout) -> Episode:
        import pyarrow.parquet as pq

        if index not in self.episode_indices:
            raise DatasetError(f"{self.root} has no episode {index}; it has {list(self.episode_indices)}")
        chunk = index // int(self.info.get("chunks_size", 1000))
        data_path = self.root / self.info["data_path"].format(episode_chunk=chunk, episode_index=index)
        video_path = self.root / self.info["video_path"].format(
            episode_chunk=chunk, episode_index=index, video_key=self.video_key)
        for path in (data_path, video_path):
            if not path.is_file():
                raise DatasetError(f"{path} is missing (episode {index} of {self.root})")
        try:
            table = pq.read_table(data_path)
        except Exception as err:  # pyarrow raises several unrelated types for a damaged file
            raise DatasetError(f"cannot read {data_path}: {err}") from None
        if missing := [c for c in ("observation.state", "action", "timestamp") if c not in table.column_names]:
            raise DatasetError(f"{data_path} lacks columns {missing}; has {table.column_names}")
        states = np.asarray(table.column("observation.state").to_pylist(), dtype=np.float64)
        actions = np.asarray(table.column("action").to_pylist(), dtype=np.float64)
        timestamps = np.asarray(table.column("timestamp").to_pylist(), dtype=np.float64)
        if states.ndim != 2 or actions.shape != states.shape or len(timestamps) != len(states):
            raise DatasetError(f"{data_path}: state {states.shape}, action {actions.shape} and "
                               f"{len(timestamps)} timestamps do not line up")
        if np.any(np.diff(timestamps) <= 0):
            raise DatasetError(f"{data_path}: timestamps are not strictly increasing")
        state_names = layout.names_for_vector(self.slices(STATE), states.shape[1])
        if layout.names_for_vector(self.slices(ACTION), actions.shape[1]) != state_names:
            raise DatasetError(f"{self.root}: meta/modality.json lays out state and action differently; "
                               "this tool publishes both with one joint order")
        instructions = self._instructions(table, data_path)
        feature = self.info.get("features", {}).get(self.video_key, {})
        shape = tuple(feature["shape"]) if "shape" in feature else None
        return Episode(
            name=f"{self.root.name}/episode_{index:06d}",
            index=index,
            timestamps=timestamps,
            states=states,
            actions=actions,
            joint_names=state_names,
            instructions=instructions,
            camera_frame_id=self.video_key.rsplit(".", 1)[-1],
            frame_source=lambda: _decode_video(video_path, shape),
            num_frames=len(timestamps),
        )

    def _instructions(self, table, data_path: Path) -> tuple[tuple[int, str], ...]:
        column = next((c for c in INSTRUCTION_COLUMNS if c in table.column_names), None)
        if column is None:
            raise DatasetError(f"{data_path} has none of the instruction columns {INSTRUCTION_COLUMNS}")
        changes: list[tuple[int, str]] = []
        for frame, task_index in enumerate(table.column(column).to_pylist()):
            if task_index not in self.tasks:
                raise DatasetError(f"{data_path}: {column}={task_index} at row {frame} is not in meta/tasks.jsonl")
            if not changes or changes[-1][1] != self.tasks[task_index]:
                changes.append((frame, self.tasks[task_index]))
        return tuple(changes)
