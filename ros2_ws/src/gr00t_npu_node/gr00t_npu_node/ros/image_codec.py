# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""sensor_msgs/Image and CompressedImage -> RGB uint8 [H, W, 3], behaving like cv_bridge's
`imgmsg_to_cv2(msg, "rgb8")` for the 8-bit colour encodings a robot camera publishes.

Decoding is a numpy view of the message buffer (about 5 us for rgb8) plus at most one copy for a channel
reorder or row padding. cv_bridge is deliberately not used even where it is installed: it builds the same view
and converts with cv2.cvtColor, so it cannot be faster, and the PyPI build is broken with numpy 2 / OpenCV 5.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
import PIL.Image

# encoding -> (channels, index of the R, G, B channels in the pixel)
_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def image_to_rgb(msg) -> np.ndarray:
    """RGB uint8 [height, width, 3], C-contiguous; a zero-copy view for unpadded rgb8.

    Raises ValueError naming the problem for an unsupported encoding, a `step` shorter than a row, or a
    `data` field whose length is not `step * height`.
    """
    layout = _ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ValueError(
            f"image encoding {msg.encoding!r} is not supported; publish one of {', '.join(SUPPORTED_ENCODINGS)} "
            "or use the compressed image topic"
        )
    channels, rgb_index = layout
    height, width, step = msg.height, msg.width, msg.step
    row_bytes = width * channels
    if height == 0 or width == 0:
        raise ValueError(f"image is empty ({width}x{height}); the camera driver published no pixels")
    if step < row_bytes:
        raise ValueError(
            f"image step {step} is shorter than a row of {width} {msg.encoding} pixels ({row_bytes} bytes); "
            "step must be the row stride in bytes"
        )
    if len(msg.data) != step * height:
        raise ValueError(
            f"image data has {len(msg.data)} bytes but step*height = {step}*{height} = {step * height}; "
            "the message is truncated or its header is wrong"
        )
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)
    pixels = rows[:, :row_bytes].reshape(height, width, channels)
    if rgb_index == (0, 1, 2):
        rgb = pixels[..., :3]
    elif channels == 1:
        rgb = np.broadcast_to(pixels, (height, width, 3))
    else:
        rgb = pixels[..., 2::-1]
    return np.ascontiguousarray(rgb)


def frame_size(msg, compressed: bool) -> tuple[int, int]:
    """(width, height) of the frame, from the message's fields or, compressed, from the file header alone (a
    few bytes parsed, no pixel decoded): a small file that would decode to a huge frame is caught before."""
    if not compressed:
        return msg.width, msg.height
    if len(msg.data) == 0:
        raise ValueError("compressed image has no data (0 bytes); the camera driver published an empty frame")
    try:
        with PIL.Image.open(io.BytesIO(memoryview(msg.data))) as header:
            return header.size
    except PIL.Image.DecompressionBombError as err:
        raise ValueError(f"compressed image announces a frame too large to decode ({err})") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} bytes) has no readable image header ({err}); "
            "publish jpeg or png"
        ) from None


def compressed_to_rgb(msg) -> np.ndarray:
    """RGB uint8 [H, W, 3] from a sensor_msgs/CompressedImage (jpeg or png, as image_transport publishes)."""
    try:
        bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV raises for some malformed inputs and returns None for others
        bgr = None
    if bgr is None:
        raise ValueError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} bytes) could not be decoded; "
            "publish jpeg or png"
        )
    return np.ascontiguousarray(bgr[..., ::-1])
