"""Result validation by replication, and how far each car can be trusted.

A shard that runs on several cars is accepted once an agreeing quorum of their outputs
match within a tolerance; cars outside the quorum are marked wrong, and when every replica
is in without a quorum one more replica runs (up to a limit, then the shard is given up as
unverifiable). Trust follows BOINC's adaptive replication: each car carries an error-rate
estimate that decays with every validated result and jumps with every wrong one. A suspect
car (error rate above where every car starts) gets half its shards per slot and its
single-replica results checked by one more replica elsewhere; a car whose error rate
reaches the quarantine level gets no compute work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from executor.errors import ExecutionError
from executor.ledger import JobLedger, ShardProgress
from streams.messages import Result

logger = logging.getLogger(__name__)

#: BOINC-style constants: the estimate starts pessimistic and decays per valid result.
INITIAL_ERROR_RATE = 0.1
ERROR_DECAY_FRAC = 0.95
ERROR_JUMP = 0.1
QUARANTINE_ERROR_RATE = 0.5
#: Agreeing outputs that accept a replicated shard [count].
QUORUM = 2
#: Replicas a shard may get beyond what its job asked for before it is unverifiable [count].
MAX_EXTRA_REPLICAS = 2


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


#: dtype kinds compared within a tolerance (integers, floats, complex); others exactly.
_NUMERIC_KINDS = "iufc"


def outputs_agree(a: np.ndarray, b: np.ndarray, tolerance: Tolerance) -> bool:
    """Same shape and dtype kind; numbers within tolerance, NaN only where NaN; anything else
    (bools, strings, datetimes, bytes, records) equal element for element, NaT where NaT."""
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind in _NUMERIC_KINDS:
        return bool(np.allclose(a, b, rtol=tolerance.rtol, atol=tolerance.atol, equal_nan=True))
    if a.dtype != b.dtype and a.dtype.kind == "V":  # records of other fields never match
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "mM"))


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


@dataclass(frozen=True)
class CarTrust:
    """How far a car's results are trusted: its error-rate estimate [0-1], its results found
    valid and wrong [count], and what the estimate makes of it."""

    vehicle_id: str
    error_rate: float
    valid: int
    wrong: int
    suspect: bool
    quarantined: bool


@dataclass
class HostRecord:
    error_rate: float = INITIAL_ERROR_RATE
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
            host.valid += 1
        else:
            host.error_rate = min(1.0, host.error_rate + ERROR_JUMP)
            host.wrong += 1

    def error_rate(self, vehicle_id: str) -> float:
        host = self.hosts.get(vehicle_id)
        return INITIAL_ERROR_RATE if host is None else host.error_rate

    def trust(self, vehicle_id: str) -> CarTrust:
        host = self.hosts.get(vehicle_id) or HostRecord()
        return CarTrust(
            vehicle_id,
            host.error_rate,
            host.valid,
            host.wrong,
            self.suspect(vehicle_id),
            self.quarantined(vehicle_id),
        )

    def suspect(self, vehicle_id: str) -> bool:
        """Wrong more lately than a new car is assumed to be: its lone results get checked."""
        return self.error_rate(vehicle_id) > INITIAL_ERROR_RATE + 1e-12

    def quarantined(self, vehicle_id: str) -> bool:
        """Wrong so often that it gets no compute work until it earns trust back."""
        return self.error_rate(vehicle_id) >= QUARANTINE_ERROR_RATE

    def shards_per_slot(self, vehicle_id: str, offered: int) -> int:
        """Shards per slot [count] the planner may give a car that offers `offered`."""
        if self.quarantined(vehicle_id):
            return 0
        if self.suspect(vehicle_id):
            return min(offered, max(1, offered // 2))
        return offered


class Check(StrEnum):
    """What a done result means for its shard."""

    WAIT = "wait"  # more replicas are on their way
    VALID = "valid"  # the shard has an accepted output
    ADD_REPLICA = "add-replica"  # one more replica must run
    UNVERIFIABLE = "unverifiable"  # replicas kept disagreeing: give the shard up


@dataclass(frozen=True)
class ShardCheck:
    """What validation made of a shard: the car whose output stands for it (None: none yet),
    the cars whose outputs matched it and those whose outputs did not (both empty while a
    lone result stands unchecked)."""

    canonical: str | None = None
    agreeing: tuple[str, ...] = ()
    dissenting: tuple[str, ...] = ()


@dataclass
class _Shard:
    needed: int  # executions wanted [count]
    outputs: dict[str, np.ndarray | None] = field(default_factory=dict)
    canonical: str | None = None  # the vehicle whose output stands for the shard
    agreeing: tuple[str, ...] = ()
    dissenting: tuple[str, ...] = ()


class ReplicaValidator:
    """Checks each done result against its shard's other replicas and keeps the score.

    A result's output is compared only when `wants_output` says so. The caller may read it
    beforehand, outside its own locks (`idlefleet.service.jobdata`), and hand it to
    `check`; otherwise `check` reads it with `read_output(uri)` (the output location must be
    readable where the validator runs). One that cannot be read counts as wrong. Feed every
    accepted done result exactly once (`check`); the caller adds a replica or gives the
    shard up when told to.
    """

    def __init__(
        self,
        read_output: Callable[[str], np.ndarray],
        reliability: Reliability | None = None,
        tolerance: Tolerance | None = None,
    ) -> None:
        self.read_output = read_output
        self.reliability = reliability or Reliability()
        self.tolerance = tolerance or Tolerance()
        self._shards: dict[tuple[str, int], _Shard] = {}

    def canonical(self, job_id: str, shard_index: int) -> str | None:
        """The vehicle whose output was accepted for the shard, if any yet."""
        shard = self._shards.get((job_id, shard_index))
        return None if shard is None else shard.canonical

    def shard_check(self, job_id: str, shard_index: int) -> ShardCheck:
        shard = self._shards.get((job_id, shard_index))
        if shard is None:
            return ShardCheck()
        return ShardCheck(shard.canonical, shard.agreeing, shard.dissenting)

    def wants_output(self, result: Result, replicas: int) -> bool:
        """Whether `check` would compare this result's output now (False: it stands unread,
        or its shard's accepted output is gone)."""
        shard = self._shards.get((result.job_id, result.shard_index))
        needed = replicas if shard is None else shard.needed
        if needed == 1 and not self.reliability.suspect(result.vehicle_id):
            return False
        if shard is None or shard.canonical is None:
            return True
        return shard.outputs.get(shard.canonical) is not None

    def check(
        self, result: Result, replicas: int, output: np.ndarray | ExecutionError | None = None
    ) -> Check:
        """Take in a done result of a job with `replicas` replicas per shard, with its
        `output` already read (or the error reading it raised; None: read it here if needed)."""
        if result.status != "done" or result.output_uri is None:
            raise ValueError(f"only done results are checked, got {result.status}")
        shard = self._shards.setdefault((result.job_id, result.shard_index), _Shard(replicas))
        vehicle = result.vehicle_id
        if shard.needed == 1 and not self.reliability.suspect(vehicle):
            shard.canonical = vehicle  # a lone result from an unsuspected car stands unread
            return Check.VALID
        if shard.canonical is not None:  # a late replica: score it against the accepted one
            accepted = shard.outputs.get(shard.canonical)
            if accepted is not None:
                mine = self._output(result.output_uri, output)
                agrees = mine is not None and outputs_agree(mine, accepted, self.tolerance)
                self.reliability.record(vehicle, valid=agrees)
                if agrees:
                    shard.agreeing = (*shard.agreeing, vehicle)
                else:
                    shard.dissenting = (*shard.dissenting, vehicle)
            return Check.VALID
        shard.outputs[vehicle] = self._output(result.output_uri, output)
        if shard.needed == 1:
            shard.needed = 2
            return Check.ADD_REPLICA
        readable = {v: out for v, out in shard.outputs.items() if out is not None}
        verdict = judge_replicas(readable, QUORUM, self.tolerance)
        if verdict.accepted:
            shard.canonical = verdict.agreeing[0]
            shard.agreeing = verdict.agreeing
            shard.dissenting = tuple(sorted(v for v in shard.outputs if v not in verdict.agreeing))
            for v in shard.outputs:
                self.reliability.record(v, valid=v in verdict.agreeing)
            shard.outputs = {shard.canonical: shard.outputs[shard.canonical]}  # keep one
            return Check.VALID
        if len(shard.outputs) < shard.needed:
            return Check.WAIT
        return Check.ADD_REPLICA if self._extend(shard, replicas) else Check.UNVERIFIABLE

    @staticmethod
    def _extend(shard: _Shard, replicas: int) -> bool:
        if shard.needed - replicas >= MAX_EXTRA_REPLICAS:
            return False
        shard.needed += 1
        return True

    def _output(self, uri: str, given: np.ndarray | ExecutionError | None) -> np.ndarray | None:
        if isinstance(given, np.ndarray):
            return given
        if isinstance(given, ExecutionError):
            logger.warning("output %s cannot be read: %s", uri, given.reason)
            return None
        try:
            return self.read_output(uri)
        except Exception as exc:  # any unreadable output is a wrong one, never a crash
            logger.warning("output %s cannot be read: %s", uri, exc)
            return None


@dataclass(frozen=True)
class ShardReport:
    """A shard's executions, what validation made of them, and the trust of every car that
    ran it, runs it or was judged on it, in vehicle_id order."""

    progress: ShardProgress
    check: ShardCheck
    cars: tuple[CarTrust, ...]


def shard_reports(
    ledger: JobLedger, validator: ReplicaValidator, job_id: str, first: int, limit: int
) -> list[ShardReport]:
    """Shards `first` to `first + limit - 1` of a registered job, in shard order (read both
    under the lock that guards them)."""
    reports = []
    for progress in ledger.shard_progress(job_id, first, limit):
        check = validator.shard_check(job_id, progress.shard_index)
        cars = sorted({*progress.accepted, *progress.in_flight, *check.agreeing, *check.dissenting})
        trust = tuple(validator.reliability.trust(car) for car in cars)
        reports.append(ShardReport(progress, check, trust))
    return reports
