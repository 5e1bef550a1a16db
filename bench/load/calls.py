"""The finished API calls, kept compactly in the measured process, and their latency
statistics."""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from bench._openloop import Call


class CallLog:
    """Finished calls, kept compactly (the log lives in the process whose RSS is measured)."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.codes: list[str] = []
        self._label_ids = array("H")
        self._code_ids = array("H")
        self._sent_wall_s = array("d")
        self._latency_s = array("d")
        self._lock = threading.Lock()
        self.done = threading.Event()

    def add(self, calls: list[Call]) -> None:
        with self._lock:
            for call in calls:
                self._label_ids.append(_index(self.labels, call.label))
                self._code_ids.append(_index(self.codes, call.code))
                self._sent_wall_s.append(call.sent_wall_s)
                self._latency_s.append(call.latency_s)

    def collect(self, conn: Connection) -> None:
        """Add the batches `conn` brings until its None (run on a thread of its own)."""
        while (batch := conn.recv()) is not None:
            self.add(batch)
        self.done.set()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies: sent [s since the epoch], label ids, code ids, latencies [ms]."""
        with self._lock:
            return (
                np.frombuffer(self._sent_wall_s, dtype=np.float64).copy(),
                np.frombuffer(self._label_ids, dtype=np.uint16).copy(),
                np.frombuffer(self._code_ids, dtype=np.uint16).copy(),
                np.frombuffer(self._latency_s, dtype=np.float64) * 1000,
            )

    def window(self, start_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label ids, code ids and latencies [ms] of the calls sent in [start_s, end_s)."""
        sent, labels, codes, latency_ms = self._arrays()
        inside = (sent >= start_s) & (sent < end_s)
        return labels[inside], codes[inside], latency_ms[inside]

    def split_ms(
        self, start_s: float, end_s: float, spans: Sequence[tuple[float, float]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latencies [ms] of the calls sent in [start_s, end_s): those sent within one of
        `spans` ([start, end) wall times), and the others."""
        sent, _, _, latency_ms = self._arrays()
        chosen = (sent >= start_s) & (sent < end_s)
        within = np.zeros_like(chosen)
        for span_start_s, span_end_s in spans:
            within |= (sent >= span_start_s) & (sent < span_end_s)
        return latency_ms[chosen & within], latency_ms[chosen & ~within]

    def write_csv(self, path: Path, origin_wall_s: float) -> None:
        """Every call as `label,sent_s,latency_ms,code`, sent_s from `origin_wall_s` [s]."""
        with self._lock, path.open("w") as out:
            out.write("label,sent_s,latency_ms,code\n")
            for label, code, sent_s, latency_s in zip(
                self._label_ids, self._code_ids, self._sent_wall_s, self._latency_s, strict=True
            ):
                out.write(
                    f"{self.labels[label]},{sent_s - origin_wall_s:.3f},{latency_s * 1000:.2f},"
                    f"{self.codes[code]}\n"
                )

    def failures(self, start_s: float, end_s: float) -> Counter[tuple[str, str]]:
        """(label, code) of every call sent in [start_s, end_s) that did not succeed."""
        labels, codes, _ = self.window(start_s, end_s)
        return Counter(
            (self.labels[label], self.codes[code])
            for label, code in zip(labels.tolist(), codes.tolist(), strict=True)
            if self.codes[code] != "OK"
        )


def _index(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


def percentiles_ms(latency_ms: np.ndarray) -> tuple[float, float]:
    """p50 and p99 [ms]; NaN without calls."""
    if not len(latency_ms):
        return math.nan, math.nan
    p50, p99 = np.percentile(latency_ms, [50, 99])
    return float(p50), float(p99)


def overall_p99_ms(calls: CallLog, start_s: float, end_s: float) -> float:
    """p99 latency [ms] of every call sent in [start_s, end_s)."""
    return percentiles_ms(calls.window(start_s, end_s)[2])[1]
