# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""rosbag2 bags as ROS 2 writes them (Foxy to Jazzy, mcap or sqlite3, split, compressed): reading, writing,
playing and recording raw CDR messages, nothing lost without an error."""
