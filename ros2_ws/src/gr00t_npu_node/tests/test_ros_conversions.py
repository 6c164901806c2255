# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Message conversions of the ROS layer without a middleware: image decoding (against OpenCV's colour
conversions, which is what cv_bridge's `imgmsg_to_cv2(msg, "rgb8")` applies), joint-state mapping, input
synchronisation, chunk timing and trajectory messages."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from crafted import png_header
from gr00t_npu_node.ros import messages
from gr00t_npu_node.ros.chunk_plan import plan_chunk, steps_in_past
from gr00t_npu_node.ros.image_codec import compressed_to_rgb, frame_size, image_to_rgb
from gr00t_npu_node.ros.inputs import InputBuffer
from gr00t_npu_node.ros.joint_map import JointStateMapper
from gr00t_npu_node.ros.worker import CLOCK_STALL_S, wait_for_clock, wait_for_joint_state_near

RNG = np.random.default_rng(0)
CV_TO_RGB = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}


def image_msg(pixels: np.ndarray, encoding: str, padding: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 77, np.uint8)], axis=1)
    return Image(height=height, width=width, encoding=encoding, step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize("encoding", list(CV_TO_RGB))
@pytest.mark.parametrize("padding", [0, 7])
def test_image_decoding_matches_opencv_conversion(encoding, padding):
    channels, code = CV_TO_RGB[encoding]
    pixels = RNG.integers(0, 256, (37, 53, channels), np.uint8)
    expected = pixels if code is None else cv2.cvtColor(pixels.squeeze(-1) if channels == 1 else pixels, code)
    rgb = image_to_rgb(image_msg(pixels, encoding, padding))
    assert rgb.shape == (37, 53, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, expected)


def test_unpadded_rgb8_is_a_view_of_the_message():
    msg = image_msg(RNG.integers(0, 256, (8, 6, 3), np.uint8), "rgb8")
    assert np.shares_memory(image_to_rgb(msg), np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize(
    "change, complaint",
    [
        ({"encoding": "yuv422_yuy2"}, "encoding 'yuv422_yuy2' is not supported"),
        ({"encoding": "16UC1"}, "not supported"),
        ({"step": 10}, "step 10 is shorter than a row"),
        ({"height": 5}, r"data has 96 bytes but step\*height = 24\*5"),
        ({"width": 0}, "empty"),
    ],
)
def test_malformed_images_are_rejected_with_the_reason(change, complaint):
    msg = image_msg(np.zeros((4, 8, 3), np.uint8), "rgb8")
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(ValueError, match=complaint):
        image_to_rgb(msg)


def test_compressed_png_decodes_to_rgb():
    rgb = RNG.integers(0, 256, (20, 30, 3), np.uint8)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="png", data=png.tobytes())), rgb)
    with pytest.raises(ValueError, match="could not be decoded"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"not an image"))


def test_compressed_frame_size_is_read_from_the_header_alone():
    rgb = RNG.integers(0, 256, (20, 30, 3), np.uint8)
    for ext in (".png", ".jpg"):
        encoded = cv2.imencode(ext, rgb)[1].tobytes()
        assert frame_size(CompressedImage(format=ext[1:], data=encoded), compressed=True) == (30, 20)
    # a PNG announcing 30000 x 30000 pixels: its size is known without decoding a single one
    assert frame_size(CompressedImage(format="png", data=png_header(8000, 6000)), compressed=True) == (8000, 6000)
    with pytest.raises(ValueError, match="too large to decode"):
        frame_size(CompressedImage(format="png", data=png_header(30000, 30000)), compressed=True)
    with pytest.raises(ValueError, match="no data"):
        frame_size(CompressedImage(format="jpeg", data=b""), compressed=True)
    with pytest.raises(ValueError, match="no readable image header"):
        frame_size(CompressedImage(format="jpeg", data=b"\xff\xd8 garbage"), compressed=True)
    assert frame_size(Image(width=7, height=3), compressed=False) == (7, 3)


def test_undecodable_compressed_data_is_a_value_error_not_an_opencv_exception():
    for data in (b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"\xff\xd8\xff\xe0" + b"\0" * 40):
        with pytest.raises(ValueError, match="could not be decoded"):
            compressed_to_rgb(CompressedImage(format="png", data=data))


# ---- joint states ---------------------------------------------------------------------------------------------
GROUPS = {"arm": ("a1", "a2", "a3"), "waist": ("w1",)}


def test_joint_state_is_mapped_by_name_whatever_the_order():
    mapper = JointStateMapper(GROUPS)
    msg = JointState(name=["w1", "leg", "a3", "a1", "a2"], position=[4.0, 9.0, 3.0, 1.0, 2.0])
    positions = mapper.positions(msg)
    np.testing.assert_array_equal(positions["arm"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(positions["waist"], [4.0])
    reordered = JointState(name=["a1", "a2", "a3", "w1"], position=[1.5, 2.5, 3.5, 4.5])
    np.testing.assert_array_equal(mapper.positions(reordered)["arm"], [1.5, 2.5, 3.5])


@pytest.mark.parametrize(
    "names, position, complaint",
    [
        (["a1", "a3", "w1"], [0.0, 0.0, 0.0], "lacks 1 joint.*a2"),
        (["a1", "a2", "a3", "w1"], [0.0, float("nan"), 0.0, float("inf")], "non-finite positions for a2, w1"),
        (["a1", "a2", "a3", "w1"], [0.0, 0.0], "4 names but 2 positions"),
    ],
)
def test_bad_joint_states_are_rejected_naming_the_joints(names, position, complaint):
    with pytest.raises(ValueError, match=complaint):
        JointStateMapper(GROUPS).positions(JointState(name=names, position=position))


def test_snapshot_pairs_the_newest_image_with_the_closest_joint_state():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    for stamp in (100, 200, 300, 400):
        buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1"], position=[stamp] * 4), stamp, stamp)
    buffer.put_image(Image(), 240, compressed=False, received_ns=0, arrived_ns=240)
    buffer.put_image(Image(), 330, compressed=False, received_ns=0, arrived_ns=330)
    snapshot = buffer.snapshot()
    assert snapshot.image.stamp_ns == 330 and snapshot.joint_stamp_ns == 300
    assert buffer.latest_measured().stamp_ns == 400
    buffer.put_image(Image(), 390, compressed=False, received_ns=0, arrived_ns=390)
    assert buffer.snapshot(snapshot.image).image.stamp_ns == 330, "a frame waited on stays the cycle's frame"
    assert buffer.snapshot().image.stamp_ns == 390
    buffer.reset()  # the clock went back while a cycle waited on its frame
    assert buffer.snapshot(snapshot.image).image is None, "a frame of the old timeline is forgotten"


def test_the_buffer_tells_whether_a_joint_state_of_an_images_instant_has_arrived():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    assert not buffer.has_joint_state_since(0), "none yet"
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1"], position=[0.0] * 4), 100, 100)
    assert buffer.has_joint_state_since(100) and not buffer.has_joint_state_since(101)
    buffer.put_joint_state(JointState(name=["w1"], position=[0.0]), 150, 150)  # one publisher's joints: merged
    assert buffer.has_joint_state_since(150)


def test_latest_measured_skips_invalid_joint_states():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1"], position=[1.0] * 4), 10, 10)
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1"], position=[float("nan")] * 4), 20, 20)
    measured = buffer.latest_measured()
    assert measured.stamp_ns == 10 and np.all(measured.positions["arm"] == 1.0)


def test_joint_states_from_several_publishers_merge_by_name_with_each_joints_stamp():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "leg"], position=[1.0, 2.0, 3.0, 9.0]), 100, 100)
    assert buffer.latest_measured() is None and buffer.latest_joint_fresh_ns() is None, "w1 not seen yet"
    buffer.put_joint_state(JointState(name=["w1"], position=[4.0]), 130, 130)
    buffer.put_joint_state(JointState(name=["a2"], position=[2.5]), 160, 160)
    measured = buffer.latest_measured()
    np.testing.assert_array_equal(measured.positions["arm"], [1.0, 2.5, 3.0])
    np.testing.assert_array_equal(measured.positions["waist"], [4.0])
    assert measured.stamp_ns == 160 and buffer.latest_joint_fresh_ns() == 100, "as fresh as its stalest joint"
    sample = buffer.snapshot().joint_msg
    assert JointStateMapper(GROUPS).updated_before(sample.name, sample.joint_stamps_ns, 120) == ["a1", "a3"]
    # A late message of one publisher fills joints it is newest for and never overwrites newer data.
    buffer.put_joint_state(JointState(name=["a1", "a2", "w1"], position=[5.0, 7.0, 8.0]), 120, 120)
    latest = buffer.snapshot().joint_msg
    assert latest.stamp_ns == 160
    positions = JointStateMapper(GROUPS).positions(latest)
    np.testing.assert_array_equal(positions["arm"], [5.0, 2.5, 3.0])
    np.testing.assert_array_equal(positions["waist"], [4.0])


def test_a_clock_jump_back_forgets_the_merged_joints():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1"], position=[1.0] * 4), 5_000_000_000, 5_000_000_000)
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3"], position=[2.0] * 3), 1_000, 1_000)
    assert buffer.snapshot().joint_msg.stamp_ns == 1_000
    assert buffer.latest_measured() is None, "w1 belongs to the old timeline"


def test_joints_the_node_does_not_use_are_not_stored():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    extra = [f"finger_{i}" for i in range(5000)]
    buffer.put_joint_state(JointState(name=["a1", "a2", "a3", "w1", *extra], position=[1.0] * 5004), 10, 10)
    assert buffer.snapshot().joint_msg.name == ("a1", "a2", "a3", "w1")


def test_a_joint_moving_faster_than_its_velocity_limit_is_reported():
    buffer = InputBuffer(JointStateMapper(GROUPS), {"a1": 2.0, "a2": 2.0, "a3": 2.0, "w1": 1.0})
    names = ["a1", "a2", "a3", "w1"]
    assert buffer.put_joint_state(JointState(name=names, position=[0.0] * 4), 0, 0) is None
    # 10 ms later: 0.06 rad is within 2 rad/s * 10 ms + the 0.05 rad noise allowance; 0.3 rad is not
    assert buffer.put_joint_state(JointState(name=names, position=[0.06, 0, 0, 0]), 10_000_000, 10_000_000) is None
    jump = buffer.put_joint_state(JointState(name=["a2"], position=[0.3]), 20_000_000, 20_000_000)
    assert jump is not None and "a2 0.000 -> 0.300 rad in 10.0 ms" in jump
    assert buffer.snapshot().joint_conflict == (20_000_000, jump)
    # a slow move over a long gap is no jump
    assert buffer.put_joint_state(JointState(name=["w1"], position=[0.9]), 1_020_000_000, 1_020_000_000) is None


def test_freshness_is_the_older_of_stamp_and_arrival():
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    names = ["a1", "a2", "a3", "w1"]
    buffer.put_joint_state(JointState(name=names, position=[0.0] * 4), stamp_ns=500, arrived_ns=400)
    assert buffer.latest_joint_fresh_ns() == 400, "a stamp ahead of the node's clock cannot make it fresher"
    buffer.put_image(Image(), 300, compressed=False, received_ns=0, arrived_ns=350)
    assert buffer.latest_image_fresh_ns() == 300
    buffer.reset()
    assert buffer.latest_joint_fresh_ns() is None and buffer.latest_image_fresh_ns() is None


@pytest.mark.parametrize(
    "names, position, complaint",
    [(["a1", "a2"], [0.0], "2 names but 1 positions"), (["a1", "a1"], [0.0, 1.0], "names a1 more than once")],
)
def test_malformed_joint_states_are_refused_and_nothing_is_merged(names, position, complaint):
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    with pytest.raises(ValueError, match=complaint):
        buffer.put_joint_state(JointState(name=names, position=position), 10, 10)
    assert buffer.snapshot().joint_msg is None and buffer.joint_states_received == 0


# ---- chunk timing ---------------------------------------------------------------------------------------------
def test_steps_already_due_are_skipped_and_the_start_moves_with_them():
    step = 0.05
    assert steps_in_past(0, 0, step) == 0
    assert steps_in_past(0, int(0.049e9), step) == 0
    assert steps_in_past(0, int(0.05e9), step) == 1
    chunk = np.arange(16 * 3, dtype=np.float64).reshape(16, 3)
    plan = plan_chunk(chunk, observation_stamp_ns=1_000_000_000, now_ns=1_000_000_000 + int(0.125e9), step_s=step,
                      measured=np.zeros(3), handover_steps=None)
    assert plan.skipped_steps == 2 and plan.num_points == 14
    assert plan.start_ns == 1_000_000_000 + int(0.1e9), "kept step j is still due at its original time"
    np.testing.assert_array_equal(plan.positions, chunk[2:])
    assert plan_chunk(chunk, observation_stamp_ns=0, now_ns=int(0.8e9), step_s=step, measured=np.zeros(3),
                      handover_steps=None) is None


def test_handover_starts_at_the_measured_position_and_blends_in():
    measured = np.array([-1.0, 0.0, 2.0])
    plan = plan_chunk(np.ones((16, 3)), observation_stamp_ns=0, now_ns=0, step_s=0.05, measured=measured,
                      handover_steps=4)
    q = plan.positions
    np.testing.assert_array_equal(q[0], measured)
    np.testing.assert_allclose(q[2], 0.5 * measured + 0.5)
    np.testing.assert_array_equal(q[4:], 1.0)


# ---- trajectory messages --------------------------------------------------------------------------------------
def test_joint_trajectory_message_round_trips_through_trajectory_arrays():
    q = RNG.normal(size=(16, 3))
    v = RNG.normal(size=(16, 3))
    times = [(i + 1) * 50_000_000 for i in range(16)]
    msg = messages.joint_trajectory(("a1", "a2", "a3"), 1_500_000_000, times, q, v)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 500_000_000)
    positions, velocities, times_ns = messages.trajectory_arrays(msg, ("a1", "a2", "a3"))
    np.testing.assert_array_equal(positions, q)
    np.testing.assert_array_equal(velocities, v)
    assert times_ns.tolist() == times


def test_teleop_trajectory_is_reordered_and_checked():
    point = JointTrajectoryPoint(positions=[3.0, 1.0, 2.0], time_from_start=Duration(nanosec=10))
    msg = JointTrajectory(joint_names=["a3", "a1", "a2"], points=[point])
    positions, velocities, _ = messages.trajectory_arrays(msg, ("a1", "a2", "a3"))
    np.testing.assert_array_equal(positions, [[1.0, 2.0, 3.0]])
    assert velocities is None
    backwards = JointTrajectory(joint_names=["a1", "a2", "a3"], points=[
        JointTrajectoryPoint(positions=[0.0] * 3, time_from_start=Duration(sec=2)),
        JointTrajectoryPoint(positions=[0.0] * 3, time_from_start=Duration(sec=1)),
    ])
    with pytest.raises(ValueError, match="strictly increasing"):
        messages.trajectory_arrays(backwards, ("a1", "a2", "a3"))
    with pytest.raises(ValueError, match="unknown x9"):
        messages.trajectory_arrays(JointTrajectory(joint_names=["a1", "a2", "x9"], points=[point]), ("a1", "a2", "a3"))


def test_action_chunk_layout_is_labelled():
    chunk = RNG.normal(size=(16, 29)).astype(np.float32)
    msg = messages.action_chunk(chunk)
    assert [(d.label, d.size, d.stride) for d in msg.layout.dim] == [("step", 16, 464), ("joint", 29, 29)]
    np.testing.assert_array_equal(np.asarray(msg.data, np.float32).reshape(16, 29), chunk)


def test_a_wait_for_the_nodes_clock_ends_at_the_time_or_when_its_condition_holds_and_on_a_stopped_clock():
    readings = []

    def advancing() -> int:  # 1 ms of the node's clock per look
        readings.append(len(readings) * 1_000_000)
        return readings[-1]

    stop = threading.Event()
    wait_for_clock(advancing, 20_000_000, stop)
    assert readings[-1] == 20_000_000, "returned when the clock reached the time, not before"
    started = time.monotonic()
    wait_for_clock(lambda: 5, 10, stop)  # a clock that stands still (a paused simulation, a replay's end)
    assert CLOCK_STALL_S <= time.monotonic() - started < CLOCK_STALL_S + 2.0
    readings.clear()
    wait_for_clock(advancing, 20_000_000, stop, until=lambda: len(readings) >= 5)
    assert len(readings) == 5, "returned as soon as what it waited for came, before the time"
    stop.set()
    started = time.monotonic()
    wait_for_clock(lambda: 5, 10, stop)
    assert time.monotonic() - started < 0.5, "the worker stopping ends the wait"


def test_a_frame_waits_for_a_joint_state_close_enough_and_no_longer_than_the_skew_allows():
    names, frame_ns, skew_ns = ["a1", "a2", "a3", "w1"], 1_000_000_000, 50_000_000
    buffer = InputBuffer(JointStateMapper(GROUPS), {})
    buffer.put_image(Image(), frame_ns, compressed=False, received_ns=0, arrived_ns=frame_ns)
    buffer.put_joint_state(JointState(name=names, position=[0.0] * 4), frame_ns - 60_000_000, frame_ns)
    frame, stop = buffer.snapshot().image, threading.Event()

    def joint_state_of_the_frames_instant_arrives():
        time.sleep(0.1)
        buffer.put_joint_state(JointState(name=names, position=[1.0] * 4), frame_ns, frame_ns + 20_000_000)

    late = threading.Thread(target=joint_state_of_the_frames_instant_arrives)
    late.start()
    started = time.monotonic()
    wait_for_joint_state_near(buffer, frame_ns, skew_ns, lambda: frame_ns, stop)  # a clock standing at the frame
    late.join()
    assert 0.1 <= time.monotonic() - started < CLOCK_STALL_S / 2, "ended when the joint state came"
    assert buffer.snapshot(frame).joint_stamp_ns == frame_ns

    def clock_from(start_ns: int):
        readings = []

        def now_ns() -> int:  # 1 ms of the node's clock per look
            readings.append(start_ns + len(readings) * 1_000_000)
            return readings[-1]

        return now_ns, readings

    later_ns = frame_ns + 200_000_000  # a frame no joint state is close to
    now_ns, readings = clock_from(later_ns)
    wait_for_joint_state_near(buffer, later_ns, skew_ns, now_ns, stop)
    assert readings[-1] == later_ns + skew_ns, "waited until no joint state close enough could come"
    now_ns, readings = clock_from(frame_ns + skew_ns)
    wait_for_joint_state_near(buffer, frame_ns + skew_ns, skew_ns, now_ns, stop)
    assert len(readings) == 1, "a joint state close enough is there: no wait"
