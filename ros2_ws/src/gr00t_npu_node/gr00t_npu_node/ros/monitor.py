# Copyright 2026 The gr00t_npu_node Authors
# SPDX-License-Identifier: Apache-2.0
"""Counters, latency statistics and the current faults of the node, rendered as diagnostic statuses.

A fault is a condition with a source ("camera", "policy", ...) that stays reported until its source clears it;
each new fault message is logged once and counted, so nothing is dropped silently.
"""
from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Iterable

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LATENCY_WINDOW = 200


class Monitor:
    def __init__(self, logger):
        self._logger = logger
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self._faults: dict[str, tuple[bytes, str]] = {}
        self._windows: dict[str, deque[float]] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def fault(self, source: str, message: str, level: bytes = WARN) -> None:
        with self._lock:
            self.counters[f"{source}_faults"] += 1
            changed = self._faults.get(source) != (level, message)
            self._faults[source] = (level, message)
        # rclpy forbids two severities at one call site, hence two calls.
        if changed and level == ERROR:
            self._logger.error(f"{source}: {message}")
        elif changed:
            self._logger.warning(f"{source}: {message}")

    def clear(self, *sources: str) -> None:
        with self._lock:
            for source in sources:
                if self._faults.pop(source, None) is not None:
                    self._logger.info(f"{source}: recovered")

    def record(self, name: str, seconds: float) -> None:
        """Add a duration to the window `name` (the last LATENCY_WINDOW values are kept)."""
        with self._lock:
            self._windows.setdefault(name, deque(maxlen=LATENCY_WINDOW)).append(seconds)

    def percentiles_ms(self, name: str) -> tuple[float, float] | None:
        """(p50, p95) in ms of the window `name`, None while it is empty."""
        with self._lock:
            window = self._windows.get(name)
            if not window:
                return None
            p50, p95 = np.percentile(np.fromiter(window, float), [50, 95])
        return float(p50) * 1e3, float(p95) * 1e3

    def status(
        self, name: str, hardware_id: str, sources: Iterable[str], values: dict[str, object]
    ) -> DiagnosticStatus:
        """One status: the worst current fault among `sources` sets level and message; `values` become KeyValues."""
        with self._lock:
            faults = [(self._faults[s][0], f"{s}: {self._faults[s][1]}") for s in sources if s in self._faults]
        level = max((lvl for lvl, _ in faults), default=OK)
        message = "; ".join(text for _, text in faults) if faults else "ok"
        return DiagnosticStatus(
            level=level,
            name=name,
            message=message,
            hardware_id=hardware_id,
            values=[KeyValue(key=k, value=_fmt(v)) for k, v in values.items()],
        )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
