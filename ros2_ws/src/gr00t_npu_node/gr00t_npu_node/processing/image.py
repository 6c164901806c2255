# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Camera frame -> vision-encoder pixels, exactly as upstream GR00T N1.6 evaluates an image.

Two stages, as upstream splits them:
1. The processor's eval transform (albumentations 1.4.18 in upstream): `SmallestMaxSize(edge, INTER_AREA)` ->
   fractional center crop -> `SmallestMaxSize(edge, INTER_AREA)`; uint8 HWC in and out.
2. The Eagle collator: `smart_resize` to multiples of 28 pixels, PIL bicubic resize, then `(x - 127.5) / 127.5`
   in float32, channels first. Each 28x28 block becomes one `<IMG_CONTEXT>` token.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

PATCH_FACTOR = 28
PIXELS_PER_TOKEN = PATCH_FACTOR * PATCH_FACTOR
MIN_PIXELS = 4 * PIXELS_PER_TOKEN
MAX_PIXELS = 4096 * PIXELS_PER_TOKEN
MAX_SIDE = 500 * 14
MAX_ASPECT_RATIO = 200


def smallest_max_size_shape(height: int, width: int, max_size: int) -> tuple[int, int]:
    """The (height, width) albumentations `SmallestMaxSize` gives: the shorter side becomes `max_size`, the other is
    rounded with Python's `round` (half to even)."""
    scale = max_size / float(min(width, height))
    if scale == 1.0:
        return height, width
    return round(height * scale), round(width * scale)


def smallest_max_size(image: np.ndarray, max_size: int) -> np.ndarray:
    """albumentations `SmallestMaxSize`; an unchanged shape is not resampled."""
    height, width = image.shape[:2]
    new_height, new_width = smallest_max_size_shape(height, width, max_size)
    if (new_height, new_width) == (height, width):
        return image
    return cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_AREA)


def center_crop_shape(height: int, width: int, fraction: float) -> tuple[int, int]:
    return max(1, int(height * fraction)), max(1, int(width * fraction))


def fractional_center_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    """Upstream's `FractionalCenterCrop`: keep `int(side * fraction)` of each side, centred (offset floored)."""
    height, width = image.shape[:2]
    crop_height, crop_width = center_crop_shape(height, width, fraction)
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return image[top:top + crop_height, left:left + crop_width]


def eval_transform(image: np.ndarray, shortest_edge: int, crop_fraction: float) -> np.ndarray:
    """Upstream's deterministic eval image transform; uint8 [H, W, 3] -> uint8 [H', W', 3]."""
    image = smallest_max_size(image, shortest_edge)
    image = fractional_center_crop(image, crop_fraction)
    return np.ascontiguousarray(smallest_max_size(image, shortest_edge))


def smart_resize(
    height: int,
    width: int,
    factor: int = PATCH_FACTOR,
    min_pixels: int = MIN_PIXELS,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int]:
    """Eagle3-VL's `smart_resize`: each side to the nearest multiple of `factor` (at most 7000), then scaled
    down (floor) or up (ceil) when the area leaves [min_pixels, max_pixels]. Returns (height, width)."""
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"image of {height}x{width} has an aspect ratio above {MAX_ASPECT_RATIO}; the vision encoder cannot "
            "take it: crop the camera image to a less extreme shape"
        )
    h_bar = min(max(factor, round(height / factor) * factor), MAX_SIDE)
    w_bar = min(max(factor, round(width / factor) * factor), MAX_SIDE)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((h_bar * w_bar) / max_pixels)
        h_bar = math.floor(h_bar / beta / factor) * factor
        w_bar = math.floor(w_bar / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_pixel_values(image: np.ndarray) -> np.ndarray:
    """The Eagle collator's image path: uint8 [H, W, 3] -> float32 [3, H', W'] in [-1, 1], H' and W' from
    `smart_resize`. The resize is PIL's bicubic (`Image.resize`'s default, named here so it cannot drift)."""
    height, width = image.shape[:2]
    new_height, new_width = smart_resize(height, width)
    resized = Image.fromarray(image).resize((new_width, new_height), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1)
    # mean = std = 0.5 fused with the 1/255 rescale, as the fast image processor does it, in float32.
    return (pixels - np.float32(127.5)) / np.float32(127.5)


def image_token_count(pixel_values: np.ndarray) -> int:
    """Number of `<IMG_CONTEXT>` tokens for one image's pixel values [3, H, W]."""
    return pixel_values.shape[-2] * pixel_values.shape[-1] // PIXELS_PER_TOKEN


@dataclass(frozen=True)
class ImagePreprocessor:
    """Camera frame uint8 [H, W, 3] (any resolution) -> float32 [3, H', W'] pixels for the vision encoder."""

    shortest_edge: int = 256
    crop_fraction: float = 0.95

    def __post_init__(self) -> None:
        if self.shortest_edge < 1:
            raise ValueError(f"shortest_image_edge must be a positive pixel count, got {self.shortest_edge}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the pixels a frame of this size becomes, from the sizes alone; ValueError for a frame
        the vision encoder cannot take. Checked before any resize: a 1x2000 frame would otherwise first be scaled
        to 256x512000 (393 MB) before the aspect ratio is found too extreme."""
        if height < 1 or width < 1:
            raise ValueError(f"image of {height}x{width} has no pixels")
        height, width = smallest_max_size_shape(height, width, self.shortest_edge)
        height, width = center_crop_shape(height, width, self.crop_fraction)
        height, width = smallest_max_size_shape(height, width, self.shortest_edge)
        return smart_resize(height, width)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.output_size(*image.shape[:2])
        return to_pixel_values(eval_transform(image, self.shortest_edge, self.crop_fraction))
