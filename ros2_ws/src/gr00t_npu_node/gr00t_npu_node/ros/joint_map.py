# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""sensor_msgs/JointState (or a merged joint state with the same `name`/`position` fields) -> per-group joint
positions, by joint name (order does not matter, joints the policy does not use are ignored)."""
from __future__ import annotations

import numpy as np


class JointStateMapper:
    """Maps `JointState.name`/`position` onto the configured groups; the index layout is cached per name list,
    since a driver publishes the same names in the same order every time."""

    def __init__(self, group_joints: dict[str, tuple[str, ...]]):
        self._group_joints = group_joints
        self._layouts: dict[tuple[str, ...], dict[str, np.ndarray]] = {}

    @property
    def joints(self) -> tuple[str, ...]:
        """Every joint of every group, in group order."""
        return tuple(j for joints in self._group_joints.values() for j in joints)

    def _layout(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        layout = self._layouts.get(names)
        if layout is None:
            index = {name: i for i, name in enumerate(names)}
            missing = [j for joints in self._group_joints.values() for j in joints if j not in index]
            if missing:
                raise ValueError(
                    f"joint state lacks {len(missing)} joint(s) the policy needs: {', '.join(missing[:8])}"
                    f"{' ...' if len(missing) > 8 else ''}; check the joint names in the config (joint_groups)"
                )
            layout = {g: np.array([index[j] for j in joints]) for g, joints in self._group_joints.items()}
            if len(self._layouts) > 16:  # a driver that reorders on every message should not grow this forever
                self._layouts.clear()
            self._layouts[names] = layout
        return layout

    def positions(self, msg) -> dict[str, np.ndarray]:
        """{group: float64 [D]}; ValueError naming the joints for a missing joint, a short `position` or NaN/inf."""
        names = tuple(msg.name)
        if len(msg.position) != len(names):
            raise ValueError(
                f"joint state has {len(names)} names but {len(msg.position)} positions; "
                "every named joint needs a position"
            )
        layout = self._layout(names)
        position = np.asarray(msg.position, dtype=np.float64)
        out = {g: position[idx] for g, idx in layout.items()}
        bad = [j for g, q in out.items() for j, ok in zip(self._group_joints[g], np.isfinite(q)) if not ok]
        if bad:
            raise ValueError(f"joint state has non-finite positions for {', '.join(bad)}; the state is not used")
        return out

    def updated_before(self, names: tuple[str, ...], updated_ns: np.ndarray, limit_ns: int) -> list[str]:
        """The policy's joints whose last update (`updated_ns`, aligned with `names`) is older than `limit_ns`."""
        return [
            joint
            for g, idx in self._layout(names).items()
            for joint, updated in zip(self._group_joints[g], updated_ns[idx])
            if updated < limit_ns
        ]

    def oldest_update_ns(self, names: tuple[str, ...], updated_ns: np.ndarray) -> int:
        """The last update (`updated_ns`, aligned with `names`) of the policy joint updated longest ago (ValueError
        if one is missing)."""
        return int(min(updated_ns[idx].min() for idx in self._layout(names).values()))
