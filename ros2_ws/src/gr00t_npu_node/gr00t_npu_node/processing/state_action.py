# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Robot state -> model state vector, and model action chunk -> joint targets, as upstream's
`StateActionProcessor` does it (numpy, the same dtypes and operation order, so results match to the bit).

State groups are encoded in modality order: sin/cos (`concat([sin v, cos v])`), mean/std, or min/max to [-1, 1]
(clipped), then zero-padded to `max_state_dim`. Actions are cut to the embodiment's horizon and widths, split by
group, un-normalized (min/max with clip, or mean/std), and RELATIVE groups add the last raw state of their state
group; the result is float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from gr00t_npu_node.keys import ACTION, RELATIVE_ACTION, STATE

RELATIVE = "RELATIVE"
ABSOLUTE = "ABSOLUTE"
NON_EEF = "NON_EEF"


@dataclass(frozen=True)
class ActionConfig:
    """How one action group is represented (upstream's `ActionConfig`)."""

    rep: str
    type: str
    format: str
    state_key: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> "ActionConfig":
        config = cls(
            rep=str(data.get("rep", ABSOLUTE)).upper(),
            type=str(data.get("type", NON_EEF)).upper(),
            format=str(data.get("format", "DEFAULT")).upper(),
            state_key=data.get("state_key"),
        )
        if config.rep not in (RELATIVE, ABSOLUTE):
            raise ValueError(f"{where}: action rep {config.rep!r} is not RELATIVE or ABSOLUTE")
        if config.type != NON_EEF:
            raise ValueError(
                f"{where}: action type {config.type!r} is not supported; this node decodes joint-space (NON_EEF) "
                "action groups only"
            )
        return config


@dataclass(frozen=True)
class ModalityConfig:
    """One modality of an embodiment (upstream's `ModalityConfig`, as in processor_config.json)."""

    delta_indices: tuple[int, ...]
    modality_keys: tuple[str, ...]
    sin_cos_embedding_keys: tuple[str, ...] = ()
    mean_std_embedding_keys: tuple[str, ...] = ()
    action_configs: tuple[ActionConfig, ...] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> "ModalityConfig":
        try:
            delta_indices = tuple(int(i) for i in data["delta_indices"])
            keys = tuple(str(k) for k in data["modality_keys"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"{where} needs 'delta_indices' and 'modality_keys' lists ({error!r})") from error
        if not delta_indices or not keys:
            raise ValueError(f"{where} has an empty 'delta_indices' or 'modality_keys'")
        actions = data.get("action_configs")
        action_configs = None
        if actions is not None:
            if len(actions) != len(keys):
                raise ValueError(f"{where} has {len(actions)} action_configs for {len(keys)} modality_keys")
            action_configs = tuple(
                ActionConfig.from_json(a, f"{where}.action_configs[{i}]") for i, a in enumerate(actions)
            )
        return cls(
            delta_indices=delta_indices,
            modality_keys=keys,
            sin_cos_embedding_keys=tuple(data.get("sin_cos_embedding_keys") or ()),
            mean_std_embedding_keys=tuple(data.get("mean_std_embedding_keys") or ()),
            action_configs=action_configs,
        )


@dataclass(frozen=True)
class NormalizationSettings:
    """The processor_config.json switches that change state/action numbers."""

    use_percentiles: bool = False
    clip_outliers: bool = True
    apply_sincos_state_encoding: bool = False
    use_relative_action: bool = False


def _group_stats(statistics: Mapping[str, Any], modality: str, group: str, where: str) -> dict[str, np.ndarray]:
    try:
        return {name: np.array(values) for name, values in statistics[modality][group].items()}
    except KeyError as error:
        raise ValueError(f"{where}: statistics.json has no {modality!r} statistics for group {group!r}") from error


def _min_max(stats: dict[str, np.ndarray], use_percentiles: bool, where: str) -> tuple[np.ndarray, np.ndarray]:
    low, high = ("q01", "q99") if use_percentiles else ("min", "max")
    if low not in stats or high not in stats:
        raise ValueError(f"{where}: statistics lack {low!r}/{high!r}")
    return stats[low], stats[high]


def _check_width(array: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if array.shape != shape:
        raise ValueError(f"{what} has shape {list(array.shape)}; expected {list(shape)}")


def normalize_min_max(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """To [-1, 1]; features whose min equals max map to 0. Output has the input's dtype."""
    normalized = np.zeros_like(values)
    mask = ~np.isclose(high, low)
    normalized[..., mask] = (values[..., mask] - low[..., mask]) / (high[..., mask] - low[..., mask])
    normalized[..., mask] = 2 * normalized[..., mask] - 1
    return normalized


def normalize_mean_std(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(v - mean) / std; features with std 0 pass through. Output has the input's dtype."""
    mask = std != 0
    normalized = np.zeros_like(values)
    normalized[..., mask] = (values[..., mask] - mean[..., mask]) / std[..., mask]
    normalized[..., ~mask] = values[..., ~mask]
    return normalized


def unnormalize_min_max(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return (np.clip(values, -1.0, 1.0) + 1.0) / 2.0 * (high - low) + low


def unnormalize_mean_std(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    mask = std != 0
    unnormalized = np.zeros_like(values)
    unnormalized[..., mask] = values[..., mask] * std[..., mask] + mean[..., mask]
    unnormalized[..., ~mask] = values[..., ~mask]
    return unnormalized


@dataclass(frozen=True)
class _StateGroup:
    name: str
    width: int
    encoding: str  # "sincos", "mean_std" or "min_max"
    a: np.ndarray | None = None  # min or mean
    b: np.ndarray | None = None  # max or std


class StateEncoder:
    """Raw state groups {group: float32 [B, T, D]} -> float32 [B, T, max_state_dim]."""

    def __init__(
        self,
        config: ModalityConfig,
        statistics: Mapping[str, Any],
        settings: NormalizationSettings,
        max_state_dim: int,
        where: str = STATE,
    ):
        groups = []
        for name in config.modality_keys:
            stats = _group_stats(statistics, STATE, name, where)
            low, high = _min_max(stats, settings.use_percentiles, f"{where}.{name}")
            width = int(low.shape[0])
            if settings.apply_sincos_state_encoding and name in config.sin_cos_embedding_keys:
                groups.append(_StateGroup(name, width, "sincos"))
            elif name in config.mean_std_embedding_keys:
                for key in ("mean", "std"):
                    _check_width(stats.get(key, np.empty(0)), (width,), f"{where}.{name} statistics {key!r}")
                groups.append(_StateGroup(name, width, "mean_std", stats["mean"], stats["std"]))
            else:
                _check_width(high, (width,), f"{where}.{name} statistics max")
                groups.append(_StateGroup(name, width, "min_max", low, high))
        self._groups = tuple(groups)
        self._clip = settings.clip_outliers
        self.max_state_dim = max_state_dim
        self.dims: dict[str, int] = {g.name: g.width for g in groups}
        self.encoded_width = sum(2 * g.width if g.encoding == "sincos" else g.width for g in groups)
        if self.encoded_width > max_state_dim:
            raise ValueError(
                f"{where}: the encoded state is {self.encoded_width} wide but max_state_dim is {max_state_dim}"
            )

    def __call__(self, states: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for group in self._groups:
            values = states[group.name]
            if group.encoding == "sincos":
                parts.append(np.concatenate([np.sin(values), np.cos(values)], axis=-1))
            elif group.encoding == "mean_std":
                parts.append(normalize_mean_std(values, group.a, group.b))
            else:
                normalized = normalize_min_max(values, group.a, group.b)
                parts.append(np.clip(normalized, -1.0, 1.0) if self._clip else normalized)
        encoded = np.concatenate(parts, axis=-1)
        padding = np.zeros((*encoded.shape[:-1], self.max_state_dim - encoded.shape[-1]), dtype=encoded.dtype)
        return np.concatenate([encoded, padding], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class _ActionGroup:
    name: str
    width: int
    mean_std: bool
    a: np.ndarray  # min or mean: [D] (absolute) or [horizon, D] (relative)
    b: np.ndarray  # max or std
    relative_to: str | None  # state group whose last raw value is added


class ActionDecoder:
    """Model output [B, H_model, max_action_dim] (normalized) -> {group: float32 [B, horizon, D]}, and back
    (`encode`)."""

    def __init__(
        self,
        config: ModalityConfig,
        statistics: Mapping[str, Any],
        settings: NormalizationSettings,
        state_dims: Mapping[str, int],
        where: str = ACTION,
    ):
        self.horizon = len(config.delta_indices)
        representations = config.action_configs or (None,) * len(config.modality_keys)
        groups = []
        for name, representation in zip(config.modality_keys, representations):
            absolute = _group_stats(statistics, ACTION, name, where)
            width = int(_min_max(absolute, settings.use_percentiles, f"{where}.{name}")[0].shape[0])
            relative = representation is not None and representation.rep == RELATIVE and settings.use_relative_action
            relative_to = None
            if relative:
                relative_to = representation.state_key or name
                if state_dims.get(relative_to) != width:
                    raise ValueError(
                        f"{where}.{name} is RELATIVE to state group {relative_to!r}, which "
                        f"{'is missing' if relative_to not in state_dims else f'is {state_dims[relative_to]} wide'}; "
                        f"it must be a state group of width {width}"
                    )
                # Upstream always takes "min"/"max" of the per-step relative statistics, whatever use_percentiles says.
                stats = _group_stats(statistics, RELATIVE_ACTION, name, where)
                shape = (self.horizon, width)
            else:
                stats = absolute
                shape = (width,)
            mean_std = name in config.mean_std_embedding_keys
            keys = ("mean", "std") if mean_std else (
                ("min", "max") if relative or not settings.use_percentiles else ("q01", "q99")
            )
            for key in keys:
                _check_width(stats.get(key, np.empty(0)), shape, f"{where}.{name} statistics {key!r}")
            groups.append(_ActionGroup(name, width, mean_std, stats[keys[0]], stats[keys[1]], relative_to))
        self._groups = tuple(groups)
        self.dims: dict[str, int] = {g.name: g.width for g in groups}
        self.width = sum(self.dims.values())
        starts = np.cumsum([0, *self.dims.values()])
        # Where each group's dims lie in the model's action vector.
        self.columns: dict[str, slice] = {g: slice(int(a), int(b)) for g, a, b in zip(self.dims, starts, starts[1:])}

    def __call__(self, action_pred: np.ndarray, states: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`states` are the raw (un-encoded) state groups [B, T, D] of the same observation."""
        if action_pred.ndim != 3 or action_pred.shape[1] < self.horizon or action_pred.shape[2] < self.width:
            raise ValueError(
                f"action_pred has shape {list(action_pred.shape)}; expected [B, >= {self.horizon}, >= {self.width}]"
            )
        decoded = {}
        for group in self._groups:
            values = action_pred[:, : self.horizon, self.columns[group.name]]
            if group.mean_std:
                values = unnormalize_mean_std(values, group.a, group.b)
            else:
                values = unnormalize_min_max(values, group.a, group.b)
            if group.relative_to is not None:
                reference = states[group.relative_to][:, -1].astype(np.float64)
                values = values.astype(np.float64) + reference[:, None, :]
            decoded[group.name] = values.astype(np.float32)
        return decoded

    def encode(self, actions: Mapping[str, np.ndarray], states: Mapping[str, np.ndarray]) -> np.ndarray:
        """{group: [B, horizon, D]} in robot units -> the normalized actions [B, horizon, width] float32 that decode
        to them: RELATIVE groups less the last raw state (`states`, as for decoding), then normalized with the
        statistics of each step (per-step for relative groups), min/max groups clipped to [-1, 1] as decoding clips
        them. Groups absent from `actions` stay 0; dims whose min equals max encode to 0 (they decode to that value
        whatever the model says)."""
        unknown = [g for g in actions if g not in self.dims]
        if unknown:
            raise ValueError(f"actions of unknown groups {unknown}; the action groups are {list(self.dims)}")
        batch = next(iter(actions.values())).shape[0] if actions else 0
        encoded = np.zeros((batch, self.horizon, self.width), np.float32)
        for group in self._groups:
            if group.name not in actions:
                continue
            values = np.asarray(actions[group.name], dtype=np.float64)
            _check_width(values, (batch, self.horizon, group.width), f"actions of {group.name!r}")
            if group.relative_to is not None:
                values = values - states[group.relative_to][:, -1].astype(np.float64)[:, None, :]
            if group.mean_std:
                normalized = normalize_mean_std(values, group.a, group.b)
            else:
                normalized = np.clip(normalize_min_max(values, group.a, group.b), -1.0, 1.0)
            encoded[..., self.columns[group.name]] = normalized
        return encoded
