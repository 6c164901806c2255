# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""`gr00t-npu-bag play` and `record` over real rclpy: the convert -> play -> record round trip byte for byte, a
burst recorded without loss, and play's timing, rate, /clock, topic selection, remapping, start offset, loop and
subscriber wait."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from conftest import Collector, bag_messages, wait_until
from gr00t_npu_node.bag.rosbag2.bagio import BagError, BagReader, BagWriter
from gr00t_npu_node.bag.dataset.convert import convert_dataset
from gr00t_npu_node.bag.dataset.layout import Topics, load_joint_layout
from gr00t_npu_node.bag.rosbag2.play import play_bag
from gr00t_npu_node.bag.rosbag2.qos import bag_qos, is_latched
from gr00t_npu_node.bag.dataset.synth import write_synthetic_bag

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

TOPICS = Topics()
ALL_TOPICS = [TOPICS.camera, TOPICS.joint_states, TOPICS.instruction, TOPICS.recorded_action]
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
BAG_CLI = Path(sys.executable).with_name("gr00t-npu-bag")


@pytest.fixture(scope="module")
def synthetic_bag(tmp_path_factory) -> Path:
    return write_synthetic_bag(tmp_path_factory.mktemp("synth") / "synthetic", load_joint_layout(), seconds=2.0,
                               storage="sqlite3").path


def collect_raw(probe, msg_type: type, topic: str, qos) -> Collector:
    collector = Collector(topic)
    collector.subscription = probe.node.create_subscription(msg_type, topic, collector, qos, raw=True)
    return collector


def round_trip(source: Path, recorded: Path, storage: str, env: dict[str, str]) -> None:
    """Record in a separate process while the bag plays (with /clock), stop the recorder with SIGINT."""
    recorder = subprocess.Popen([str(BAG_CLI), "record", *ALL_TOPICS, "-o", str(recorded), "--storage",
                                 storage, "--use-sim-time"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        # Play waits until the recorder has subscribed to every topic and to /clock (which it does last), and
        # until every reliable message is acked.
        result = play_bag(source, rate=4.0, clock_hz=100.0, wait_for={**dict.fromkeys(ALL_TOPICS, 1), "/clock": 1},
                          wait_timeout=30.0)
        assert result.unmatched == [] and result.unacked == []
    finally:
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, output
    assert f"{recorded}: {sum(result.counts.values())} messages" in output


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_reproduces_every_message_byte_for_byte_synthetic(tmp_path, synthetic_bag, ros_isolation,
                                                                     storage):
    recorded = tmp_path / "recorded"
    round_trip(synthetic_bag, recorded, storage, ros_isolation)
    assert_identical_messages(synthetic_bag, recorded)


def test_round_trip_reproduces_every_message_byte_for_byte_gr1(tmp_path, shared_data, ros_isolation):
    converted = convert_dataset(shared_data / "gr1.PickNPlace", tmp_path / "converted", load_joint_layout(),
                                episodes=[0], max_seconds=2.0)[0].path
    recorded = tmp_path / "recorded"
    round_trip(converted, recorded, "sqlite3", ros_isolation)
    assert_identical_messages(converted, recorded)


def assert_identical_messages(source: Path, recorded: Path) -> None:
    original, copy = bag_messages(source), bag_messages(recorded)
    assert set(copy) == set(original)
    first = min(t for items in original.values() for t, _ in items)
    last = max(t for items in original.values() for t, _ in items)
    for topic in original:
        assert [data for _, data in copy[topic]] == [data for _, data in original[topic]], topic
        # Received on the replayed clock: never before the bag's start nor after its end, never backwards.
        times = [t for t, _ in copy[topic]]
        assert times == sorted(times) and first <= times[0] and times[-1] <= last, topic
    with BagReader(source) as bag, BagReader(recorded) as replayed:
        for topic, info in bag.topics.items():
            assert replayed.topics[topic].msgtype == info.msgtype
            assert is_latched(replayed.topics[topic].offers) == is_latched(info.offers), topic


def test_play_keeps_the_recorded_timing_at_the_given_rate_and_drives_clock(synthetic_bag, ros_probe, player):
    joint_states = collect_raw(ros_probe, JointState, "/rate/joint_states", RELIABLE)
    clock = ros_probe.collect(Clock, "/clock", QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
    with BagReader(synthetic_bag) as bag:
        stamps = [t for _, t, _ in bag.messages([TOPICS.joint_states])]
        start, end = bag.start_ns, bag.end_ns - 1
    since = clock.mark()
    result = play_bag(synthetic_bag, rate=4.0, topics=[TOPICS.joint_states], clock_hz=50.0, node=player,
                      remap={TOPICS.joint_states: "/rate/joint_states"}, wait_timeout=20.0)
    schedule_s = (stamps[-1] - start) / 1e9 / 4.0
    assert result.counts == {TOPICS.joint_states: len(stamps)}
    assert schedule_s - 0.005 <= result.wall_seconds < schedule_s + 2.0
    wait_until(lambda: len(joint_states.messages) == len(stamps), 10, "every replayed joint state")
    # Paced, not a burst: a burst spans milliseconds (the margin absorbs late deliveries on a busy machine).
    assert joint_states.received_at[-1] - joint_states.received_at[0] >= (stamps[-1] - stamps[0]) / 1e9 / 4.0 / 2
    ticks = [m.clock.sec * 10**9 + m.clock.nanosec for m in clock.messages[since:]]
    assert len(ticks) >= 10 and ticks == sorted(ticks)
    assert start <= ticks[0] and ticks[-1] <= end and ticks[-1] >= stamps[-1] - 50_000_000


def test_topics_remap_and_start_offset_keep_the_latched_instruction(synthetic_bag, ros_probe, player):
    instruction = ros_probe.collect(String, "/offset/instruction", LATCHED)
    joint_states = collect_raw(ros_probe, JointState, "/offset/joint_states", RELIABLE)
    with BagReader(synthetic_bag) as bag:
        offset_ns = bag.start_ns + 1_000_000_000
        expected = [data for _, t, data in bag.messages([TOPICS.joint_states]) if t >= offset_ns]
    result = play_bag(synthetic_bag, topics=[TOPICS.instruction, TOPICS.joint_states], start_offset=1.0,
                      rate=4.0, node=player, remap={TOPICS.instruction: "/offset/instruction",
                                                    TOPICS.joint_states: "/offset/joint_states"})
    assert result.counts == {TOPICS.instruction: 1, TOPICS.joint_states: len(expected)}
    assert instruction.wait_for(timeout=10).data.startswith("pick the pear")
    wait_until(lambda: len(joint_states.messages) == len(expected), 10, "the joint states after the offset")
    assert joint_states.messages == expected


def test_loop_repeats_until_stopped(synthetic_bag, ros_probe, player):
    joint_states = collect_raw(ros_probe, JointState, "/loop/joint_states", RELIABLE)
    with BagReader(synthetic_bag) as bag:
        per_pass = bag.topics[TOPICS.joint_states].count
    stop = threading.Event()
    results = []
    playing = threading.Thread(target=lambda: results.append(play_bag(
        synthetic_bag, rate=10.0, loop=True, topics=[TOPICS.joint_states], node=player, stop=stop,
        remap={TOPICS.joint_states: "/loop/joint_states"})))
    playing.start()
    try:
        wait_until(lambda: len(joint_states.messages) > per_pass + 5, 20, "the second pass of the loop")
    finally:
        stop.set()
        playing.join(10)
    assert results[0].loops >= 2 and results[0].counts[TOPICS.joint_states] > per_pass
    first_pass = [deserialize_message(m, JointState).header.stamp.sec for m in joint_states.messages[:per_pass + 1]]
    assert first_pass[per_pass] == first_pass[0]  # the second pass starts over with the first message


def test_play_waits_for_subscribers_then_plays_without_them(synthetic_bag, player):
    result = play_bag(synthetic_bag, topics=[TOPICS.instruction], node=player, wait_timeout=0.3,
                      remap={TOPICS.instruction: "/nobody/instruction"})
    assert result.unmatched == [TOPICS.instruction]
    assert result.counts == {TOPICS.instruction: 1}


def test_play_rejects_what_it_cannot_play(tmp_path, synthetic_bag, player):
    with pytest.raises(BagError, match=r"has no topics \['/missing'\]"):
        play_bag(synthetic_bag, topics=["/missing"], node=player)
    with pytest.raises(BagError, match="does not exist"):
        play_bag(tmp_path / "nowhere", node=player)
    (tmp_path / "not_a_bag").mkdir()
    with pytest.raises(BagError, match="has no metadata.yaml"):
        play_bag(tmp_path / "not_a_bag", node=player)
    with pytest.raises(ValueError, match="rate must be positive"):
        play_bag(synthetic_bag, rate=0.0, node=player)


def test_record_cli_needs_topics(tmp_path, capsys):
    from gr00t_npu_node.bag.cli import main

    assert main(["record", "-o", str(tmp_path / "out")]) == 2
    assert "--topics" in capsys.readouterr().err


def test_record_cli_keeps_every_message_of_a_burst(tmp_path, ros_isolation):
    """1,111 messages published back to back reach the bag, received == written, with `-o` among the topics."""
    burst = tmp_path / "burst"
    offer = [bag_qos(reliable=True, transient_local=False, depth=10)]
    with BagWriter(burst) as writer:
        fast = writer.add_topic("/burst/fast", "std_msgs/msg/String", offer)
        slow = writer.add_topic("/burst/slow", "std_msgs/msg/String", offer)
        for i in range(1111):
            writer.write(fast, 1_000 + i, dds_bytes(String(data=f"burst {i:04d} " + "x" * 200)))
        for i in range(3):
            writer.write(slow, 1_000 + 500 * i, dds_bytes(String(data=f"slow {i}")))
    recorded = tmp_path / "recorded"
    recorder = subprocess.Popen([str(BAG_CLI), "record", "--topics", "/burst/fast", "-o", str(recorded),
                                 "/burst/slow"], env=ros_isolation, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        play = subprocess.run([str(BAG_CLI), "play", str(burst), "--wait-for", "/burst/fast", "/burst/slow",
                               "--wait-timeout", "30"], env=ros_isolation, capture_output=True, text=True, timeout=120)
    finally:
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=30)
    assert play.returncode == 0, play.stdout + play.stderr
    assert "/burst/fast: played 1111 of 1111 messages" in play.stdout
    assert recorder.returncode == 0, output
    assert "/burst/fast: received 1111, wrote 1111 messages" in output, output
    assert ({t: [d for _, d in m] for t, m in bag_messages(recorded).items()}
            == {t: [d for _, d in m] for t, m in bag_messages(burst).items()})


def dds_bytes(message) -> bytes:
    """CDR as DDS delivers it (and a recorder stores it): padded to a multiple of 4 bytes."""
    data = serialize_message(message)
    return data + bytes(-len(data) % 4)
