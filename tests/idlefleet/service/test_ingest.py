"""Every stream the planner service reads is folded idempotently: duplicates, resubmissions,
stale forecasts, DR modifications and cancellations, results that match no assignment, and a
restart that replays it all end in the same state; a job naming an unknown site is parked."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from idlefleet.service.planner import PlannerService
from idlefleet.settings import PlannerSettings
from idlefleet.sites import load_sites
from streams.clients import KafkaSettings
from streams.messages import DemandResponseEvent, SolarForecast
from tests.idlefleet.service.factories import (
    SLOT,
    T0,
    done,
    forecast,
    parked,
    short_job,
    work_assigned,
    write_sites,
)
from tests.streams import factories


def dr_event(event_id: str, cap_kw: float, *, cancelled: bool = False) -> DemandResponseEvent:
    return factories.dr_event(
        event_id,
        site_id="depot-a",
        end=T0 + timedelta(hours=1),
        max_import_kw=cap_kw,
        cancelled=cancelled,
    )


def solar(issued_minutes: int, pv_kw: float) -> SolarForecast:
    return factories.solar_forecast(
        [pv_kw] * 8, site_id="depot-a", issued_at=T0 + timedelta(minutes=issued_minutes)
    )


def test_every_stream_is_folded_idempotently_and_a_restart_changes_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    embed = short_job("embed", 4)
    factories.publish(
        kafka_settings,
        [
            forecast(),
            parked("car-0", "depot-a"),
            parked("car-1", "depot-a"),
            embed,
            embed,  # a duplicate
            embed.model_copy(update={"value_per_shard": 99.0}),  # resubmitted: first one wins
            short_job("abroad", 1, ["nowhere"]),  # an unknown site: dead-lettered
            dr_event("cap", 40.0),
            dr_event("cap", 30.0),  # modifies it
            dr_event("cap", 30.0),
            dr_event("gone", 20.0),
            dr_event("gone", 20.0, cancelled=True),
            dr_event("gone", 20.0, cancelled=True),
            solar(10, 5.0),
            solar(5, 1.0),  # older than the one already read
        ],
    )
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, solver_time_limit_s=10)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        assert service.tick(T0).work_items == 2
        (first, item0), (second, item1) = work_assigned(kafka_settings, T0)
        forged = done(first, item0).model_copy(
            update={"work_id": "w-forged", "assignment_id": "a-forged", "vehicle_id": "car-9"}
        )
        factories.publish(
            kafka_settings,
            [
                done(first, item0),
                done(first, item0),  # a duplicate
                done(second, item1).model_copy(update={"vehicle_id": "car-9"}),  # not its car
                forged,  # work no assignment carried
            ],
        )
        assert service.catch_up()
        before = service.status()
        assert service.reader_failure is None
    finally:
        service.stop()
    assert before.known_jobs == ("embed",)
    assert before.accepted == {"embed": ((item0.shard_index, first.vehicle_id),)}
    assert (before.results_accepted, before.results_refused, before.results_unmatched) == (1, 1, 1)
    assert before.dead_letters == 1
    assert service.ledger_snapshot().job("embed") == embed
    assert service.state.dr_events == {"cap": dr_event("cap", 30.0)}
    assert service.state.solar["depot-a"] == solar(10, 5.0)

    again = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        assert again.catch_up()
        after = again.status()
    finally:
        again.stop()
    # A restart replays everything: the same state, and nothing dead-lettered twice.
    assert after == replace(before, dead_letters=0)
    assert again.state.dr_events == service.state.dr_events
    assert again.state.solar == service.state.solar


def test_results_read_before_their_job_are_validated_from_outputs_read_outside_the_lock(
    kafka_settings: KafkaSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Work a previous worker leased: its assignments and results come before the job (topics
    are read in no set order); once the job is read, the replicas' outputs are compared."""
    from executor.dispatch import Dispatcher, SlotDispatch
    from executor.ledger import JobLedger

    job = short_job("checked", 1).model_copy(update={"replicas": 2})
    earlier = Dispatcher(JobLedger(), [job])
    assignments = earlier.assignments_for_slot(
        [SlotDispatch(car, 7.0, {"checked": 1}) for car in ("car-0", "car-1")],
        T0,
        T0 + SLOT,
        "plan-earlier",
    )
    results = [done(a, item) for a in assignments for item in a.work]
    assert len(results) == 2
    factories.publish(kafka_settings, [forecast(), *assignments, *results])
    sites = load_sites(write_sites(tmp_path, ["depot-a"]))
    settings = PlannerSettings(group_id="planner", horizon_hours=2, solver_time_limit_s=10)
    service = PlannerService(kafka_settings, settings, sites, trust=None).start()
    try:
        assert service.catch_up()
        factories.publish(kafka_settings, [job])
        assert service.catch_up()
        assert service.ledger_snapshot().progress["checked"].accepted == 2
        canonical = service.validator.canonical("checked", 0)
        assert canonical is not None
        assert "cannot be read" not in caplog.text
        # the submitter is offered the output the validator accepted, once per shard
        [output] = service.job_outputs("checked")
        assert output.vehicle_id == canonical
    finally:
        service.stop()
