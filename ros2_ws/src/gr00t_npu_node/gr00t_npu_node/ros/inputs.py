"""The latest inputs, written by subscription callbacks (which only store) and read by the inference worker."""
from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from gr00t_npu_node.ros.joint_map import JointStateMapper
from gr00t_npu_node.ros.messages import to_ns

JOINT_STATE_HISTORY = 256  # about 0.5 s at 500 Hz: enough to find the state closest to a camera frame


def stamp_to_ns(stamp, fallback_ns: int) -> int:
    """A header stamp in ns; a zero stamp (drivers that do not stamp) becomes the receive time."""
    ns = to_ns(stamp)
    return ns if ns else fallback_ns


@dataclass(frozen=True)
class ImageSample:
    msg: Any  # sensor_msgs/Image or sensor_msgs/CompressedImage
    stamp_ns: int
    seq: int
    compressed: bool
    received_ns: int  # system clock, when the middleware received it (for the node's overhead figure)


@dataclass(frozen=True)
class MeasuredPositions:
    positions: dict[str, np.ndarray]
    stamp_ns: int


@dataclass(frozen=True)
class Snapshot:
    image: Optional[ImageSample]
    joint_msg: Any  # the JointState closest in time to the image, None if none yet
    joint_stamp_ns: int
    instruction: str


class InputBuffer:
    """Thread-safe store of the newest image, recent joint states and the instruction, with message counters."""

    def __init__(self, mapper: JointStateMapper):
        self._mapper = mapper
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._image: Optional[ImageSample] = None
        self._image_seq = 0
        self._joint_stamps: deque[int] = deque(maxlen=JOINT_STATE_HISTORY)
        self._joint_msgs: deque[Any] = deque(maxlen=JOINT_STATE_HISTORY)
        self._last_valid: Optional[MeasuredPositions] = None
        self._instruction = ""
        self.images_received = 0
        self.joint_states_received = 0

    # ---- writers (subscription callbacks) ------------------------------------------------------------------
    def put_image(self, msg, stamp_ns: int, compressed: bool, received_ns: int) -> None:
        with self._changed:
            self._image_seq += 1
            self._image = ImageSample(msg, stamp_ns, self._image_seq, compressed, received_ns)
            self.images_received += 1
            self._changed.notify_all()

    def put_joint_state(self, msg, stamp_ns: int) -> None:
        with self._lock:
            if self._joint_stamps and stamp_ns < self._joint_stamps[-1]:
                # Out-of-order arrival (several publishers, or a clock jump): restart the history so it stays sorted.
                self._joint_stamps.clear()
                self._joint_msgs.clear()
            self._joint_stamps.append(stamp_ns)
            self._joint_msgs.append(msg)
            self.joint_states_received += 1

    def put_instruction(self, text: str) -> None:
        with self._changed:
            self._instruction = text
            self._changed.notify_all()

    def wake(self) -> None:
        """Wake a waiting worker (mode change, shutdown)."""
        with self._changed:
            self._changed.notify_all()

    # ---- readers (worker, watchdog) -------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `predicate()` (evaluated under the buffer's lock: it must not take other locks) holds."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)

    @property
    def image_seq(self) -> int:
        return self._image_seq

    @property
    def instruction(self) -> str:
        return self._instruction

    def latest_image_stamp_ns(self) -> Optional[int]:
        image = self._image
        return image.stamp_ns if image else None

    def latest_joint_stamp_ns(self) -> Optional[int]:
        with self._lock:
            return self._joint_stamps[-1] if self._joint_stamps else None

    def snapshot(self) -> Snapshot:
        """The newest image, the joint state whose stamp is closest to it, and the instruction."""
        with self._lock:
            image = self._image
            joint_msg, joint_stamp = None, 0
            if self._joint_stamps:
                target = image.stamp_ns if image else self._joint_stamps[-1]
                i = bisect.bisect_left(self._joint_stamps, target)
                candidates = [k for k in (i - 1, i) if 0 <= k < len(self._joint_stamps)]
                best = min(candidates, key=lambda k: abs(self._joint_stamps[k] - target))
                joint_msg, joint_stamp = self._joint_msgs[best], self._joint_stamps[best]
            return Snapshot(image, joint_msg, joint_stamp, self._instruction)

    def latest_measured(self) -> Optional[MeasuredPositions]:
        """The newest joint state that maps cleanly (all joints present and finite), for holds and teleop."""
        with self._lock:
            recent = list(zip(self._joint_stamps, self._joint_msgs))
        for stamp, msg in reversed(recent):
            if self._last_valid is not None and stamp <= self._last_valid.stamp_ns:
                break
            try:
                self._last_valid = MeasuredPositions(self._mapper.positions(msg), stamp)
                break
            except ValueError:
                continue  # the worker's input check diagnoses a bad joint state; a hold uses an older good one
        return self._last_valid
