# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Every message of the bags robot teams keep is played, from the first one: a Foxy/Galactic bag (metadata version
4) with an empty /rosout, a Galactic split bag whose metadata starts after its first message (plain and
file-compressed), a bag whose metadata.yaml and files disagree on offered QoS; played == messages in the bag, per
topic, and a subscriber receives them byte for byte. A bag whose files hold fewer messages than it lists, or one
the reader cannot read fully, fails with a non-zero exit and a message naming topic and counts."""
from __future__ import annotations

import json
import sqlite3

import pytest
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.interfaces import QosTime
from std_msgs.msg import String

from conftest import Collector, bag_messages, wait_until
from gr00t_npu_node.bag.rosbag2.bagio import BagReader
from gr00t_npu_node.bag.cli import main
from gr00t_npu_node.bag.rosbag2.play import play_bag
from rosbag2_shapes import FOXY_INFINITE, qos_string, recorded_qos, write_rosbag2

FOXY_TOPICS = {
    "/topic": ("std_msgs/msg/String", [recorded_qos(latched=False, infinite=FOXY_INFINITE)]),
    "/rosout": ("rcl_interfaces/msg/Log",
                [recorded_qos(latched=True, infinite=FOXY_INFINITE, lifespan=QosTime(10, 0))]),
}
RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


def talker(count: int, first_ns: int) -> list[tuple[str, int, bytes]]:
    """What `ros2 run demo_nodes_cpp talker` puts in a bag."""
    return [("/topic", first_ns + i * 50, serialize_message(String(data=f"Hello World: {i}"))) for i in range(count)]


def play_into_subscriber(path, probe, player, prefix: str):
    """Play the whole bag under `prefix` (so nothing else listens) into a subscriber of /topic."""
    received = Collector(f"{prefix}/topic")
    received.subscription = probe.node.create_subscription(String, f"{prefix}/topic", received, RELIABLE, raw=True)
    remap = {"/topic": f"{prefix}/topic", "/rosout": f"{prefix}/rosout"}
    with BagReader(path) as bag:
        remap = {t: r for t, r in remap.items() if t in bag.topics}
    result = play_bag(path, rate=50.0, node=player, remap=remap, wait_timeout=30.0)
    return result, received


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_foxy_bag_with_an_empty_rosout_plays_every_message(tmp_path, ros_probe, player, storage):
    written = talker(20, 1_600_000_000 * 10**9)
    write_rosbag2(tmp_path / "foxy", storage, 4, FOXY_TOPICS, [written])
    result, received = play_into_subscriber(tmp_path / "foxy", ros_probe, player, f"/foxy_{storage}")
    # Nobody subscribes to /rosout: had play waited for it, it would report it unmatched.
    assert result.unmatched == []
    assert result.counts == result.in_bag == {"/topic": 20, "/rosout": 0}
    wait_until(lambda: len(received.messages) == 20, 10, "every replayed message")
    assert received.messages == [data for _, _, data in written]


@pytest.mark.parametrize("storage,compress", [("mcap", False), ("sqlite3", True)])
def test_galactic_split_bag_plays_from_its_first_message(tmp_path, ros_probe, player, storage, compress):
    written = talker(200, 1_000)
    path = tmp_path / "split"
    write_rosbag2(path, storage, 4, {"/topic": FOXY_TOPICS["/topic"]}, [written[i:i + 40] for i in range(0, 200, 40)],
                  compress=compress, galactic_split_times=True)
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert len(info["relative_file_paths"]) == 5 and info["starting_time"]["nanoseconds_since_epoch"] == 9_000
    with BagReader(path) as bag:
        assert bag.start_ns == 1_000 and bag.end_ns == written[-1][1] + 1
    result, received = play_into_subscriber(path, ros_probe, player, f"/split_{storage}")
    assert result.counts == result.in_bag == {"/topic": 200}
    wait_until(lambda: len(received.messages) == 200, 10, "every replayed message")
    assert received.messages == [data for _, _, data in written]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_and_files_disagreeing_on_qos_still_read_every_message(tmp_path, storage):
    """metadata.yaml kept while a tool rewrote the files with other QoS values: rosbags pairs files and
    metadata.yaml by QoS too, and read nothing of such a topic."""
    written = talker(20, 1_000)
    path = tmp_path / "rewritten"
    write_rosbag2(path, storage, 4, FOXY_TOPICS, [written])
    recorded = qos_string(FOXY_TOPICS["/topic"][1])
    rewritten = recorded.replace("2147483647", "9223372036").replace("4294967295", "854775807")
    metadata = path / "metadata.yaml"
    metadata.write_text(metadata.read_text().replace(json.dumps(recorded), json.dumps(rewritten), 1))
    with BagReader(path) as bag:
        assert bag.topics["/topic"].offers[0].deadline.sec == 9223372036   # metadata.yaml's, not the files'
    assert bag_messages(path)["/topic"] == [(stamp, data) for _, stamp, data in written]


def test_a_bag_whose_files_lack_messages_fails_naming_topic_and_counts(tmp_path, capsys):
    path = tmp_path / "lost"
    write_rosbag2(path, "sqlite3", 5, FOXY_TOPICS, [talker(8, 1_000), talker(12, 2_000)])
    # The recorder's cache dropped the first file's messages after counting them (rosbag2: "Cache buffers lost").
    with sqlite3.connect(path / "lost_0.db3") as database:
        database.execute("DELETE FROM messages")
    for command in (["play", str(path)], ["eval", "--bag", str(path)]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert "/topic: 20 listed, 12 in the files" in error and "ros2 bag reindex" in error, error
    (path / "lost_1.db3").unlink()
    assert main(["play", str(path)]) == 2
    error = capsys.readouterr().err
    assert "missing" in error and "lost_1.db3" in error, error


def test_a_bag_the_reader_cannot_read_fully_fails_after_reading(tmp_path, capsys, ros_isolation):
    """Chunks without message indexes: rosbags skips them and reads no message, though the file counts 20."""
    path = tmp_path / "unindexed"
    write_rosbag2(path, "mcap", 5, FOXY_TOPICS, [talker(20, 1_000)], message_index=False)
    with BagReader(path) as bag:
        assert bag.topics["/topic"].count == 20
    assert main(["play", str(path), "--topics", "/topic", "--remap", "/topic:=/unindexed/topic",
                 "--wait-timeout", "0"]) == 2
    error = capsys.readouterr().err
    assert "/topic: 20 in the bag, 0 read" in error, error
