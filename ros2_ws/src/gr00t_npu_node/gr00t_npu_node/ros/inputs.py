# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
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
# A joint state stamped this much before the newest one means the clock went back (simulation reset, a bag replayed
# from its start), not a late message from one of several publishers: what was merged belongs to another timeline.
CLOCK_JUMP_NS = 1_000_000_000
# A joint whose reported position changes by more than its velocity limit allows, plus this much for sensor noise,
# is reported by two sources that disagree (or a sensor that glitched): its state cannot be trusted.
JUMP_TOLERANCE_RAD = 0.05


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
    arrived_ns: int  # node clock, when the callback stored it (staleness by arrival as well as by stamp)

    @property
    def fresh_ns(self) -> int:
        """The older of stamp and arrival: a stamp from a clock running ahead cannot make a frame look newer."""
        return min(self.stamp_ns, self.arrived_ns)


@dataclass(frozen=True)
class MeasuredPositions:
    positions: dict[str, np.ndarray]
    stamp_ns: int


@dataclass(frozen=True)
class JointSample:
    """Every joint seen so far after one JointState message: several publishers (arm and hand drivers, say) may
    each send some joints, merged by name. `name`/`position` read like a JointState's; `joint_stamps_ns` is each
    joint's last update and `stamp_ns` the newest of them."""

    name: tuple[str, ...]
    position: np.ndarray
    joint_stamps_ns: np.ndarray
    joint_fresh_ns: np.ndarray  # per joint, the older of its stamp and its arrival on the node's clock
    stamp_ns: int


@dataclass(frozen=True)
class Snapshot:
    image: Optional[ImageSample]
    joint_msg: Optional[JointSample]  # the merged joint state closest in time to the image, None if none yet
    joint_stamp_ns: int
    instruction: str
    instruction_problem: Optional[str]  # why the newest instruction message could not be used, None if it could
    joint_conflict: Optional[tuple[int, str]]  # (arrival on the node's clock, description) of the newest one


class InputBuffer:
    """Thread-safe store of the newest image, recent joint states and the instruction, with message counters."""

    def __init__(self, mapper: JointStateMapper, velocity_limits: dict[str, float]):
        self._mapper = mapper
        # Only the joints the node uses are merged, so a message naming thousands of others costs no memory.
        self._known = set(mapper.joints) | set(velocity_limits)
        self._velocity_limits = velocity_limits
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._image: Optional[ImageSample] = None
        self._image_seq = 0
        self._joint_stamps: deque[int] = deque(maxlen=JOINT_STATE_HISTORY)
        self._joint_msgs: deque[JointSample] = deque(maxlen=JOINT_STATE_HISTORY)
        self._slots: dict[str, int] = {}
        self._last_valid: Optional[MeasuredPositions] = None
        self._instruction = ""
        self._instruction_problem: Optional[str] = None
        self._joint_conflict: Optional[tuple[int, str]] = None
        self.images_received = 0
        self.joint_states_received = 0

    # ---- writers (subscription callbacks) ------------------------------------------------------------------
    def put_image(self, msg, stamp_ns: int, compressed: bool, received_ns: int, arrived_ns: int) -> None:
        with self._changed:
            self._image_seq += 1
            self._image = ImageSample(msg, stamp_ns, self._image_seq, compressed, received_ns, arrived_ns)
            self.images_received += 1
            self._changed.notify_all()

    def put_joint_state(self, msg, stamp_ns: int, arrived_ns: int) -> Optional[str]:
        """Merges a JointState into the joint state by name; ValueError (nothing merged) for a malformed one.
        Returns a description of the joints whose new position is implausibly far from the last one (two
        publishers disagreeing), None when there are none."""
        names = tuple(msg.name)
        if len(msg.position) != len(names):
            raise ValueError(
                f"joint state has {len(names)} names but {len(msg.position)} positions; every named joint needs a "
                "position (message dropped)"
            )
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"joint state names {', '.join(repeated[:8])} more than once; message dropped")
        used = [i for i, name in enumerate(names) if name in self._known]
        names = tuple(names[i] for i in used)
        values = np.asarray(msg.position, dtype=np.float64)[used]
        with self._lock:
            previous = self._joint_msgs[-1] if self._joint_msgs else None
            if previous is not None and stamp_ns < previous.stamp_ns - CLOCK_JUMP_NS:
                self._clear_joints_locked()
                previous = None
            for name in names:
                self._slots.setdefault(name, len(self._slots))
            size = len(self._slots)
            position = np.full(size, np.nan)
            joint_stamps = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
            joint_fresh = joint_stamps.copy()
            if previous is not None:
                position[: len(previous.name)] = previous.position
                joint_stamps[: len(previous.name)] = previous.joint_stamps_ns
                joint_fresh[: len(previous.name)] = previous.joint_fresh_ns
            slots = np.fromiter((self._slots[n] for n in names), dtype=np.intp, count=len(names))
            conflict = self._implausible_jumps(names, values, position[slots], joint_stamps[slots], stamp_ns)
            if conflict is not None:
                self._joint_conflict = (arrived_ns, conflict)
            newer = joint_stamps[slots] <= stamp_ns  # a late message from one publisher never overwrites newer data
            position[slots[newer]] = values[newer]
            joint_stamps[slots[newer]] = stamp_ns
            joint_fresh[slots[newer]] = min(stamp_ns, arrived_ns)
            sample_stamp = max(stamp_ns, previous.stamp_ns) if previous is not None else stamp_ns
            sample = JointSample(tuple(self._slots), position, joint_stamps, joint_fresh, sample_stamp)
            self._joint_stamps.append(sample_stamp)
            self._joint_msgs.append(sample)
            self.joint_states_received += 1
        return conflict

    def _implausible_jumps(
        self, names: tuple[str, ...], new: np.ndarray, old: np.ndarray, old_stamps: np.ndarray, stamp_ns: int
    ) -> Optional[str]:
        jumps = []
        for name, q, q_old, t_old in zip(names, new, old, old_stamps):
            vmax = self._velocity_limits.get(name)
            if vmax is None or not (np.isfinite(q) and np.isfinite(q_old)):
                continue
            dt = abs(stamp_ns - int(t_old)) * 1e-9
            if abs(q - q_old) > vmax * dt + JUMP_TOLERANCE_RAD:
                jumps.append(f"{name} {q_old:.3f} -> {q:.3f} rad in {dt * 1e3:.1f} ms")
        if not jumps:
            return None
        return f"{', '.join(jumps[:4])}{' ...' if len(jumps) > 4 else ''} (faster than the joint's velocity limit)"

    def _clear_joints_locked(self) -> None:
        self._joint_stamps.clear()
        self._joint_msgs.clear()
        self._slots.clear()
        self._last_valid = None
        self._joint_conflict = None

    def put_instruction(self, text: str, problem: Optional[str] = None) -> None:
        """The newest instruction; `problem` says why a message could not be read (the old task is not kept:
        the operator meant to change it)."""
        with self._changed:
            self._instruction = text
            self._instruction_problem = problem
            self._changed.notify_all()

    def reset(self) -> None:
        """Forget every input but the instruction (the clock went back: what was stored belongs to another
        timeline)."""
        with self._changed:
            self._image = None
            self._clear_joints_locked()
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

    def latest_image(self) -> Optional[ImageSample]:
        return self._image

    def latest_image_stamp_ns(self) -> Optional[int]:
        image = self._image
        return image.stamp_ns if image else None

    def latest_image_fresh_ns(self) -> Optional[int]:
        image = self._image
        return image.fresh_ns if image else None

    def has_joint_state_since(self, stamp_ns: int) -> bool:
        """Whether a joint state stamped at or after `stamp_ns` has been merged."""
        with self._lock:
            return bool(self._joint_stamps) and self._joint_stamps[-1] >= stamp_ns

    def latest_joint_fresh_ns(self) -> Optional[int]:
        """When the policy joint updated longest ago was last updated, by stamp or arrival, whichever is older (a
        joint state is as fresh as its stalest joint); None while some policy joint has never been received."""
        with self._lock:
            sample = self._joint_msgs[-1] if self._joint_msgs else None
        if sample is None:
            return None
        try:
            return self._mapper.oldest_update_ns(sample.name, sample.joint_fresh_ns)
        except ValueError:
            return None

    def snapshot(self, image: Optional[ImageSample] = None) -> Snapshot:
        """`image` (None: the newest; forgotten too by a reset since), the merged joint state whose stamp is
        closest to it, and the instruction."""
        with self._lock:
            image = image if image is not None and self._image is not None else self._image
            joint_msg, joint_stamp = None, 0
            if self._joint_stamps:
                target = image.stamp_ns if image else self._joint_stamps[-1]
                i = bisect.bisect_right(self._joint_stamps, target)  # of equal stamps, the newest merge
                candidates = [k for k in (i - 1, i) if 0 <= k < len(self._joint_stamps)]
                best = min(candidates, key=lambda k: abs(self._joint_stamps[k] - target))
                joint_msg, joint_stamp = self._joint_msgs[best], self._joint_stamps[best]
            return Snapshot(
                image, joint_msg, joint_stamp, self._instruction, self._instruction_problem, self._joint_conflict
            )

    def latest_measured(self) -> Optional[MeasuredPositions]:
        """The newest merged joint state that maps cleanly (all joints present and finite), for holds and teleop."""
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
