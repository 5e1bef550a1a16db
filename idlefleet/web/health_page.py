"""The Health page: the service's components and their checks (as `idlefleet doctor` reports
them) and the dead letters it parked most recently with their reasons, read from the
`FleetBackend` and the service's `HealthView` on every request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from idlefleet.queries.components import Finding, component_findings
from idlefleet.queries.freshness import freshness
from idlefleet.queries.health import HealthView, Level
from idlefleet.queries.ports import FleetBackend
from streams.consumer import DeadLetterNote


@dataclass(frozen=True)
class HealthPage:
    """What the page shows: the status's time [UTC], the service's notes and dead-letter
    count [count], every check, and the newest dead letters (newest first)."""

    as_of: datetime
    notes: tuple[str, ...]
    dead_letters: int
    findings: tuple[Finding, ...]
    recent_dead_letters: tuple[DeadLetterNote, ...]

    @property
    def failing(self) -> int:
        """Checks that FAILed [count]."""
        return sum(finding.level is Level.FAIL for finding in self.findings)


def health_page(backend: FleetBackend, health: HealthView) -> HealthPage:
    """The Health page from the backend's status and plan, and the service's health."""
    status = backend.fleet_status()
    views = backend.board.views
    sources = freshness(
        health, status.latest_telemetry, views, backend.now(), backend.settings.slot_minutes
    )
    return HealthPage(
        as_of=status.as_of,
        notes=health.notes,
        dead_letters=health.dead_letters,
        findings=component_findings(health, views, sources),
        recent_dead_letters=health.recent_dead_letters,
    )
