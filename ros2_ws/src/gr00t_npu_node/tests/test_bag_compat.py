# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Bags as `ros2 bag record` writes them on robots: Foxy and Galactic (metadata version 4, sqlite3 without schema
table, infinite durations as 2147483647 s 4294967295 ns), Humble (5 and 6, sqlite3 schema 3 without message
definitions, QoS as a YAML string of integers, history UNKNOWN / depth 0) and Jazzy (8 and 9), mcap and sqlite3,
holding rclpy-serialized JointStates with an empty effort that rosbags' strict decoder rejects.

rosbags writes versions 8 and 9 itself; the older layouts come from rosbag2_shapes.write_rosbag2.
"""
from __future__ import annotations

import array
from pathlib import Path

import pytest
import yaml
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from conftest import Collector, wait_until
from gr00t_npu_node.bag.rosbag2.bagio import BagReader
from gr00t_npu_node.bag.dataset.messages import decode_joint_state
from gr00t_npu_node.bag.rosbag2.play import play_bag
from gr00t_npu_node.bag.rosbag2.qos import INFINITE, is_latched, playback_profile
from gr00t_npu_node.bag.rosbag2.typedefs import MessageDefinitions
from rosbag2_shapes import FOXY_INFINITE, recorded_qos, write_rosbag2

VARIANTS = [(storage, version) for storage in ("mcap", "sqlite3") for version in (4, 5, 6, 8, 9)]
START_NS = 1_690_000_000 * 10**9
FRAMES = 5
TYPES = {"/instruction": "std_msgs/msg/String", "/joint_states": "sensor_msgs/msg/JointState",
         "/camera/image_raw": "sensor_msgs/msg/Image"}


def robot_messages() -> list[tuple[str, int, bytes]]:
    """(topic, time, CDR bytes as DDS delivers them) serialized by rclpy, as a robot's recorder stores them."""
    messages = [("/instruction", START_NS, serialize_message(String(data="pick the pear")))]
    for i in range(FRAMES):
        stamp = START_NS + (i + 1) * 50_000_000
        state = JointState(name=["waist_yaw_joint", "waist_pitch_joint"], position=[0.1 * i, -0.1 * i])
        state.header.stamp.sec, state.header.stamp.nanosec = divmod(stamp, 10**9)
        image = Image(height=2, width=2, encoding="rgb8", step=6)
        image.data = array.array("B", bytes(range(i, i + 12)))
        raw_image = serialize_message(image)
        messages += [("/joint_states", stamp, serialize_message(state)),
                     ("/camera/image_raw", stamp, raw_image + bytes(-len(raw_image) % 4))]
    return messages


def write_robot_bag(path: Path, storage: str, version: int) -> list[tuple[str, int, bytes]]:
    messages = robot_messages()
    infinite = FOXY_INFINITE if version == 4 else INFINITE
    offers = {t: [recorded_qos(latched=t == "/instruction", infinite=infinite)] for t in TYPES}
    if version < 8:
        write_rosbag2(path, storage, version, {t: (TYPES[t], offers[t]) for t in TYPES}, [messages])
        return messages
    store = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=version, storage_plugin=plugin) as writer:
        connections = {t: writer.add_connection(t, TYPES[t], typestore=store, offered_qos_profiles=offers[t])
                       for t in TYPES}
        for topic, stamp, data in messages:
            writer.write(connections[topic], stamp, data)
    return messages


@pytest.mark.parametrize("storage,version", VARIANTS)
def test_robot_bags_of_every_metadata_version_read_raw(tmp_path, storage, version):
    path = tmp_path / f"{storage}_v{version}"
    written = write_robot_bag(path, storage, version)
    assert yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]["version"] == version
    with BagReader(path) as bag:
        assert {t: i.count for t, i in bag.topics.items()} == {"/instruction": 1, "/joint_states": FRAMES,
                                                               "/camera/image_raw": FRAMES}
        assert is_latched(bag.topics["/instruction"].offers) and not is_latched(bag.topics["/joint_states"].offers)
        assert playback_profile(bag.topics["/instruction"].offers).durability == DurabilityPolicy.TRANSIENT_LOCAL
        assert playback_profile(bag.topics["/joint_states"].offers).depth >= 1
        assert list(bag.messages()) == written
        raw_state = next(d for t, _, d in bag.messages(["/joint_states"]))
    store = get_typestore(Stores.ROS2_JAZZY)
    with pytest.raises(Exception, match="CDR message size mismatch"):  # the rclpy form strict decoders reject
        store.deserialize_cdr(raw_state, "sensor_msgs/msg/JointState")
    assert decode_joint_state(raw_state)[1] == ("waist_yaw_joint", "waist_pitch_joint")


@pytest.mark.parametrize("storage,version", [("sqlite3", 4), ("sqlite3", 5), ("mcap", 6), ("mcap", 9)])
def test_robot_bags_replay_byte_for_byte_with_the_instruction_latched(tmp_path, ros_probe, player, storage,
                                                                      version):
    path = tmp_path / "robot"
    written = write_robot_bag(path, storage, version)
    prefix = f"/compat_{storage}_{version}"
    # A transient-local subscription only matches a transient-local publisher: receiving proves play latched it.
    instruction = Collector("instruction")
    instruction.subscription = ros_probe.node.create_subscription(
        String, f"{prefix}/instruction", instruction,
        QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        raw=True)
    states = Collector("joint_states")
    states.subscription = ros_probe.node.create_subscription(
        JointState, f"{prefix}/joint_states", states, QoSProfile(depth=50), raw=True)
    result = play_bag(path, rate=5.0, node=player, topics=["/instruction", "/joint_states"],
                      remap={"/instruction": f"{prefix}/instruction", "/joint_states": f"{prefix}/joint_states"})
    assert result.unmatched == [] and result.counts == {"/instruction": 1, "/joint_states": FRAMES}
    wait_until(lambda: len(states.messages) == FRAMES and instruction.messages, 10, "the replayed messages")
    assert states.messages == [d for t, _, d in written if t == "/joint_states"]
    assert instruction.messages == [d for t, _, d in written if t == "/instruction"]


def test_definitions_of_types_rosbags_does_not_know_come_from_the_rclpy_class():
    known = MessageDefinitions()
    expected = known.definition("diagnostic_msgs/msg/DiagnosticArray")
    derived = MessageDefinitions()
    for msgtype in ("diagnostic_msgs/msg/DiagnosticArray", "diagnostic_msgs/msg/DiagnosticStatus",
                    "diagnostic_msgs/msg/KeyValue"):
        del derived._store.fielddefs[msgtype]
    text, digest = derived.definition("diagnostic_msgs/msg/DiagnosticArray")
    assert digest == expected[1]
    # Constants are not in the class's field list (nor in the hash), so only the fields are compared.
    assert [line for line in text.splitlines() if line and "=" not in line and not line.startswith("#")] == \
        [line for line in expected[0].splitlines() if line and "=" not in line and not line.startswith("#")]
    with pytest.raises(LookupError, match="message type no_such_pkg/msg/Thing is not installed"):
        derived.definition("no_such_pkg/msg/Thing")


def test_playing_a_whole_robot_bag_skips_types_this_machine_lacks(tmp_path, ros_probe, player):
    """A robot bag usually holds /tf (tf2_msgs, not installable here): it is reported, the rest still plays."""
    store = get_typestore(Stores.ROS2_JAZZY)
    tf = store.types["tf2_msgs/msg/TFMessage"](transforms=[])
    with Writer(tmp_path / "with_tf", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        tf_connection = writer.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=store)
        text = writer.add_connection("/skip_test/instruction", "std_msgs/msg/String", typestore=store,
                                     offered_qos_profiles=[recorded_qos(latched=True)])
        writer.write(tf_connection, START_NS, bytes(store.serialize_cdr(tf, "tf2_msgs/msg/TFMessage")))
        writer.write(text, START_NS + 1, serialize_message(String(data="pick the pear")))
    received = ros_probe.collect(String, "/skip_test/instruction", QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    result = play_bag(tmp_path / "with_tf", node=player)
    assert list(result.skipped) == ["/tf"] and "tf2_msgs" in result.skipped["/tf"]
    assert result.counts == {"/skip_test/instruction": 1}
    assert received.wait_for(timeout=10).data == "pick the pear"
    with pytest.raises(LookupError, match="message type tf2_msgs/msg/TFMessage is not installed"):
        play_bag(tmp_path / "with_tf", topics=["/tf"], node=player)
