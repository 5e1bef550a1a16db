"""The freshness of each source and the component checks, from a `HealthView` and a plan's
views: pure functions of what the service says of itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from idlefleet.queries.components import Finding, component_findings
from idlefleet.queries.freshness import (
    FORECAST_STALE_AFTER,
    STALE_AFTER_SLOTS,
    STALE_LAG_RECORDS,
    freshness,
)
from idlefleet.queries.health import ChargerConnections, HealthView, Level
from idlefleet.queries.local_backend import LocalBackend
from streams.catalog import T0
from streams.consumer import DeadLetterNote

SLOT_MINUTES = 15
SLOT = timedelta(minutes=SLOT_MINUTES)


def test_a_source_turns_stale_past_its_threshold() -> None:
    issued = T0 - timedelta(hours=1)
    health = HealthView(
        (), 0, lag_records=3, newest_solar_forecast=issued, newest_intensity_forecast=issued
    )
    fresh = freshness(health, T0, None, T0 + SLOT * STALE_AFTER_SLOTS, SLOT_MINUTES)
    late = freshness(
        health, T0, None, issued + FORECAST_STALE_AFTER + timedelta(seconds=1), SLOT_MINUTES
    )
    assert [(row.source, row.stale) for row in fresh] == [
        ("Broker lag", False),
        ("Last telemetry", False),
        ("Last solar forecast", False),
        ("Last intensity forecast", False),
        ("Last plan", True),  # no plan yet
        ("Charger connections", False),  # not running
    ]
    assert fresh[1].age_s == SLOT.total_seconds() * STALE_AFTER_SLOTS
    assert fresh[0].detail == "3 records behind" and fresh[-1].detail == "not running"
    assert [row.stale for row in late[1:4]] == [True, True, True]


def test_lag_and_missing_chargers_are_stale() -> None:
    health = HealthView((), 0, lag_records=STALE_LAG_RECORDS + 1, chargers=ChargerConnections(1, 2))
    rows = {row.source: row for row in freshness(health, None, None, T0, SLOT_MINUTES)}
    assert rows["Broker lag"].stale
    assert rows["Charger connections"].stale
    assert rows["Charger connections"].detail == "1 of 2 stations connected"
    assert rows["Last telemetry"].stale and rows["Last telemetry"].newest is None


def test_a_quiet_service_with_a_plan_reports_ok(backend: LocalBackend) -> None:
    views = backend.board.views
    health = HealthView(
        (), 0, lag_records=0, newest_solar_forecast=T0, newest_intensity_forecast=T0
    )
    sources = freshness(health, T0, views, T0, SLOT_MINUTES)
    findings = component_findings(health, views, sources)
    assert {(f.component, f.check) for f in findings} >= {
        ("broker", "readers"),
        ("broker", "dead letters"),
        ("planner", "plan"),
        ("data", "Last telemetry"),
    }
    assert all(f.level is Level.OK for f in findings), findings


def test_failures_and_warnings_name_their_cause() -> None:
    letter = DeadLetterNote(datetime(2026, 1, 1, tzinfo=UTC), "t", "car-1", "invalid Telemetry")
    health = HealthView(
        ("planning on fallback intensity for DE (ember 2020)",),
        2,
        recent_dead_letters=(letter,),
        reader_failure="PublishError: dead letter not delivered",
    )
    findings = component_findings(health, None, freshness(health, None, None, T0, 15))
    assert (
        Finding(
            "broker",
            "readers",
            Level.FAIL,
            "a reader stopped: PublishError: dead letter not delivered",
        )
        in findings
    )
    assert (
        Finding("broker", "dead letters", Level.WARN, "2 since start; newest: invalid Telemetry")
        in findings
    )
    assert Finding("planner", "plan", Level.FAIL, "no plan yet") in findings
    assert (
        Finding(
            "service", "degraded", Level.WARN, "planning on fallback intensity for DE (ember 2020)"
        )
        in findings
    )
