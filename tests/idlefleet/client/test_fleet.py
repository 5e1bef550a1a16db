"""FleetClient against a real server over a real channel: every verb returns typed views, and
every refusal is one FleetError naming the status code."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from idlefleet.api.auth import Role
from idlefleet.client.fleet import FleetClient, FleetError, JobStatus
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.sim.clock import SteppedClock
from streams.catalog import T0
from tests.idlefleet.client.conftest import accept_shards
from tests.idlefleet.conftest import Tokens
from tests.streams.factories import job


def test_jobs_are_listed_with_their_executions(viewer: FleetClient, backend: LocalBackend) -> None:
    backend.submit_job(job("later-job", shards=2, replicas=2))
    jobs = viewer.list_jobs(page_size=1)  # one page per job: pages are followed
    assert [j.job_id for j in jobs] == ["embed-1", "later-job"]
    first, second = jobs
    assert isinstance(first, JobStatus) and first.state == "open" and not first.settled
    assert (first.shards, first.replicas, first.executions_total) == (4, 1, 4)
    assert first.executions_planned == 4 and first.executions_accepted == 0
    assert (second.shards, second.replicas, second.executions_total) == (2, 2, 4)
    assert first.deadline.tzinfo is not None and first.release <= T0 + timedelta(hours=1)


def test_a_job_status_shows_progress(viewer: FleetClient, backend: LocalBackend) -> None:
    accept_shards(backend, "embed-1", range(3))
    status = viewer.job_status("embed-1")
    assert (status.executions_accepted, status.executions_remaining) == (3, 1)
    assert status.model_uri.endswith(".onnx")


def test_watching_a_job_yields_each_change_until_it_settles(
    viewer: FleetClient, backend: LocalBackend
) -> None:
    updates = viewer.watch_job("embed-1", interval_s=0.05)
    first = next(updates)
    assert (first.state, first.executions_accepted) == ("open", 0)
    accept_shards(backend, "embed-1", range(2))
    assert next(updates).executions_accepted == 2
    accept_shards(backend, "embed-1", range(2, 4))
    last = next(updates)
    assert (last.state, last.executions_accepted, last.settled) == ("done", 4, True)
    assert next(updates, None) is None


def test_an_operator_cancels_and_a_viewer_may_not(
    viewer: FleetClient, operator: FleetClient
) -> None:
    with pytest.raises(FleetError) as refused:
        viewer.cancel_job("embed-1")
    assert refused.value.code == "PERMISSION_DENIED"
    assert "CancelJob needs role operator, the token has viewer" in str(refused.value)
    cancelled = operator.cancel_job("embed-1")
    assert cancelled.state == "cancelled" and cancelled.settled
    assert list(viewer.watch_job("embed-1", interval_s=0.05)) == [cancelled]


def test_a_bad_token_is_unauthenticated_with_a_clear_message(target: str) -> None:
    for token in ("not-a-token-the-server-knows", None):
        with FleetClient(target, token=token) as client, pytest.raises(FleetError) as error:
            client.list_jobs()
        assert error.value.code == "UNAUTHENTICATED"
        message = str(error.value)
        assert message.startswith("UNAUTHENTICATED: ")
        assert "--token-file or IDLEFLEET_TOKEN" in message
        assert "not-a-token" not in message and "Traceback" not in message


def test_unknown_ids_and_scopes_are_not_found(viewer: FleetClient) -> None:
    with pytest.raises(FleetError) as error:
        viewer.job_status("no-such-job")
    assert error.value.code == "NOT_FOUND" and "no-such-job" in error.value.details
    with pytest.raises(FleetError) as error:
        viewer.plan(site_id="no-such-site")
    assert error.value.code == "NOT_FOUND"


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with FleetClient(f"127.0.0.1:{port}", token="x" * 20, timeout_s=5) as client:
        with pytest.raises(FleetError) as error:
            client.fleet_status()
        assert error.value.code == "UNAVAILABLE"
        assert "is the API running" in str(error.value)
        with pytest.raises(FleetError):
            client.health()


def test_fleet_status_shows_sites_cars_jobs_and_the_plan(
    viewer: FleetClient, clock: SteppedClock
) -> None:
    status = viewer.fleet_status()
    assert status.as_of == clock()
    assert (status.vehicles_known, status.vehicles_parked) == (4, 4)
    assert status.vehicles_participating == 3
    assert [s.site_id for s in status.sites] == ["berlin-depot", "london-depot"]
    assert status.sites[0].grid_limit_kw == 30.0 and status.sites[0].vehicles_parked == 2
    assert status.jobs.open == 1 and status.jobs.done == 0
    assert status.plan is not None and status.plan.strategy == "milp"
    assert status.plan.status in ("optimal", "feasible") and status.plan.slots == 16


def test_the_plan_of_the_fleet_a_site_and_a_vehicle(viewer: FleetClient) -> None:
    fleet = viewer.plan()
    site = viewer.plan(site_id="london-depot")
    car = viewer.plan(vehicle_id="car-a")
    assert (fleet.scope, site.scope, car.scope) == ("fleet", "site london-depot", "vehicle car-a")
    assert len(fleet.slots) == len(site.slots) == len(car.slots) == 16
    assert fleet.slots[0].grid_import_kw is not None and car.slots[0].grid_import_kw is None
    assert sum(s.shards_by_job.get("embed-1", 0) for s in fleet.slots) == 4
    for s in range(16):
        assert fleet.slots[s].charge_power_kw >= site.slots[s].charge_power_kw - 1e-9
    with pytest.raises(ValueError, match="not both"):
        viewer.plan(site_id="london-depot", vehicle_id="car-a")


def test_flexibility_of_a_site_and_a_region(viewer: FleetClient) -> None:
    berlin = viewer.flexibility("berlin-depot")
    germany = viewer.flexibility(region="DE")
    assert berlin.scope == "site berlin-depot" and germany.scope == "region DE"
    assert len(berlin.slots) == 16
    for slot in berlin.slots:
        assert slot.import_cap_kw == pytest.approx(30.0)
        assert slot.baseline_import_kw + slot.add_power_kw <= slot.import_cap_kw + 1e-6
        assert slot.shed_power_kw >= 0


def test_health_needs_no_token(target: str) -> None:
    with FleetClient(target) as client:
        assert client.health() == "SERVING"


def test_from_the_environment(target: str, tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLEFLEET_GRPC_TARGET", target)
    monkeypatch.setenv("IDLEFLEET_TOKEN", tokens.by_role[Role.OPERATOR])
    with FleetClient.from_environment() as client:
        assert client.connection.target == target and not client.connection.secure
        assert client.job_status("embed-1").job_id == "embed-1"
