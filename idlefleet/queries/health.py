"""What the service says about its own health, for adapters that show it (the web console)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HealthView:
    """Why the service serves less well than it could (empty: nothing wrong), and how many
    records it dead-lettered since it started [count]."""

    notes: tuple[str, ...]
    dead_letters: int


#: Reads the service's health when asked (`idlefleet serve` builds it from the service).
HealthSource = Callable[[], HealthView]


def health_source(
    notes: Callable[[], Sequence[str]], dead_letters: Callable[[], int]
) -> HealthSource:
    """A `HealthSource` over the service's notes and its dead-letter count."""

    def read() -> HealthView:
        return HealthView(tuple(notes()), dead_letters())

    return read
