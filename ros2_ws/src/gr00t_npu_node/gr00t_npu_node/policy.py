"""Public API: `Gr00tPolicy` turns an observation dict into an action chunk dict.

    policy = Gr00tPolicy.from_pretrained(path, embodiment="gr1", device="cpu", dtype="float32")
    actions = policy.get_action(observation)        # {group: float32 [B, 16, D]}

The observation has upstream's format:
    {"video": {key: uint8 [B, T, H, W, 3]}, "state": {group: float32 [B, T, D]}, "language": {"task": [[str]]}}

(Under construction: the implementation lands with the model; the attributes below are the contract the
ROS layer and tools use.)
"""
from __future__ import annotations


class Gr00tPolicy:
    """Attributes the ROS layer and tools rely on:
    * `video_keys: list[str]`: the camera keys of the embodiment (gr1: ["ego_view_bg_crop_pad_res256_freq20"]).
    * `state_dims: dict[str, int]`: state groups in model order with their widths (gr1: left_arm 7, right_arm 7,
      left_hand 6, right_hand 6, waist 3).
    * `action_dims: dict[str, int]`: action groups in model order with their widths (gr1: same as state).
    * `action_horizon: int`: steps per decoded chunk (gr1: 16).
    * `description: str`: one line naming checkpoint, embodiment, device and dtype (for diagnostics).
    * `get_action(observation, noise=None) -> dict[str, np.ndarray]` ([B, action_horizon, D] float32 per group),
      raises ValueError naming the problem for bad input; never returns NaN.
    * `warmup()`: runs one inference on a synthetic observation so compilation happens before traffic.
    * `Gr00tPolicy.create_tiny(path, seed=0) -> Path`: writes a complete tiny random-weight checkpoint (with its
      backbone/tokenizer folder) that `from_pretrained(path)` loads.
    """
