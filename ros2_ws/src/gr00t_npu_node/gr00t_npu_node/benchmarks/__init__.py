# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmarks, on top of everything else (nothing in the package imports them): `inference` times one
`get_action` stage by stage on the plain and optimized paths (gr00t-npu-bench); `node_overhead` measures what the
running node adds around the model (`python -m gr00t_npu_node.benchmarks.node_overhead`)."""
