# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Heartbeat inputs of gr00t_node (twist_mux-style): an e-stop topic that must keep publishing, a policy-enable
deadman with a timeout, and a compressed camera; one node process for the module."""
from __future__ import annotations

import threading

import pytest
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from conftest import wait_until
from node_rig import GROUPS, LATCHED, NodeRig, is_policy

pytestmark = pytest.mark.usefixtures("garbage_collector_paused")

NS = "/gr00t_heartbeat"
TIMEOUT_S = 0.5
# Longer than discovery between processes can take (up to ~3 s here): the latched e-stop must not engage before
# the node has heard the test's first heartbeat.
ESTOP_TIMEOUT_S = 4.0
OVERRIDES = {
    "action_rate_hz": 1.0,
    "execute_steps": 1,
    "diagnostics_period": 0.2,
    "image_topic": "",
    "compressed_image_topic": "camera/image_raw/compressed",
    "policy_enable_topic": "policy_enable",
    "policy_enable_timeout": TIMEOUT_S,
    "estop_timeout": ESTOP_TIMEOUT_S,
}


class Heartbeat:
    """Publishes `value` on a topic at 10 Hz while `beating` is set."""

    def __init__(self, probe, topic: str, value: bool, qos):
        self.publisher = probe.publisher(Bool, topic, qos)
        self.value = value
        self.beating = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            if self.beating.is_set():
                self.publisher.publish(Bool(data=self.value))

    def close(self):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def rig(ros_probe, launch_gr00t_node, tiny_checkpoint):
    process = launch_gr00t_node(OVERRIDES, namespace=NS.strip("/"), model_path=tiny_checkpoint)
    rig = NodeRig(ros_probe, process, NS, step_s=1.0, compressed=True, joint_hz=20.0, camera_hz=20.0)
    rig.enable = Heartbeat(ros_probe, f"{NS}/policy_enable", True, 10)
    rig.estop_beat = Heartbeat(ros_probe, f"{NS}/estop", False, LATCHED)
    rig.enable.beating.set()
    rig.estop_beat.beating.set()
    try:
        rig.start()
        yield rig
        rig.assert_no_violations()
    finally:
        rig.enable.close()
        rig.estop_beat.close()
        assert rig.close() == 0, rig.process.log()[-4000:]


def test_compressed_camera_drives_the_policy_while_enabled(rig):
    chunk = rig.policy_chunk()
    assert all(len(msg.points) == 16 for msg in chunk.values())


def test_policy_enable_lapse_holds_until_enabled_again(rig):
    rig.policy_chunk()
    since = rig.marks()
    diag_mark = rig.diagnostics.mark()
    rig.enable.beating.clear()
    rig.holds(since)
    rig.diagnostic(lambda text: "policy_enable" in text and f"for {TIMEOUT_S} s" in text, since=diag_mark)
    assert rig.mode_topic.messages[-1].data == "policy", "a lapsed deadman pauses the policy, the mode stays"
    rig.enable.beating.set()
    chunk = rig.policy_chunk(rig.marks())
    assert all(len(msg.points) == 16 for msg in chunk.values())


def test_lost_estop_heartbeat_engages_the_estop(rig):
    rig.policy_chunk()
    since = rig.marks()
    rig.estop_beat.beating.clear()
    rig.checker.estop_engaged()
    rig.holds(since)
    rig.mode_topic.wait_for(lambda m: m.data == "hold")
    rig.diagnostic(lambda text: "estop" in text and "no message on estop" in text)
    rig.estop_beat.beating.set()
    assert not rig.enter("policy"), "a resumed heartbeat does not release the latch"
    # Resume succeeds once the node has heard the heartbeat again (the signal is then released).
    wait_until(lambda: rig.call(Trigger, "resume", Trigger.Request()).success, 10,
               "~/resume to succeed after the heartbeat returned")
    rig.checker.estop_resumed()
    assert rig.enter("policy")
    chunk = rig.policy_chunk(rig.marks())
    assert set(chunk) == set(GROUPS) and all(is_policy(m) for m in chunk.values())
