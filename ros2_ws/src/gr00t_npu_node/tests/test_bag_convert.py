# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`gr00t-npu-bag convert` and `synth`: LeRobot episodes and the synthetic demo episode as rosbag2.

A small LeRobot data set is written here (parquet + mp4 + meta) so conversion and its errors are tested without
the shared data; the real GR1 episodes are converted when ../shared is present.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import bag_messages
from gr00t_npu_node.bag.rosbag2.bagio import BagReader
from gr00t_npu_node.bag.cli import main as bag_cli
from gr00t_npu_node.bag.dataset.convert import convert_dataset, episode_start_ns
from gr00t_npu_node.bag.dataset.episode import DatasetError, LeRobotDataset
from gr00t_npu_node.bag.dataset.layout import SCORING_TOPICS_KEY, Topics, load_joint_layout
from gr00t_npu_node.bag.dataset.messages import decode_image, decode_joint_state, decode_string
from gr00t_npu_node.bag.rosbag2.qos import is_latched
from gr00t_npu_node.bag.dataset.synth import synthetic_episode, write_synthetic_bag

GR1_MODALITY = {"left_arm": (0, 7), "left_hand": (7, 13), "left_leg": (13, 19), "neck": (19, 22),
                "right_arm": (22, 29), "right_hand": (29, 35), "right_leg": (35, 41), "waist": (41, 44)}
TASKS = ["pick the pear from the counter and place it in the plate", "valid", "put the cup in the sink"]
VIDEO_KEY = "observation.images.ego_view"


def write_dataset(root: Path, frames: int = 6, video_frames: int | None = None, size: int = 32,
                  tasks: list[int] | None = None) -> Path:
    """A LeRobot v2 data set with one episode in the GR1 layout (mpeg4 video, float64 state/action)."""
    (root / "meta").mkdir(parents=True)
    info = {"fps": 20.0, "chunks_size": 1000,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "features": {VIDEO_KEY: {"dtype": "video", "shape": [size, size, 3]}}}
    modality = {section: {g: {"start": a, "end": b} for g, (a, b) in GR1_MODALITY.items()}
                for section in ("state", "action")}
    modality["video"] = {"ego_view_bg_crop_pad_res256_freq20": {"original_key": VIDEO_KEY}}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "modality.json").write_text(json.dumps(modality))
    (root / "meta" / "tasks.jsonl").write_text("\n".join(json.dumps({"task_index": i, "task": t})
                                                         for i, t in enumerate(TASKS)))
    (root / "meta" / "episodes.jsonl").write_text(json.dumps({"episode_index": 0, "length": frames}))
    rng = np.random.default_rng(0)
    task_column = tasks or [0] * frames
    table = pa.table({
        "observation.state": [list(row) for row in rng.uniform(-1, 1, (frames, 44))],
        "action": [list(row) for row in rng.uniform(-1, 1, (frames, 44))],
        "timestamp": (np.arange(frames) + 1) * np.float32(0.05),
        "annotation.human.action.task_description": task_column,
        "task_index": task_column,
    })
    data = root / "data" / "chunk-000" / "episode_000000.parquet"
    data.parent.mkdir(parents=True)
    pq.write_table(table, data)
    video = root / "videos" / "chunk-000" / VIDEO_KEY / "episode_000000.mp4"
    video.parent.mkdir(parents=True)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=20)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames if video_frames is None else video_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return root


@pytest.fixture(scope="module")
def layout():
    return load_joint_layout()


def decoded_video(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def check_converted(bag_path: Path, dataset: Path, index: int, frames: int, layout) -> None:
    """Every message of a converted episode against the data set's own files."""
    table = pq.read_table(dataset / f"data/chunk-000/episode_{index:06d}.parquet").slice(0, frames)
    states = np.array(table.column("observation.state").to_pylist())
    actions = np.array(table.column("action").to_pylist())
    stamps = [episode_start_ns(index) + round(t * 1e9) for t in table.column("timestamp").to_pylist()]
    video = decoded_video(dataset / f"videos/chunk-000/{VIDEO_KEY}/episode_{index:06d}.mp4")[:frames]
    tasks = {json.loads(line)["task_index"]: json.loads(line)["task"]
             for line in (dataset / "meta" / "tasks.jsonl").read_text().splitlines()}
    modality = json.loads((dataset / "meta" / "modality.json").read_text())["state"]
    names = [None] * 44
    for group, span in modality.items():
        names[span["start"]:span["end"]] = layout.groups[group]
    topics = Topics()
    messages = bag_messages(bag_path)
    with BagReader(bag_path) as bag:
        assert {t: i.msgtype for t, i in bag.topics.items()} == {
            topics.camera: "sensor_msgs/msg/Image", topics.joint_states: "sensor_msgs/msg/JointState",
            topics.instruction: "std_msgs/msg/String", topics.recorded_action: "sensor_msgs/msg/JointState"}
        assert is_latched(bag.topics[topics.instruction].offers)
        assert not is_latched(bag.topics[topics.camera].offers)
        assert bag.custom_data[SCORING_TOPICS_KEY] == topics.recorded_action
    assert [len(messages[t]) for t in (topics.camera, topics.joint_states, topics.recorded_action)] == [frames] * 3
    (instruction_time, instruction), = messages[topics.instruction]
    assert decode_string(instruction) == tasks[table.column("annotation.human.action.task_description")[0].as_py()]
    assert instruction_time == episode_start_ns(index) < stamps[0]
    for i in range(frames):
        receive, raw = messages[topics.camera][i]
        stamp, rgb = decode_image(raw)
        assert receive == stamp == stamps[i]
        np.testing.assert_array_equal(rgb, video[i])
        for topic, expected in ((topics.joint_states, states[i]), (topics.recorded_action, actions[i])):
            receive, raw = messages[topic][i]
            stamp, joint_names, positions = decode_joint_state(raw)
            assert receive == stamp == stamps[i] and list(joint_names) == names
            np.testing.assert_array_equal(positions, expected)
        assert all(len(raw) % 4 == 0 for raw in (messages[topics.camera][i][1], messages[topics.joint_states][i][1]))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_convert_writes_every_frame_state_action_and_the_latched_instruction(tmp_path, layout, storage):
    dataset = write_dataset(tmp_path / "dataset")
    results = convert_dataset(dataset, tmp_path / "bags", layout, storage=storage)
    assert [r.path.name for r in results] == ["episode_000000"]
    assert (results[0].path / f"episode_000000.{'db3' if storage == 'sqlite3' else 'mcap'}").is_file()
    check_converted(results[0].path, dataset, 0, 6, layout)


def test_instruction_changes_are_published_when_they_happen(tmp_path, layout):
    dataset = write_dataset(tmp_path / "dataset", frames=6, tasks=[0, 0, 0, 2, 2, 2])
    bag = convert_dataset(dataset, tmp_path / "bags", layout)[0].path
    messages = bag_messages(bag)
    instructions = messages[Topics().instruction]
    stamps = [stamp for stamp, _ in messages[Topics().camera]]
    assert [(t, decode_string(raw)) for t, raw in instructions] == [
        (episode_start_ns(0), TASKS[0]), (stamps[3], TASKS[2])]


def test_max_seconds_keeps_the_head_of_the_episode(tmp_path, layout):
    dataset = write_dataset(tmp_path / "dataset", frames=6)
    bag = convert_dataset(dataset, tmp_path / "bags", layout, max_seconds=0.1)[0].path
    assert len(bag_messages(bag)[Topics().camera]) == 3  # frames at 0.05, 0.10 and 0.15 s


def test_unreadable_data_sets_get_errors_that_name_the_problem(tmp_path, layout):
    with pytest.raises(DatasetError, match="does not exist"):
        LeRobotDataset.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"meta/info\.json is missing: not a LeRobot data set"):
        LeRobotDataset.open(tmp_path / "empty")

    short_video = write_dataset(tmp_path / "short_video", frames=6, video_frames=4)
    with pytest.raises(DatasetError, match="the video has 4 frames but the data has 6 rows"):
        convert_dataset(short_video, tmp_path / "out_short", layout)

    dataset = write_dataset(tmp_path / "dataset")
    with pytest.raises(DatasetError, match=r"has no episode 3; it has \[0\]"):
        convert_dataset(dataset, tmp_path / "out_missing", layout, episodes=[3])

    modality_path = dataset / "meta" / "modality.json"
    modality = json.loads(modality_path.read_text())
    modality["state"]["waist"] = {"start": 41, "end": 43}
    modality_path.write_text(json.dumps(modality))
    with pytest.raises(ValueError, match=r"group 'waist' spans 2 values in the data set but the config names 3"):
        convert_dataset(dataset, tmp_path / "out_layout", layout)

    no_action = write_dataset(tmp_path / "no_action")
    data = no_action / "data" / "chunk-000" / "episode_000000.parquet"
    pq.write_table(pq.read_table(data).drop(["action"]), data)
    with pytest.raises(DatasetError, match=r"lacks columns \['action'\]"):
        convert_dataset(no_action, tmp_path / "out_columns", layout)


def test_cli_reports_a_bad_data_set_and_an_existing_bag(tmp_path, capsys):
    assert bag_cli(["convert", str(tmp_path / "nowhere"), str(tmp_path / "bags")]) == 2
    assert "data set directory" in capsys.readouterr().err
    dataset = write_dataset(tmp_path / "dataset")
    assert bag_cli(["convert", str(dataset), str(tmp_path / "bags"), "--storage", "sqlite3"]) == 0
    assert "episode_000000: 6 frames" in capsys.readouterr().out
    assert bag_cli(["convert", str(dataset), str(tmp_path / "bags")]) == 2
    assert "choose a new path or remove the old bag" in capsys.readouterr().err


def test_synthetic_bag_is_deterministic_and_inside_the_limits(tmp_path, layout):
    first = write_synthetic_bag(tmp_path / "a" / "synth", layout, seconds=1.0)
    second = write_synthetic_bag(tmp_path / "b" / "synth", layout, seconds=1.0)
    assert (first.path / "synth.mcap").read_bytes() == (second.path / "synth.mcap").read_bytes()
    episode = synthetic_episode(layout, seconds=1.0)
    assert first.counts == {"/instruction": 1, "/joint_states": 20, "/camera/image_raw": 20,
                            "/gr00t/recorded_action": 20}
    limits = layout.limits(tuple(layout.groups))
    for name, column in zip(episode.joint_names, episode.states.T):
        if name in limits:
            assert limits[name][0] < column.min() and column.max() < limits[name][1], name
    frames = list(episode.frames())
    assert len(frames) == 20 and not np.array_equal(frames[0], frames[10])


def test_synth_cli_writes_the_demo_bag(tmp_path, capsys):
    assert bag_cli(["synth", str(tmp_path / "demo"), "--seconds", "0.5", "--storage", "sqlite3"]) == 0
    assert "10 synthetic frames" in capsys.readouterr().out
    assert (tmp_path / "demo" / "demo.db3").is_file()


def test_real_gr1_episode_converts_exactly(tmp_path, shared_data, layout):
    dataset = shared_data / "gr1.PickNPlace"
    results = convert_dataset(dataset, tmp_path / "bags", layout, episodes=[4], max_seconds=1.0)
    check_converted(results[0].path, dataset, 4, results[0].frames, layout)
    assert results[0].frames == 21
    shutil.rmtree(tmp_path / "bags")
