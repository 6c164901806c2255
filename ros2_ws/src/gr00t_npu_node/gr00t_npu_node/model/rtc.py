# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Real-time chunking's Euler steps (Black, Galliker, Levine 2025, Algorithm 1) in GR00T's flow convention: t runs
from 0 (noise) to 1 (data), x_{t+dt} = x_t + dt v(x_t, t), and the denoised prediction is f(x) = x + (1 - t) v(x, t).

The running chunk's still-planned actions Y (normalized like the model's output) pull the new chunk with the soft
mask W (1 on the frozen steps, decaying over the overlap, 0 beyond it and on dims without a target):

    guided:   g = e^T df/dx with e = (Y - f(x_t)) W   (a vector-Jacobian product through the DiT)
    identity: g = e                                    (df/dx taken as the identity: no backward pass)
    x_{t+dt} = x_t + dt (v + min(beta, (1 - t) / (t r_t^2)) g),   r_t^2 = (1 - t)^2 / (t^2 + (1 - t)^2)
    prefix:   no guidance; before every step the frozen steps are set to where the flow from the same noise to Y
              is at t, (1 - t) x_0 + t Y, and to Y after the last one

The caller sets the decoded chunk's frozen steps to the target exactly; these steps only decide how the rest of
the chunk continues them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from gr00t_npu_node.guidance import RTC_MODES

# The paper's beta: the guidance weight's ceiling, which also stands for the infinite weight at t = 0.
MAX_GUIDANCE_WEIGHT = 5.0

Velocity = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ActionGuidance:
    """What the running chunk asks of the denoising loop, in the model's normalized action space."""

    mode: str  # one of RTC_MODES
    target: torch.Tensor  # [B, action_horizon, max_action_dim]: Y, the running chunk's plan, normalized
    weights: torch.Tensor  # [B or 1, action_horizon, max_action_dim]: W, zero where there is no target
    frozen: torch.Tensor  # bool, shaped like `weights`: the frozen steps of the dims that have a target

    def __post_init__(self) -> None:
        if self.mode not in RTC_MODES:
            raise ValueError(f"rtc mode {self.mode!r} is not one of {', '.join(RTC_MODES)}")
        if self.frozen.dtype != torch.bool or self.frozen.shape != self.weights.shape:
            raise ValueError(
                f"frozen must be a bool tensor shaped like weights {list(self.weights.shape)}; got "
                f"{self.frozen.dtype} {list(self.frozen.shape)}"
            )

    @classmethod
    def inert(cls, mode: str, shape: tuple[int, int, int]) -> "ActionGuidance":
        """A guidance that asks nothing (no target, no frozen step) for chunks of `shape` [B, action_horizon,
        max_action_dim], laid out as Gr00tPolicy lays out every real one: a loop compiled for it is compiled for
        them."""
        mask_shape = (1, *shape[1:])
        return cls(mode, torch.zeros(shape), torch.zeros(mask_shape), torch.zeros(mask_shape, dtype=torch.bool))

    def to(self, device: torch.device, dtype: torch.dtype) -> "ActionGuidance":
        """Target and weights in the model's dtype on its device (the mask stays bool)."""
        return replace(
            self,
            target=self.target.to(device, dtype),
            weights=self.weights.to(device, dtype),
            frozen=self.frozen.to(device),
        )


def guidance_weight(t: float) -> float:
    """min(beta, (1 - t) / (t r_t^2)), the paper's clipped guidance weight at flow time t in [0, 1)."""
    if t <= 0.0:
        return MAX_GUIDANCE_WEIGHT
    r_squared = (1.0 - t) ** 2 / (t**2 + (1.0 - t) ** 2)
    return min(MAX_GUIDANCE_WEIGHT, (1.0 - t) / (t * r_squared))


def euler_step(
    velocity: Velocity, x: torch.Tensor, noise: torch.Tensor, t: float, dt: float, guidance: ActionGuidance
) -> torch.Tensor:
    """One step of `guidance.mode` from x_t (`noise` is x_0) to x_{t+dt}."""
    if guidance.mode == "prefix":
        x = torch.where(guidance.frozen, (1.0 - t) * noise + t * guidance.target, x)
        return x + dt * velocity(x)
    if guidance.mode == "identity":
        v = velocity(x)
        correction = (guidance.target - (x + (1.0 - t) * v)) * guidance.weights
    else:

        def denoised(actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            v = velocity(actions)
            return actions + (1.0 - t) * v, v

        # torch.func.vjp rather than autograd.grad: it differentiates whatever grad mode the caller runs under
        # (inference mode included) and graph compilers trace it into the loop's one graph.
        prediction, pull_back, v = torch.func.vjp(denoised, x, has_aux=True)
        (correction,) = pull_back((guidance.target - prediction) * guidance.weights)
    return x + dt * (v + guidance_weight(t) * correction)


def finish(x: torch.Tensor, guidance: ActionGuidance) -> torch.Tensor:
    """The chunk after the last step: prefix replacement ends its flow on the target."""
    if guidance.mode == "prefix":
        return torch.where(guidance.frozen, guidance.target, x)
    return x
