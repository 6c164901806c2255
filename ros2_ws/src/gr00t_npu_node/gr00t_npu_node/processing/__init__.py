# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""GR00T N1.6 pre/post-processing: camera frames, instruction prompt and robot state to model tensors
(`Gr00tProcessor`), and the model's normalized action chunk back to joint targets."""
