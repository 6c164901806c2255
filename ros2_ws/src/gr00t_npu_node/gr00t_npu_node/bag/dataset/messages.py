# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""CDR bytes of the messages a converted episode holds, and their decoding.

Encoding uses rosbags' CDR serializer: deterministic bytes with zeroed padding (rclpy's serializer leaves padding
bytes uninitialized, so the same message would differ from run to run and leak memory into files). A DDS transport
hands subscribers a payload padded to a multiple of 4 bytes, so `ros2 bag record` stores padded bytes; stored
messages are padded the same way, which makes a converted bag identical to a recording of its replay.
Decoding uses rclpy, which also reads the form rclpy itself writes for a JointState with an empty trailing array
(4 more alignment bytes that rosbags' strict decoder rejects).
"""
from __future__ import annotations

import numpy as np
from rclpy.serialization import deserialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from gr00t_npu_node.ros.image_codec import image_to_rgb
from gr00t_npu_node.ros.messages import to_ns

_STORE = get_typestore(Stores.ROS2_JAZZY)
_Time = _STORE.types["builtin_interfaces/msg/Time"]
_Header = _STORE.types["std_msgs/msg/Header"]
_Image = _STORE.types["sensor_msgs/msg/Image"]
_JointState = _STORE.types["sensor_msgs/msg/JointState"]
_String = _STORE.types["std_msgs/msg/String"]
_EMPTY = np.zeros(0, dtype=np.float64)


def pad_cdr(raw: bytes | memoryview) -> bytes:
    """The payload as a DDS transport delivers it: zero-padded to a multiple of 4 bytes."""
    raw = bytes(raw)
    return raw + bytes(-len(raw) % 4)


def _header(stamp: int, frame_id: str = ""):
    return _Header(stamp=_Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=frame_id)


def image_cdr(rgb: np.ndarray, stamp: int, frame_id: str) -> bytes:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] frame, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    msg = _Image(header=_header(stamp, frame_id), height=height, width=width, encoding="rgb8", is_bigendian=0,
                 step=width * 3, data=np.ascontiguousarray(rgb).reshape(-1))
    return pad_cdr(_STORE.serialize_cdr(msg, _Image.__msgtype__))


def joint_state_cdr(names: tuple[str, ...], positions: np.ndarray, stamp: int) -> bytes:
    msg = _JointState(header=_header(stamp), name=list(names), position=np.asarray(positions, dtype=np.float64),
                      velocity=_EMPTY, effort=_EMPTY)
    return pad_cdr(_STORE.serialize_cdr(msg, _JointState.__msgtype__))


def string_cdr(text: str) -> bytes:
    return pad_cdr(_STORE.serialize_cdr(_String(data=text), _String.__msgtype__))


def decode_image(raw: bytes) -> tuple[int, np.ndarray]:
    """(header stamp in ns, RGB uint8 [H, W, 3]) of a serialized sensor_msgs/Image, decoded like the node does."""
    msg = deserialize_message(raw, Image)
    return to_ns(msg.header.stamp), image_to_rgb(msg)


def decode_joint_state(raw: bytes) -> tuple[int, tuple[str, ...], np.ndarray]:
    """(header stamp in ns, names, positions) of a serialized sensor_msgs/JointState (any effort/velocity form)."""
    msg = deserialize_message(raw, JointState)
    if len(msg.position) != len(msg.name):
        raise ValueError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    return to_ns(msg.header.stamp), tuple(msg.name), np.array(msg.position, dtype=np.float64)


def decode_string(raw: bytes) -> str:
    return deserialize_message(raw, String).data
