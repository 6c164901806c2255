# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Data sets and bags: LeRobot GR1 episodes converted to rosbag2, episodes read back from bags, the synthetic
demo episode, and the bag layout (topics, time base, joint names)."""
