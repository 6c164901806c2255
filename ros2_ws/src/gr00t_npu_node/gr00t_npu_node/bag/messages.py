"""CDR bytes of the messages a converted episode holds, made by rclpy's own serializer, and their decoding.

A DDS transport hands subscribers a payload padded to a multiple of 4 bytes, so `ros2 bag record` stores padded
bytes; messages are stored the same way here, which makes a converted bag identical to a recording of its replay.
"""
from __future__ import annotations

import array

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from ..ros.image_codec import image_to_rgb

def pad_cdr(raw: bytes) -> bytes:
    """The payload as a DDS transport delivers it: zero-padded to a multiple of 4 bytes."""
    return raw + bytes(-len(raw) % 4)


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    return stamp_ns // 10**9, stamp_ns % 10**9


def stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def image_cdr(rgb: np.ndarray, stamp: int, frame_id: str) -> bytes:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] frame, got {rgb.dtype} {rgb.shape}")
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = split_stamp(stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = rgb.shape[:2]
    msg.encoding = "rgb8"
    msg.step = rgb.shape[1] * 3
    msg.data = array.array("B", np.ascontiguousarray(rgb).tobytes())
    return pad_cdr(serialize_message(msg))


def joint_state_cdr(names: tuple[str, ...], positions: np.ndarray, stamp: int) -> bytes:
    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = split_stamp(stamp)
    msg.name = list(names)
    msg.position = array.array("d", np.asarray(positions, dtype=np.float64).tobytes())
    return pad_cdr(serialize_message(msg))


def string_cdr(text: str) -> bytes:
    return pad_cdr(serialize_message(String(data=text)))


def decode_image(raw: bytes) -> tuple[int, np.ndarray]:
    """(header stamp in ns, RGB uint8 [H, W, 3]) of a serialized sensor_msgs/Image, decoded like the node does."""
    msg = deserialize_message(raw, Image)
    return stamp_ns(msg.header), image_to_rgb(msg)


def decode_joint_state(raw: bytes) -> tuple[int, tuple[str, ...], np.ndarray]:
    """(header stamp in ns, names, positions) of a serialized sensor_msgs/JointState (any effort/velocity form)."""
    msg = deserialize_message(raw, JointState)
    if len(msg.position) != len(msg.name):
        raise ValueError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    return stamp_ns(msg.header), tuple(msg.name), np.array(msg.position, dtype=np.float64)


def decode_string(raw: bytes) -> str:
    return deserialize_message(raw, String).data
