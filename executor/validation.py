"""Result validation by replication, and how far each car can be trusted.

A shard that runs on several cars is accepted once an agreeing quorum of their outputs
match within a tolerance; cars outside the quorum are marked wrong. Trust follows BOINC's
adaptive replication: each car carries an error-rate estimate that decays with every
validated result and jumps with every wrong one. A car below the error threshold with a
run of validated results is trusted; work done by an untrusted car on a single-replica
job is checked by one more replica elsewhere, and a car whose error rate reaches the
quarantine level is given no more work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: BOINC-style constants: the estimate starts pessimistic and decays per valid result.
INITIAL_ERROR_RATE = 0.1
ERROR_DECAY_FRAC = 0.95
ERROR_JUMP = 0.1
TRUSTED_ERROR_RATE = 0.05
TRUSTED_MIN_VALID = 10
QUARANTINE_ERROR_RATE = 0.5


@dataclass(frozen=True)
class Tolerance:
    """Outputs agree when `|a - b| <= atol + rtol * |b|` elementwise, shapes equal."""

    rtol: float = 1e-4
    atol: float = 1e-5


@dataclass(frozen=True)
class QuorumVerdict:
    """The outcome of comparing one shard's replica outputs."""

    agreeing: tuple[str, ...]
    dissenting: tuple[str, ...]
    quorum: int

    @property
    def accepted(self) -> bool:
        return len(self.agreeing) >= self.quorum


def outputs_agree(a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> bool:
    """Same shape and dtype kind, values within tolerance, NaN only where NaN."""
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    return bool(np.allclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True))


def judge_replicas(
    outputs: Mapping[str, np.ndarray], quorum: int, tolerance: Tolerance | None = None
) -> QuorumVerdict:
    """Group outputs by agreement (vehicle id -> output) and find a group of `quorum` or more.

    Groups form around the first output of each kind in vehicle-id order; the largest group
    that reaches the quorum wins (ties: the earliest). Without one, no output is accepted and
    nobody is judged wrong yet.
    """
    if quorum < 1:
        raise ValueError(f"quorum must be >= 1, got {quorum}")
    tolerance = tolerance or Tolerance()
    groups: list[list[str]] = []
    for vehicle_id in sorted(outputs):
        for group in groups:
            if outputs_agree(outputs[vehicle_id], outputs[group[0]], tolerance):
                group.append(vehicle_id)
                break
        else:
            groups.append([vehicle_id])
    best = max(groups, key=len, default=[])
    if len(best) < quorum:
        return QuorumVerdict(agreeing=(), dissenting=(), quorum=quorum)
    dissenting = sorted(v for v in outputs if v not in best)
    return QuorumVerdict(agreeing=tuple(best), dissenting=tuple(dissenting), quorum=quorum)


@dataclass
class HostRecord:
    error_rate: float = INITIAL_ERROR_RATE
    consecutive_valid: int = 0
    valid: int = 0
    wrong: int = 0


@dataclass
class Reliability:
    """Per-car error-rate estimates from validated and wrong results."""

    hosts: dict[str, HostRecord] = field(default_factory=dict)

    def record(self, vehicle_id: str, *, valid: bool) -> None:
        host = self.hosts.setdefault(vehicle_id, HostRecord())
        if valid:
            host.error_rate *= ERROR_DECAY_FRAC
            host.consecutive_valid += 1
            host.valid += 1
        else:
            host.error_rate = min(1.0, host.error_rate + ERROR_JUMP)
            host.consecutive_valid = 0
            host.wrong += 1

    def record_verdict(self, verdict: QuorumVerdict) -> None:
        for vehicle_id in verdict.agreeing:
            self.record(vehicle_id, valid=True)
        for vehicle_id in verdict.dissenting:
            self.record(vehicle_id, valid=False)

    def error_rate(self, vehicle_id: str) -> float:
        host = self.hosts.get(vehicle_id)
        return INITIAL_ERROR_RATE if host is None else host.error_rate

    def trusted(self, vehicle_id: str) -> bool:
        """Few enough errors and a long enough run of validated results."""
        host = self.hosts.get(vehicle_id)
        return (
            host is not None
            and host.error_rate <= TRUSTED_ERROR_RATE
            and host.consecutive_valid >= TRUSTED_MIN_VALID
        )

    def quarantined(self, vehicle_id: str) -> bool:
        """Wrong so often that it gets no more work until its record is reset."""
        return self.error_rate(vehicle_id) >= QUARANTINE_ERROR_RATE

    def needs_check(self, vehicle_ids: Sequence[str]) -> bool:
        """A single-replica result needs one more replica unless its car is trusted."""
        return not all(self.trusted(v) for v in vehicle_ids)
