# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""What the chunk a robot is executing asks of the next one: real-time chunking (Black, Galliker, Levine,
"Real-Time Execution of Action Chunking Flow Policies", 2025). The new chunk is generated while the running one
executes; its first `frozen_steps` steps (executed before it takes over) equal the running chunk's, and the rest
of the overlap is pulled toward it with a weight that decays to zero where the running chunk's plan ends."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# guided: the paper's guidance, a vector-Jacobian product through the denoiser; identity: the same update with
# the denoiser's Jacobian taken as the identity (no backward pass); prefix: the frozen steps replaced, no guidance.
RTC_MODES = ("guided", "identity", "prefix")


@dataclass(frozen=True)
class ChunkGuidance:
    target: dict[str, np.ndarray]  # group -> float [horizon, D]: absolute actions the running chunk plans at the
    # new chunk's steps (robot units); groups absent here are not guided
    frozen_steps: int  # d: steps of the new chunk the running one executes (up to the point the new one takes
    # over from)
    overlap_steps: int  # steps of the new chunk the running chunk still plans (the target is valid below this)
    mode: str = "guided"

    def __post_init__(self) -> None:
        if self.mode not in RTC_MODES:
            raise ValueError(f"rtc mode {self.mode!r} is not one of {', '.join(RTC_MODES)}")
        if not 0 <= self.frozen_steps <= self.overlap_steps:
            raise ValueError(f"frozen_steps {self.frozen_steps} must be in [0, overlap_steps {self.overlap_steps}]")

    def weights(self, horizon: int) -> np.ndarray:
        """float [horizon]: 1 on the frozen steps, c (e^c - 1) / (e - 1) with c falling linearly from about 1 to
        about 0 over the rest of the overlap (the paper's soft mask), 0 beyond it."""
        d, end = self.frozen_steps, min(self.overlap_steps, horizon)
        weights = np.zeros(horizon)
        weights[: min(d, horizon)] = 1.0
        if end > d:
            c = (end - np.arange(d, end)) / (end - d + 1)
            weights[d:end] = c * np.expm1(c) / (math.e - 1)
        return weights
