"""The My car page over a local backend: who may see and change what, the preferences form
going through the API's own path (errors naming their field, entries kept), tonight's plan
for the car changing when its departure does, and a statement with no invented figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idlefleet.queries.errors import InvalidFieldError, UnknownIdError
from idlefleet.queries.health import health_source
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.sim.clock import SteppedClock
from idlefleet.tokens import Role
from idlefleet.web.my_car_page import (
    FORM,
    Access,
    PreferencesForm,
    Statement,
    access,
    car_page,
    charging_carbon_avoided_kg,
)
from idlefleet.web.runner import WebConfig, serving_web
from idlefleet.web.sessions import Session
from streams.catalog import T0
from tests.idlefleet.conftest import OWNED_CAR, SITES, Tokens
from tests.idlefleet.web.http_client import Client, csrf_of, signed_in

SLOT = timedelta(minutes=15)


def session(role: Role, vehicle_id: str | None = None) -> Session:
    return Session("someone", role, vehicle_id, "csrf-token")


def test_owners_edit_their_car_only_viewers_read_operators_edit() -> None:
    assert access(session(Role.OWNER, OWNED_CAR), OWNED_CAR) is Access.EDIT
    assert access(session(Role.OWNER, OWNED_CAR), "car-b") is Access.REFUSED
    assert access(session(Role.VIEWER), "car-b") is Access.READ
    assert access(session(Role.OPERATOR), "car-b") is Access.EDIT
    assert access(session(Role.ADMIN), "car-b") is Access.EDIT


def test_the_page_shows_the_stored_preferences_and_tonight(backend: LocalBackend) -> None:
    page = car_page(backend, OWNED_CAR, Access.EDIT)
    assert page.form is not None
    assert page.form.participating and page.form.target_kwh == "50"
    departure = T0 + timedelta(hours=3)
    assert page.form.expected_departure == departure.strftime("%Y-%m-%dT%H:%M")
    assert page.site_ids == tuple(site.site_id for site in SITES)
    tonight = page.tonight
    assert tonight is not None
    views = backend.board.views
    assert views is not None and tonight.revision == views.revision
    assert tonight.departure == T0 + timedelta(hours=3) and tonight.departs_in_horizon
    assert len(tonight.slot_starts) == len(views.slot_start_s) == 16
    assert tonight.owed_kwh == 50.0 and tonight.departure_kwh is not None
    assert tonight.departure_kwh >= tonight.owed_kwh - 1e-6
    known = [e for e in tonight.energy_kwh if e is not None]
    assert min(known) >= tonight.floor_kwh - 1e-6
    assert tonight.energy_kwh[12] == tonight.departure_kwh, "it leaves at 15:00 with this"
    assert tonight.energy_kwh[-1] is None, "it has left by the horizon's end"
    labels = [s.label for s in tonight.energy_chart.series]
    assert labels == ["Energy [kWh]", "Floor [kWh]", "Owed at departure [kWh]"]
    assert tonight.compute_energy_kwh == pytest.approx(
        sum(tonight.compute_kw) * SLOT.total_seconds() / 3600
    )
    assert tonight.note is None, "a version-1 car's data comes whole"
    assert tonight.slot_h == SLOT.total_seconds() / 3600
    last_slot = dataclasses.replace(  # a plan's last slot (the end of a demo): one of them
        tonight,
        slot_starts=tonight.slot_starts[:1],
        charge_kw=(11.0,),
        compute_kw=(0.0,),
        energy_kwh=tonight.energy_kwh[:1],
        intensity_g_per_kwh=tonight.intensity_g_per_kwh[:1],
    )
    assert last_slot.carbon_avoided_kg == 0.0  # it charges as it would unmanaged


def test_viewers_see_no_preferences_and_unknown_cars_are_unknown(backend: LocalBackend) -> None:
    page = car_page(backend, "car-b", Access.READ)
    assert page.form is None and page.tonight is not None
    with pytest.raises(UnknownIdError):
        car_page(backend, "car-zz", Access.READ)


def test_a_new_departure_changes_the_next_plan(backend: LocalBackend, clock: SteppedClock) -> None:
    before = car_page(backend, OWNED_CAR, Access.EDIT)
    assert before.form is not None and before.tonight is not None
    clock.now = T0 + timedelta(minutes=5)  # after the car's own report at T0
    moved = (T0 + timedelta(hours=1, minutes=30)).strftime("%Y-%m-%dT%H:%M")
    form = PreferencesForm(
        participating=True, reserve_kwh="10", target_kwh="45", expected_departure=moved
    )
    stored = backend.set_preferences(form.preferences(OWNED_CAR, clock.now, "owner-a"))
    assert stored.expected_departure == T0 + timedelta(hours=1, minutes=30)
    assert stored.updated_by == "owner-a"
    assert car_page(backend, OWNED_CAR, Access.EDIT).tonight == before.tonight, (
        "the plan changes with the next plan, not before"
    )
    backend.replan()
    after = car_page(backend, OWNED_CAR, Access.EDIT).tonight
    assert after is not None and after.revision == before.tonight.revision + 1
    assert after.departure == T0 + timedelta(hours=1, minutes=30)
    assert after.owed_kwh is not None and after.owed_kwh <= 45.0
    assert after.energy_kwh[6] == after.departure_kwh, "it leaves at 13:30 with this"
    assert after.energy_kwh[7] is None, "gone after 13:30"
    assert after.energy_kwh != before.tonight.energy_kwh


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"reserve_kwh": "20", "target_kwh": "10"}, "target_kwh", "below reserve_kwh"),
        ({"reserve_kwh": "lots"}, "reserve_kwh", "not a number"),
        ({"reserve_kwh": "-1"}, "reserve_kwh", "greater than or equal to 0"),
        ({"min_soc_frac": "1.5"}, "min_soc_frac", "less than or equal to 1"),
        ({"expected_departure": "tomorrow"}, "expected_departure", "not a date and time"),
        ({"expected_departure": "2020-06-01T11:00"}, "expected_departure", "not after"),
        ({"target_kwh": "500"}, "target_kwh", "exceeds the car's battery"),
        ({"only_at_sites": ("paris-depot",)}, "only_at_sites", "unknown site"),
    ],
)
def test_a_refused_field_is_named_and_the_entries_are_kept(
    backend: LocalBackend,
    clock: SteppedClock,
    changes: dict[str, object],
    field: str,
    problem: str,
) -> None:
    entered = PreferencesForm(**{**PreferencesForm(participating=True).__dict__, **changes})
    with pytest.raises(InvalidFieldError) as refused:
        backend.set_preferences(entered.preferences(OWNED_CAR, clock.now, "owner-a"))
    shown = entered.refused(refused.value)
    assert set(shown.errors) == {field}
    assert problem in shown.errors[field]
    for name, value in changes.items():
        assert getattr(shown, name) == value, "what was typed is shown again"


def test_an_error_of_no_field_is_shown_above_the_form() -> None:
    shown = PreferencesForm().refused(InvalidFieldError("vehicle_id", "is not valid"))
    assert shown.errors == {FORM: "vehicle_id: is not valid"}


def test_the_statement_shows_compensation_only_at_a_set_rate(backend: LocalBackend) -> None:
    page = car_page(backend, OWNED_CAR, Access.READ)
    assert page.statement.executions == 0 and page.statement.compute_energy_kwh == 0.0
    assert page.statement.compensation is None, "no rate is set: no figure"
    paid = Statement(4, 2.5, T0, T0 + SLOT, compensation_per_kwh=0.3)
    assert paid.compensation == pytest.approx(0.75)


@pytest.fixture
def port(backend: LocalBackend, tokens: Tokens) -> Iterator[int]:
    """The console over the local backend; its port."""
    health = health_source(lambda: (), lambda: 0)
    with serving_web(WebConfig("127.0.0.1", 0), backend, tokens.table, health) as bound:
        assert bound is not None
        yield bound


@pytest.fixture
def client(port: int, tokens: Tokens) -> Client:
    """Signed in as the owner of OWNED_CAR."""
    return signed_in(port, tokens, Role.OWNER)


def test_the_form_posts_through_csrf_and_redirects(
    backend: LocalBackend, clock: SteppedClock, client: Client
) -> None:
    clock.now = T0 + timedelta(minutes=5)  # after the car's own report at T0
    page = client.request("GET", "/my-car")
    assert page.status == 200
    assert "Departure (UTC)" in page.text and 'type="datetime-local"' in page.text
    csrf = csrf_of(page.text)
    form = {"participating": "on", "reserve_kwh": "5", "target_kwh": "40"}

    assert client.request("POST", "/my-car", {**form, "csrf": "wrong"}).status == 400
    refused = client.request(
        "POST", "/my-car", {**form, "csrf": csrf, "expected_departure": "2019-01-01T00:00"}
    )
    assert refused.status == 400
    assert 'id="expected_departure-error"' in refused.text
    assert 'value="2019-01-01T00:00"' in refused.text and 'value="40"' in refused.text

    departure = (T0 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    saved = client.request(
        "POST", "/my-car", {**form, "csrf": csrf, "expected_departure": departure}
    )
    assert saved.status == 303 and saved.location == "/my-car?saved=1"
    stored = backend.preferences(OWNED_CAR)
    assert stored is not None and stored.expected_departure == T0 + timedelta(hours=2)
    assert stored.target_kwh == 40.0 and stored.reserve_kwh == 5.0
    assert "Saved; the next plan will follow." in client.request("GET", saved.location).text

    other = client.request("GET", "/cars/car-b")
    assert other.status == 403 and "car-b is not yours" in other.text
    assert client.request("POST", "/cars/car-b", {**form, "csrf": csrf}).status == 403
    untouched = backend.preferences("car-b")
    assert untouched is not None and untouched.target_kwh == 60.0


def test_viewers_may_not_post_and_operators_may_for_any_car(
    backend: LocalBackend, clock: SteppedClock, port: int, tokens: Tokens
) -> None:
    clock.now = T0 + timedelta(minutes=5)
    form = {"participating": "on", "reserve_kwh": "5", "target_kwh": "55"}
    viewer = signed_in(port, tokens, Role.VIEWER)
    page = viewer.request("GET", "/cars/car-b")
    assert page.status == 200 and "Preferences are shown to" in page.text
    refused = viewer.request("POST", "/cars/car-b", {**form, "csrf": csrf_of(page.text)})
    assert refused.status == 403 and "needs role operator" in refused.text
    assert viewer.request("GET", "/my-car").location == "/fleet", "no car of one's own"
    operator = signed_in(port, tokens, Role.OPERATOR)
    page = operator.request("GET", "/cars/car-b")
    saved = operator.request("POST", "/cars/car-b", {**form, "csrf": csrf_of(page.text)})
    assert saved.status == 303 and saved.location == "/cars/car-b?saved=1"
    stored = backend.preferences("car-b")
    assert stored is not None and stored.target_kwh == 55.0
    unknown = operator.request("GET", "/cars/car-zz")
    assert unknown.status == 404 and "No car car-zz is known" in unknown.text


def test_carbon_avoided_against_charging_at_once_on_arrival() -> None:
    # 10 kWh in half-hour slots: unmanaged, 7 kW then 3 kW in the first two parked slots
    intensity = [500.0, 400.0, 300.0, 100.0]
    parked = [False, True, True, True]
    planned = [0.0, 0.0, 0.0, 20.0]  # all in the cleanest slot, 10 kWh
    avoided = charging_carbon_avoided_kg(planned, parked, 14.0, intensity, 0.5)
    unmanaged_g = 7.0 * 400.0 + 3.0 * 300.0
    assert avoided == pytest.approx((unmanaged_g - 10.0 * 100.0) / 1000)
    unmanaged = [0.0, 14.0, 6.0, 0.0]
    assert charging_carbon_avoided_kg(unmanaged, parked, 14.0, intensity, 0.5) == 0.0


@given(
    st.lists(st.floats(0.0, 11.0), min_size=2, max_size=12),
    st.lists(st.floats(10.0, 900.0), min_size=12, max_size=12),
)
def test_charging_in_the_cleanest_slots_never_emits_more(
    charge_kw: list[float], intensity: list[float]
) -> None:
    slots = len(charge_kw)
    intensity = intensity[:slots]
    energy_kwh = sum(charge_kw) * 0.25
    # the same energy, at 11 kW, in the cleanest slots first
    cleanest = [0.0] * slots
    left = energy_kwh
    for s in sorted(range(slots), key=lambda s: intensity[s]):
        cleanest[s] = min(11.0, left / 0.25)
        left -= cleanest[s] * 0.25
    avoided = charging_carbon_avoided_kg(cleanest, [True] * slots, 11.0, intensity, 0.25)
    assert avoided >= -1e-6
