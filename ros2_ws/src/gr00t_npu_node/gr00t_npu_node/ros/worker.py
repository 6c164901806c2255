# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""The inference worker: one thread, never a callback. Each cycle takes the newest image and the joint state
closest to its stamp, checks them, runs `policy.get_action`, plans the chunk and hands it to the safety gate. A
frame can arrive a moment before the joint states of its instant (joint states that come in bursts, a publisher or
a simulation's clock catching up after a stall): as an approximate-time synchronizer does, a cycle whose newest
joint state is more than max_sync_skew older than the frame waits for one close enough, until the node's clock
is max_sync_skew past the frame's stamp (any joint state close enough is stamped by then).

Cadence (inference itself is never overlapped; a cycle also waits for an image newer than the last one used):
* `real_time_chunking` (asynchronous execution): the chunk of observation time T hands over to the next one at
  T + execute_steps steps, so the next inference starts that much earlier than its measured latency (a running
  95th percentile of the node clock's inference durations plus `rtc_latency_margin`). The new chunk is generated
  with the running chunk's plan as guidance: its steps up to the point where it takes over equal the running
  chunk's, the overlap after them is pulled toward it (gr00t_npu_node.guidance), and the published trajectory
  starts with the running chunk's own next point, so the controller switches at a planned point.
* otherwise: the next inference starts `execute_steps` steps after the start of the last published chunk, and
  the new chunk replaces the rest of the running one when it is published.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from gr00t_npu_node.guidance import ChunkGuidance
from gr00t_npu_node.policy import NonFiniteActionError
from gr00t_npu_node.ros.chunk_plan import PlannedChunk, plan_chunk, steps_in_past
from gr00t_npu_node.ros.image_codec import compressed_to_rgb, frame_size, image_to_rgb
from gr00t_npu_node.ros.inputs import InputBuffer, Snapshot
from gr00t_npu_node.ros.joint_map import JointStateMapper
from gr00t_npu_node.ros.monitor import ERROR, Monitor
from gr00t_npu_node.ros.params import NodeParams
from gr00t_npu_node.ros.safety import SafetyGate

WAKE_S = 0.1  # re-check period while idle; waits end earlier on every new image, mode change or stop
LATENCY_WINDOW = 50  # inferences whose node-clock duration schedules the next one
CLOCK_POLL_S = 0.002  # wall time between looks at the node's clock while waiting for a time on it
CLOCK_STALL_S = 1.0  # wall time without the node's clock moving that ends a wait for a time on it
INPUT_SOURCES = ("camera", "joint_states", "instruction")


def wait_for_clock(now_ns: Callable[[], int], clock_ns: int, stop: threading.Event,
                   until: Callable[[], bool] = lambda: False) -> None:
    """Sleep until the clock `now_ns` (the node's, sim time included) reaches `clock_ns` or `until()` holds; sooner
    when `stop` is set or the clock stands still for CLOCK_STALL_S of wall time (a paused simulation, a replay's
    end: a chunk already computed is not held back for good)."""
    last, moved_at = now_ns(), time.monotonic()
    while last < clock_ns and not until():
        if stop.wait(CLOCK_POLL_S):
            return
        now = now_ns()
        if now != last:
            last, moved_at = now, time.monotonic()
        elif time.monotonic() - moved_at > CLOCK_STALL_S:
            return


def wait_for_joint_state_near(inputs: InputBuffer, image_stamp_ns: int, max_skew_ns: int,
                              now_ns: Callable[[], int], stop: threading.Event) -> None:
    """Until a joint state at most `max_skew_ns` older than the frame (or newer) has arrived, or the clock `now_ns`
    is `max_skew_ns` past the frame's stamp: any joint state close enough is stamped by then (module docstring)."""
    wait_for_clock(now_ns, image_stamp_ns + max_skew_ns, stop,
                   until=lambda: inputs.has_joint_state_since(image_stamp_ns - max_skew_ns))


class InputFault(Exception):
    def __init__(self, source: str, message: str):
        super().__init__(message)
        self.source = source


@dataclass(frozen=True)
class Observation:
    policy_input: dict
    image_stamp_ns: int
    measured: dict[str, np.ndarray]


class InferenceWorker:
    def __init__(
        self,
        *,
        policy,
        params: NodeParams,
        rtc_mode: Optional[str],
        inputs: InputBuffer,
        mapper: JointStateMapper,
        gate: SafetyGate,
        monitor: Monitor,
        now_ns: Callable[[], int],
        publish_monitors: Callable[[np.ndarray | None, float, float | None], None],
    ):
        self._policy = policy
        self._params = params
        self._inputs = inputs
        self._mapper = mapper
        self._gate = gate
        self._monitor = monitor
        self._now_ns = now_ns
        self._publish_monitors = publish_monitors
        self._step_ns = round(params.step_s * 1e9)
        self._video_key = policy.video_keys[0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_seq = 0
        self._last_published_epoch = -1
        self._next_due_ns = 0
        self._latencies_ns: deque[int] = deque(maxlen=LATENCY_WINDOW)  # on the node's clock (sim time included)
        self._rtc_mode = rtc_mode
        self._token_counts: tuple[str, int] = ("", 0)  # the last instruction counted (tokenizing is not free)

    def start(self) -> None:
        self._stop.clear()
        self._last_published_epoch = -1
        self._thread = threading.Thread(target=self._run, name="gr00t_inference", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inputs.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def restart_schedule(self) -> None:
        """Start over as on activation (the clock went back: the next inference was due at a time that may be far
        ahead now): the next cycle waits for an image of the new timeline."""
        self._next_due_ns = 0
        self._latencies_ns.clear()
        self._last_seq = self._inputs.image_seq

    def _run(self) -> None:
        while self._wait_for_trigger():
            try:
                self.cycle(started_ns=time.time_ns())
            except Exception as err:  # the node must keep running and say why; the next image retries
                self._monitor.count("inference_errors")
                self._monitor.fault("policy", f"inference cycle failed: {err!r}", ERROR)
                self._gate.hold("inference error")

    def _wait_for_trigger(self) -> bool:
        def new_image_while_allowed() -> bool:
            return self._stop.is_set() or (self._gate.policy_may_command and self._inputs.image_seq > self._last_seq)

        while not self._stop.is_set():
            if not self._inputs.wait_for(new_image_while_allowed, WAKE_S) or self._stop.is_set():
                continue
            remaining_s = (self._next_due_ns - self._now_ns()) * 1e-9
            if remaining_s <= 0:
                return True
            self._stop.wait(min(remaining_s, WAKE_S))
        return False

    def cycle(self, started_ns: int) -> bool:
        """One observation -> chunk cycle started at `started_ns` (system clock); True when a chunk was published
        (or suppressed by dry_run)."""
        epoch = self._gate.policy_epoch()
        if epoch is None:
            return False
        image = self._inputs.latest_image()
        if image is not None:
            wait_for_joint_state_near(self._inputs, image.stamp_ns, round(self._params.max_sync_skew * 1e9),
                                      self._now_ns, self._stop)
        snapshot = self._inputs.snapshot(image)
        if snapshot.image is not None:
            self._last_seq = snapshot.image.seq
        try:
            observation = self._observe(snapshot, self._now_ns())
        except InputFault as fault:
            self._monitor.fault(fault.source, str(fault))
            if not self._gate.holding():
                self._gate.hold(f"{fault.source}: {fault}")
            return False

        running = self._gate.running_chunk
        continuing = epoch == self._last_published_epoch and running is not None
        guidance = self._guidance(observation, running) if continuing and self._params.real_time_chunking else None
        inference_started, clock_started = time.perf_counter(), self._now_ns()
        try:
            if guidance is None:
                actions = self._policy.get_action(observation.policy_input)
            else:
                actions = self._policy.get_action(observation.policy_input, guidance=guidance)
        except NonFiniteActionError as err:
            self._monitor.count("dropped_chunks")
            self._monitor.fault("policy", f"{err}: nothing published", ERROR)
            return False
        simulated_ns = round(self._params.simulated_inference_latency * 1e9)
        wait_for_clock(self._now_ns, clock_started + simulated_ns, self._stop)
        latency_s = time.perf_counter() - inference_started
        self._latencies_ns.append(self._now_ns() - clock_started)
        self._monitor.record("inference_latency", latency_s)
        chunk = self._commanded_chunk(actions)

        # Blend in from the measured position after a handover, or when real-time chunking found the running
        # chunk already over; a chunk generated to continue the running one needs no blend.
        blend = not continuing or (self._params.real_time_chunking and guidance is None)
        plan = plan_chunk(
            chunk,
            observation_stamp_ns=observation.image_stamp_ns,
            now_ns=self._now_ns(),
            step_s=self._params.step_s,
            measured=np.concatenate([observation.measured[g] for g in self._params.groups]),
            handover_steps=self._params.handover_steps if blend else None,
        )
        published = self._gate.publish_policy_chunk(epoch, plan) if plan is not None else None
        overhead_s = None
        if published is not None:
            # From the later of the image's arrival and the cycle's start (a wait for the cadence is not overhead).
            overhead_s = (time.time_ns() - max(started_ns, snapshot.image.received_ns)) * 1e-9 - latency_s
            self._monitor.record("node_overhead", overhead_s)
        # Monitors after the controllers: they are not on the control path.
        self._publish_monitors(chunk if np.all(np.isfinite(chunk)) else None, latency_s, overhead_s)
        if plan is None:
            self._monitor.count("late_chunks")
            self._monitor.fault("policy", f"inference took {latency_s:.3f} s, longer than the whole chunk: dropped")
        if published is None:
            return False
        self._last_published_epoch = epoch
        handover_ns = observation.image_stamp_ns + self._params.execute_steps * self._step_ns
        if self._params.real_time_chunking:
            self._next_due_ns = handover_ns - self._expected_latency_ns()
        else:
            self._next_due_ns = plan.start_ns + self._params.execute_steps * self._step_ns
        self._monitor.clear(*INPUT_SOURCES, "policy")
        return True

    def _expected_latency_ns(self) -> int:
        """The 95th percentile of recent inference durations on the node's clock, plus rtc_latency_margin."""
        p95 = float(np.percentile(self._latencies_ns, 95)) if self._latencies_ns else 0.0
        return round(p95 + self._params.rtc_latency_margin * 1e9)

    def _guidance(self, observation: Observation, running: PlannedChunk) -> Optional[ChunkGuidance]:
        """What the `running` chunk asks of the chunk about to be generated from `observation`; None (reported)
        when it ends before the new chunk can take over."""
        step = self._step_ns
        horizon = self._policy.action_horizon
        times = observation.image_stamp_ns + np.arange(1, horizon + 1, dtype=np.int64) * step
        ready_ns = self._now_ns() + self._expected_latency_ns()
        # The steps already due when the chunk is ready are dropped (plan_chunk); the controller's segment towards
        # the first one kept is under way by then (a segment starts a step before its point is due), so that point
        # is frozen too: the new chunk takes over at the end of a segment of the running plan, as the paper's
        # discrete actions switch at a tick.
        first_kept = steps_in_past(observation.image_stamp_ns, ready_ns, self._params.step_s)
        running_times = running.start_ns + np.arange(1, running.num_points + 1, dtype=np.int64) * step
        overlap = int(np.searchsorted(times, running_times[-1], side="right"))
        frozen = first_kept + 1
        if frozen > overlap:
            gap_s = (ready_ns - running_times[-1]) * 1e-9
            self._monitor.count("chunk_gaps")
            self._monitor.fault(
                "policy",
                f"inference ({self._expected_latency_ns() * 1e-9:.3f} s at the 95th percentile) outlasts the running "
                f"chunk by {max(gap_s, 0.0):.3f} s: the robot stops at its last point before the next chunk; lower "
                "execute_steps or use a faster device",
            )
            return None
        planned = running.positions_at(times)
        splits = np.cumsum([len(group.joints) for group in self._params.groups.values()])[:-1]
        target = dict(zip(self._params.groups, np.split(planned, splits, axis=1)))
        return ChunkGuidance(target, frozen_steps=frozen, overlap_steps=overlap, mode=self._rtc_mode)

    def _check_image_size(self, width: int, height: int) -> None:
        """A frame of another size than the warm-up's is used, but on a graph-compiled device its first inference
        compiles again (seconds to minutes): reported as a camera_size fault until frames of that size stop."""
        p = self._params
        if (width, height) == (p.image_width, p.image_height):
            self._monitor.clear("camera_size")
            return
        self._monitor.count("unexpected_size_images")
        self._monitor.fault(
            "camera_size",
            f"frames are {width}x{height} but the policy was warmed up for {p.image_width}x{p.image_height}; the first "
            "inference at a new size may compile: set image_width and image_height to the camera's size",
        )

    def _observe(self, snapshot: Snapshot, now_ns: int) -> Observation:
        p = self._params
        image = snapshot.image
        if image is None:
            raise InputFault("camera", f"no image received yet on {p.image_topic or p.compressed_image_topic}")
        age_s = (now_ns - image.fresh_ns) * 1e-9
        if age_s > p.max_observation_age:
            raise InputFault(
                "camera", f"newest image is {age_s:.3f} s old (max_observation_age {p.max_observation_age} s)"
            )
        if snapshot.joint_msg is None:
            raise InputFault("joint_states", f"no joint state received yet on {p.joint_states_topic}")
        skew_s = abs(image.stamp_ns - snapshot.joint_stamp_ns) * 1e-9
        if skew_s > p.max_sync_skew:
            raise InputFault(
                "joint_states",
                f"closest joint state is {skew_s:.3f} s from the image (max_sync_skew {p.max_sync_skew} s)",
            )
        conflict = snapshot.joint_conflict
        if conflict is not None and (now_ns - conflict[0]) * 1e-9 <= p.max_observation_age:
            raise InputFault(
                "joint_states",
                f"joint positions jump: {conflict[1]}; do two publishers on {p.joint_states_topic} "
                "report the same joints?",
            )
        instruction = self._checked_instruction(snapshot)
        rgb = self._decode(image)
        joints = snapshot.joint_msg
        try:
            measured = self._mapper.positions(joints)
        except ValueError as err:
            self._monitor.count("rejected_joint_states")
            raise InputFault("joint_states", str(err)) from None
        # Judged as the watchdog judges (each joint's older of stamp and arrival, against now): a joint it holds
        # for as stale must not be commanded from a moment later.
        oldest_allowed_ns = now_ns - round(p.max_observation_age * 1e9)
        stale = self._mapper.updated_before(joints.name, joints.joint_fresh_ns, oldest_allowed_ns)
        if stale:
            raise InputFault(
                "joint_states",
                f"{len(stale)} joint(s) not updated within max_observation_age ({p.max_observation_age} s): "
                f"{', '.join(stale[:8])}{' ...' if len(stale) > 8 else ''} (has their publisher stopped?)",
            )
        policy_input = self._policy.observation(
            {self._video_key: rgb}, {g: measured[g] for g in self._policy.state_dims}, instruction
        )
        return Observation(policy_input, image.stamp_ns, measured)

    def _checked_instruction(self, snapshot: Snapshot) -> str:
        p = self._params
        if snapshot.instruction_problem is not None:
            raise InputFault("instruction", snapshot.instruction_problem)
        instruction = snapshot.instruction.strip()
        if not instruction:
            raise InputFault("instruction", f"instruction is empty: publish the task on {p.instruction_topic}")
        if self._token_counts[0] != instruction:
            self._token_counts = (instruction, self._policy.instruction_token_count(instruction))
        tokens = self._token_counts[1]
        if tokens > p.max_instruction_tokens:
            raise InputFault(
                "instruction",
                f"instruction is {tokens} tokens long ({len(instruction)} characters), more than "
                f"max_instruction_tokens ({p.max_instruction_tokens}): publish a shorter task",
            )
        return instruction

    def _decode(self, image) -> np.ndarray:
        """RGB pixels of the frame, its size checked before anything is decoded or resized."""
        p = self._params
        try:
            width, height = frame_size(image.msg, image.compressed)
            if width * height > p.max_image_pixels:
                raise ValueError(
                    f"frame of {width}x{height} has more than max_image_pixels ({p.max_image_pixels}) pixels"
                )
            self._policy.check_image_size(height, width)
            rgb = compressed_to_rgb(image.msg) if image.compressed else image_to_rgb(image.msg)
        except ValueError as err:
            self._monitor.count("rejected_images")
            raise InputFault("camera", str(err)) from None
        if rgb.shape[:2] != (height, width):
            self._monitor.count("rejected_images")
            decoded = f"{rgb.shape[1]}x{rgb.shape[0]}"
            raise InputFault("camera", f"compressed frame header says {width}x{height} but it decoded to {decoded}")
        self._check_image_size(width, height)
        return rgb

    def _commanded_chunk(self, actions: dict) -> np.ndarray:
        """The commanded groups' actions as one float64 [horizon, J] (groups in `policy_groups` order): the one
        layout of a chunk from here to the gate. ValueError for a group of the wrong shape."""
        horizon = self._policy.action_horizon
        parts = []
        for g in self._params.groups:
            a = actions.get(g)
            dim = self._policy.action_dims[g]
            if a is None or a.shape != (1, horizon, dim):
                raise ValueError(
                    f"policy returned {g} with shape {getattr(a, 'shape', None)}, expected (1, {horizon}, {dim})"
                )
            parts.append(a[0])
        return np.concatenate(parts, axis=1, dtype=np.float64)
