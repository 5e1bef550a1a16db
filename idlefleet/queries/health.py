"""What the service says about its own health, for adapters that show it (the web console):
its notes, its dead letters (how many, and the newest with their reasons), how far its
readers lag, when the newest forecasts were issued, and the OCPP stations connected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from streams.consumer import DeadLetterNote


class Level(StrEnum):
    """How a check came out (`idlefleet doctor` prints these too)."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class ChargerConnections:
    """The OCPP central system's stations: connected now, and configured [count]."""

    connected: int
    configured: int


@dataclass(frozen=True)
class HealthView:
    """Why the service serves less well than it could (empty: nothing wrong), how many
    records it dead-lettered since it started [count] and the newest of them (newest first),
    its readers' lag [records] (None: unknown), when the newest solar forecast and intensity
    forecast it read were issued [UTC] (None: none read), why a reader stopped (None: both
    read), and the OCPP stations (None: no central system runs)."""

    notes: tuple[str, ...]
    dead_letters: int
    recent_dead_letters: tuple[DeadLetterNote, ...] = ()
    lag_records: int | None = None
    newest_solar_forecast: datetime | None = None
    newest_intensity_forecast: datetime | None = None
    reader_failure: str | None = None
    chargers: ChargerConnections | None = None


class ServiceFacts(Protocol):
    """What a health source reads from the planner service (`PlannerService` has it)."""

    @property
    def reader_failure(self) -> BaseException | None: ...

    def recent_dead_letters(self) -> tuple[DeadLetterNote, ...]: ...

    def consumer_lag_records(self) -> int | None: ...

    def newest_forecasts(self) -> tuple[datetime | None, datetime | None]: ...


#: Reads the service's health when asked (`idlefleet serve` builds it from the service).
HealthSource = Callable[[], HealthView]


def health_source(
    notes: Callable[[], Sequence[str]],
    dead_letters: Callable[[], int],
    *,
    service: ServiceFacts | None = None,
    chargers: Callable[[], ChargerConnections | None] | None = None,
) -> HealthSource:
    """A `HealthSource` over the service's notes and its dead-letter count, and, when given,
    the rest of what `service` knows and the OCPP stations `chargers` reads."""

    def read() -> HealthView:
        view = HealthView(tuple(notes()), dead_letters())
        if service is not None:
            solar, intensity = service.newest_forecasts()
            failure = service.reader_failure
            view = replace(
                view,
                recent_dead_letters=service.recent_dead_letters(),
                lag_records=service.consumer_lag_records(),
                newest_solar_forecast=solar,
                newest_intensity_forecast=intensity,
                reader_failure=None if failure is None else f"{type(failure).__name__}: {failure}",
            )
        if chargers is not None:
            view = replace(view, chargers=chargers())
        return view

    return read
