# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Evaluation of a policy or a running node on an episode: offline scoring, replay into the node with its
commands recorded, and the regression checks on what it commanded."""
