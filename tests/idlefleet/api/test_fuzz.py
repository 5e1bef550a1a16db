"""Fuzzing every RPC over a real channel: whatever a client sends (huge strings, NaN, negative
numbers, unset or out-of-range timestamps, unknown enum values, random ids, bad tokens), the
call ends OK or with a status a client can act on and a details string; never UNKNOWN or
INTERNAL; and the server keeps serving afterwards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from idlefleet.api.auth import Role
from idlefleet.api.status import MAX_DETAILS_BYTES
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from optimizer import scenario_to_dict
from tests.idlefleet.conftest import Tokens, job_spec, rpc_error, stamp

Code = grpc.StatusCode
#: What a call may end with: OK, or a code that tells the client what to do.
ACTIONABLE = frozenset(
    {
        Code.OK,
        Code.INVALID_ARGUMENT,
        Code.NOT_FOUND,
        Code.ALREADY_EXISTS,
        Code.FAILED_PRECONDITION,
        Code.PERMISSION_DENIED,
        Code.UNAUTHENTICATED,
        Code.RESOURCE_EXHAUSTED,
        Code.DEADLINE_EXCEEDED,
        Code.UNAVAILABLE,
    }
)
CALL_TIMEOUT_S = 10.0
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- field values -----------------------------------------------------------------------------

KNOWN_IDS = ["embed-1", "car-a", "car-d", "berlin-depot", "london-depot", "DE", "GB", "new-job"]
ids = st.one_of(
    st.sampled_from(KNOWN_IDS),
    st.sampled_from(KNOWN_IDS),
    st.sampled_from(KNOWN_IDS),
    st.text(max_size=30),
    st.text(st.characters(codec="ascii"), max_size=10).map(lambda s: f"../{s}/.."),
    st.builds(
        lambda char, n: char * n, st.sampled_from("x\x00é/"), st.sampled_from([201, 100_000])
    ),
)
floats = st.one_of(
    st.floats(0, 100),
    st.floats(0, 100),
    st.floats(),  # NaN, ±Infinity, -0.0 included
    st.sampled_from([-1.0, 0.0, 0.5, 11.0, 1e308, -1e308, 5e-324]),
)
uint32 = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2, 16, 17, 2**32 - 1]))
enums = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-1, 5))
stamps = st.one_of(
    st.none(),
    st.builds(stamp, st.integers(-8, 8).map(lambda quarter: quarter / 4)),  # on the slot grid
    st.builds(stamp, st.floats(-48, 48)),  # around the plan
    st.builds(
        lambda seconds, nanos: Timestamp(seconds=seconds, nanos=nanos),
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.sampled_from([-62135596800, -62135596801, 253402300799, 253402300800, 0]),
        ),
        st.one_of(st.integers(-(2**31), 2**31 - 1), st.just(0)),
    ),
)


def _set_stamps(message: Any, values: dict[str, Timestamp | None]) -> Any:
    for name, value in values.items():
        if value is not None:
            getattr(message, name).CopyFrom(value)
    return message


@st.composite
def job_specs(draw: st.DrawFn) -> pb.JobSpec:
    spec = pb.JobSpec(
        job_id=draw(ids),
        input_uris=draw(st.lists(ids, max_size=5)),
        output_uri=draw(ids),
        replicas=draw(uint32),
        value_per_shard=draw(floats),
        site_ids=draw(st.lists(ids, max_size=3)),
    )
    if draw(st.booleans()):
        spec.model.CopyFrom(
            pb.ModelRef(uri=draw(ids), sha256=draw(st.one_of(ids, st.just("a" * 64))))
        )
    return _set_stamps(spec, {"release": draw(stamps), "deadline": draw(stamps)})


@st.composite
def windows(draw: st.DrawFn) -> pb.TimeWindow | None:
    if draw(st.booleans()):
        return None
    return _set_stamps(pb.TimeWindow(), {"start": draw(stamps), "end": draw(stamps)})


@st.composite
def dr_events(draw: st.DrawFn) -> pb.DrEventSpec:
    event_ = pb.DrEventSpec(event_id=draw(ids), max_import_kw=draw(floats))
    target = draw(st.sampled_from(["site_id", "region", None]))
    if target is not None:
        setattr(event_, target, draw(ids))
    return _set_stamps(event_, {"start": draw(stamps), "end": draw(stamps)})


@st.composite
def what_if_jobs(draw: st.DrawFn) -> pb.WhatIfJob:
    job = pb.WhatIfJob(
        job_id=draw(ids),
        shards=draw(st.one_of(st.integers(0, 50), uint32)),
        replicas=draw(st.one_of(st.integers(0, 3), uint32)),
        value_per_shard=draw(floats),
        site_ids=draw(st.lists(ids, max_size=2)),
    )
    return _set_stamps(job, {"release": draw(stamps), "deadline": draw(stamps)})


@st.composite
def overrides(draw: st.DrawFn) -> pb.ScenarioOverrides:
    o = pb.ScenarioOverrides(
        grid_limit_kw_by_site=draw(st.dictionaries(ids, floats, max_size=2)),
        remove_vehicle_ids=draw(st.lists(ids, max_size=2)),
        dr_events=draw(st.lists(dr_events(), max_size=2)),
        jobs=draw(st.lists(what_if_jobs(), max_size=2)),
    )
    if draw(st.booleans()):
        o.carbon_price_per_tonne = draw(floats)
    return o


# --- near-valid messages: a valid one with one or two fields taken from a random one ----------

SITE_IDS = ["berlin-depot", "london-depot"]
on_grid = st.integers(-4, 16).map(lambda quarter: stamp(quarter / 4))


def _with_field_of(valid: Any, donor: Any, field: str) -> Any:
    """A copy of `valid` whose `field` (only that) is the one `donor` has."""
    only = type(donor)()
    only.CopyFrom(donor)
    for other in only.DESCRIPTOR.fields_by_name:
        if other != field:
            only.ClearField(other)
    out = type(valid)()
    out.CopyFrom(valid)
    out.ClearField(field)
    out.MergeFrom(only)
    return out


def near_valid(valid: st.SearchStrategy[Any], random: st.SearchStrategy[Any]) -> Any:
    @st.composite
    def build(draw: st.DrawFn) -> Any:
        message = draw(valid)
        for _ in range(draw(st.integers(0, 2))):
            field = draw(st.sampled_from(sorted(message.DESCRIPTOR.fields_by_name)))
            message = _with_field_of(message, draw(random), field)
        return message

    return build()


valid_job_specs = st.builds(
    lambda job_id, shards, release, hours: job_spec(
        job_id, shards, release=stamp(release / 4), deadline=stamp(release / 4 + hours)
    ),
    st.sampled_from(["new-job", "job-2", "embed-1"]),
    st.integers(1, 5),
    st.integers(-4, 8),
    st.integers(1, 6),
)


@st.composite
def valid_dr_events(draw: st.DrawFn) -> pb.DrEventSpec:
    start = draw(st.integers(-4, 16))
    event_ = pb.DrEventSpec(
        event_id=draw(st.sampled_from(["dr-1", "dr-2"])),
        max_import_kw=draw(st.floats(0, 60)),
        start=stamp(start / 4),
        end=stamp((start + draw(st.integers(1, 8))) / 4),
    )
    if draw(st.booleans()):
        event_.site_id = draw(st.sampled_from(SITE_IDS))
    else:
        event_.region = draw(st.sampled_from(["DE", "GB"]))
    return event_


@st.composite
def valid_what_if_jobs(draw: st.DrawFn) -> pb.WhatIfJob:
    release = draw(st.integers(0, 8))
    return pb.WhatIfJob(
        job_id=draw(st.sampled_from(["extra", "extra-2"])),
        shards=draw(st.integers(0, 20)),
        replicas=draw(st.integers(0, 2)),
        value_per_shard=draw(st.floats(0, 2)),
        release=stamp(release / 4),
        deadline=stamp((release + draw(st.integers(1, 8))) / 4),
        site_ids=draw(st.lists(st.sampled_from(SITE_IDS), max_size=2, unique=True)),
    )


@st.composite
def valid_overrides(draw: st.DrawFn) -> pb.ScenarioOverrides:
    o = pb.ScenarioOverrides(
        grid_limit_kw_by_site=draw(st.dictionaries(st.sampled_from(SITE_IDS), st.floats(0, 100))),
        remove_vehicle_ids=draw(
            st.lists(st.sampled_from(["car-a", "car-b", "car-c"]), max_size=2, unique=True)
        ),
        dr_events=draw(st.lists(valid_dr_events(), max_size=2)),
        jobs=draw(st.lists(valid_what_if_jobs(), max_size=2)),
    )
    if draw(st.booleans()):
        o.carbon_price_per_tonne = draw(st.floats(0, 500))
    return o


def _scope(request: Any, names: list[str], draw: st.DrawFn) -> Any:
    name = draw(st.sampled_from([*names, None]))
    if name is not None:
        setattr(request, name, draw(ids))
    return request


# --- requests, one strategy per RPC -----------------------------------------------------------


@st.composite
def get_plan(draw: st.DrawFn) -> pb.GetPlanRequest:
    request = _scope(pb.GetPlanRequest(), ["site_id", "vehicle_id"], draw)
    window = draw(windows())
    if window is not None:
        request.window.CopyFrom(window)
    return request


@st.composite
def get_flexibility(draw: st.DrawFn) -> pb.GetFlexibilityRequest:
    request = _scope(pb.GetFlexibilityRequest(), ["site_id", "region"], draw)
    window = draw(windows())
    if window is not None:
        request.window.CopyFrom(window)
    return request


@st.composite
def watch_plan(draw: st.DrawFn) -> pb.WatchPlanRequest:
    return _scope(pb.WatchPlanRequest(), ["site_id", "vehicle_id"], draw)


@st.composite
def submit_dr(draw: st.DrawFn) -> pb.SubmitDemandResponseRequest:
    request = pb.SubmitDemandResponseRequest(cancel=draw(st.booleans()))
    if draw(st.integers(0, 4)):
        request.event.CopyFrom(
            draw(st.one_of(near_valid(valid_dr_events(), dr_events()), dr_events()))
        )
    return request


page_tokens = st.one_of(
    st.text(max_size=20),
    ids.map(lambda s: base64.urlsafe_b64encode(s.encode()).decode()),
    st.sampled_from(["", "=", "====", "_-_-", "\u00e9"]),
)
REQUESTS: dict[str, st.SearchStrategy[Any]] = {
    "SubmitJob": st.one_of(
        st.just(pb.SubmitJobRequest()),
        st.builds(
            lambda j: pb.SubmitJobRequest(job=j),
            st.one_of(near_valid(valid_job_specs, job_specs()), job_specs()),
        ),
    ),
    "GetJob": st.builds(lambda i: pb.GetJobRequest(job_id=i), ids),
    "CancelJob": st.builds(lambda i: pb.CancelJobRequest(job_id=i), ids),
    "ListJobs": st.builds(
        lambda size, token: pb.ListJobsRequest(page_size=size, page_token=token),
        uint32,
        page_tokens,
    ),
    "GetPlan": get_plan(),
    "GetFlexibility": get_flexibility(),
    "GetFleetStatus": st.just(pb.GetFleetStatusRequest()),
    "WatchPlan": watch_plan(),
    "SubmitDemandResponse": submit_dr(),
}


@st.composite
def set_preferences(draw: st.DrawFn) -> pb.SetOwnerPreferencesRequest:
    request = pb.SetOwnerPreferencesRequest(
        vehicle_id=draw(st.one_of(st.sampled_from(["car-a", "car-b"]), ids)),
        reserve_kwh=draw(floats),
        participating=draw(st.booleans()),
        rules=pb.ConsentRules(
            only_at_sites=draw(st.lists(st.one_of(st.sampled_from(SITE_IDS), ids), max_size=3)),
            solar_surplus_only=draw(st.booleans()),
        ),
    )
    if draw(st.booleans()):
        request.target_kwh = draw(floats)
    if draw(st.booleans()):
        request.rules.min_soc_frac = draw(st.one_of(st.floats(0, 1), floats))
    return _set_stamps(request, {"expected_departure": draw(stamps)})


@st.composite
def register_vehicle(draw: st.DrawFn) -> pb.RegisterVehicleRequest:
    if not draw(st.integers(0, 4)):
        return pb.RegisterVehicleRequest()
    vehicle = pb.VehicleRecord(
        vehicle_id=draw(st.one_of(st.sampled_from(["car-a", "car-new"]), ids)),
        battery_kwh=draw(floats),
        charger_kw=draw(floats),
        compute_kw=draw(floats),
        wear_cost_per_kwh=draw(floats),
        accelerator=draw(ids),
        home_site_id=draw(st.one_of(st.sampled_from(SITE_IDS), ids)),
        vin=draw(st.one_of(st.just("WVWZZZ1JZXW000001"), ids)),
        id_tokens=draw(st.lists(ids, max_size=3)),
        evse=draw(st.one_of(st.just("depot-cs-7/1"), ids)),
        retired=draw(st.booleans()),
    )
    if draw(st.booleans()):
        vehicle.charge_efficiency_frac = draw(floats)
    if draw(st.booleans()):
        vehicle.shards_per_slot = draw(uint32)
    return pb.RegisterVehicleRequest(vehicle=vehicle)


#: The owner and registry RPCs: they change the fleet's cars, so the server's check after
#: each call is only that it answers.
OWNER_REQUESTS: dict[str, st.SearchStrategy[Any]] = {
    "GetOwnerPreferences": st.builds(
        lambda i: pb.GetOwnerPreferencesRequest(vehicle_id=i),
        st.one_of(st.sampled_from(["car-a", "car-b"]), ids),
    ),
    "SetOwnerPreferences": set_preferences(),
    "RegisterVehicle": register_vehicle(),
    "ListVehicles": st.builds(
        lambda size, token: pb.ListVehiclesRequest(page_size=size, page_token=token),
        uint32,
        page_tokens,
    ),
}


CREDENTIALS = st.sampled_from(["admin", "admin", "admin", "operator", "viewer", "none", "bogus"])


def _metadata(tokens: Tokens, who: str) -> tuple[tuple[str, str], ...]:
    if who == "none":
        return ()
    if who == "bogus":
        return (("authorization", "Bearer not-a-token-of-this-server"),)
    return tokens.metadata(Role[who.upper()])


# --- the property -----------------------------------------------------------------------------


def ended_with(call: Callable[[], object]) -> Code:
    """The status `call` ends with, checked: actionable, and explained when not OK."""
    try:
        call()
    except grpc.RpcError as error:
        code, details = error.code(), error.details()
        assert code in ACTIONABLE, f"{code}: {details}"
        assert details and details.strip(), f"{code} without details"
        assert len(details.encode()) <= MAX_DETAILS_BYTES, f"{code}: {len(details)} characters"
        assert "metadata size" not in details, details  # the real status was lost
        return code
    return Code.OK


def call_rpc(stub: pb_grpc.FleetPlannerStub, method: str, request: Any, metadata: Any) -> Code:
    if method == "WatchPlan":

        def first_plan() -> None:
            stream = stub.WatchPlan(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            try:
                next(stream)
            finally:
                stream.cancel()

        return ended_with(first_plan)
    rpc = getattr(stub, method)
    return ended_with(lambda: rpc(request, metadata=metadata, timeout=CALL_TIMEOUT_S))


def assert_still_serving(stub: pb_grpc.FleetPlannerStub, tokens: Tokens) -> None:
    status = stub.GetFleetStatus(
        pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=CALL_TIMEOUT_S
    )
    assert status.vehicles_known == 4


@pytest.mark.parametrize("method", sorted(REQUESTS))
@FUZZ
@given(data=st.data())
def test_every_rpc_answers_random_requests_with_an_actionable_status(
    method: str, stub: pb_grpc.FleetPlannerStub, tokens: Tokens, data: st.DataObject
) -> None:
    request = data.draw(REQUESTS[method], label="request")
    who = data.draw(CREDENTIALS, label="credentials")
    code = call_rpc(stub, method, request, _metadata(tokens, who))
    event(code.name)
    assert_still_serving(stub, tokens)


@pytest.mark.parametrize("method", sorted(OWNER_REQUESTS))
@FUZZ
@given(data=st.data())
def test_every_owner_and_registry_rpc_answers_random_requests_with_an_actionable_status(
    method: str, stub: pb_grpc.FleetPlannerStub, tokens: Tokens, data: st.DataObject
) -> None:
    request = data.draw(OWNER_REQUESTS[method], label="request")
    who = data.draw(st.one_of(CREDENTIALS, st.just("owner")), label="credentials")
    code = call_rpc(stub, method, request, _metadata(tokens, who))
    event(code.name)
    status = stub.GetFleetStatus(
        pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=CALL_TIMEOUT_S
    )
    assert status.HasField("as_of")  # it answers (retired cars are no longer known)


# --- WhatIf: overrides and whole scenario documents --------------------------------------------


def _mutated_document(document: dict[str, Any], draw: st.DrawFn) -> str:
    """The current scenario as JSON with one field of one section set to a nasty value."""
    section = draw(st.sampled_from(sorted(document)))
    target: Any = document
    key: Any = section
    node = document[section]
    if isinstance(node, list) and node:
        target, key = node[draw(st.integers(0, len(node) - 1))], None
    elif isinstance(node, dict) and node:
        target, key = node, None
    if key is None:
        key = draw(st.sampled_from([*sorted(target), "colour"]))
    target[key] = draw(
        st.one_of(
            floats,
            ids,
            st.sampled_from([None, [], {}, -1, 10**400, "2020-06-01T12:00:00"]),
            st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00Z"]),
        )
    )
    return json.dumps(document, allow_nan=True)


scenario_texts = st.sampled_from(
    [
        "",
        "{",
        "[]",
        "null",
        '{"scenario_version": NaN}',
        '{"scenario_version": ' + "9" * 5_000 + "}",
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "[" * 100_000,
        "/etc/passwd",
    ]
)


@pytest.mark.parametrize(
    "text",
    ['{"a":' * 100_000 + "1" + "}" * 100_000, '{"v": ' + "9" * 5_000 + "}"],
    ids=["deep", "long-integer"],
)
def test_what_if_refuses_documents_json_cannot_read(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, text: str
) -> None:
    """Found by the fuzzer: RecursionError and ValueError from json.loads ended as INTERNAL."""
    request = pb.WhatIfRequest(scenario_json=text)
    operator = tokens.metadata(Role.OPERATOR)
    assert ended_with(lambda: stub.WhatIf(request, metadata=operator)) is Code.INVALID_ARGUMENT


@FUZZ
@given(data=st.data())
def test_what_if_answers_random_overrides_and_documents_with_an_actionable_status(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend, data: Any
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    kind = data.draw(st.sampled_from(["overrides", "document", "text", "nothing"]))
    request = pb.WhatIfRequest(
        strategy=data.draw(st.one_of(st.sampled_from([0, 1, 2, 3]), st.integers(0, 3), enums)),
        time_limit_s=data.draw(st.one_of(st.just(0.0), st.floats(0, 2), floats)),
    )
    if kind == "overrides":
        request.overrides.CopyFrom(
            data.draw(st.one_of(near_valid(valid_overrides(), overrides()), overrides()))
        )
    elif kind == "document":
        document = scenario_to_dict(backend.current_scenario())
        request.scenario_json = _mutated_document(document, data.draw)
    elif kind == "text":
        request.scenario_json = data.draw(scenario_texts)
    code = ended_with(lambda: stub.WhatIf(request, metadata=operator, timeout=CALL_TIMEOUT_S))
    event(f"{kind}: {code.name}")
    assert_still_serving(stub, tokens)


def test_the_property_refuses_internal_and_unexplained_errors() -> None:
    """`ended_with` fails on what the fuzz tests must never see."""

    class Failed(grpc.RpcError):
        def __init__(self, code: Code, details: str) -> None:
            self._code, self._details = code, details

        def code(self) -> Code:
            return self._code

        def details(self) -> str:
            return self._details

    def raising(error: grpc.RpcError) -> Callable[[], object]:
        def call() -> object:
            raise error

        return call

    for bad in (Failed(Code.INTERNAL, "internal error"), Failed(Code.UNKNOWN, "boom")):
        with pytest.raises(AssertionError):
            ended_with(raising(bad))
    with pytest.raises(AssertionError, match="without details"):
        ended_with(raising(Failed(Code.NOT_FOUND, "")))
    assert ended_with(raising(Failed(Code.NOT_FOUND, "unknown job 'x'"))) is Code.NOT_FOUND


def test_an_error_that_echoes_a_huge_id_keeps_its_status(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    """Found by the fuzzer: the details echoed a 100 kB id, the trailer passed gRPC's metadata
    limit and the client got RESOURCE_EXHAUSTED instead of NOT_FOUND."""
    viewer = tokens.metadata(Role.VIEWER)
    for job_id in ("x" * 100_000, "\U0001f600" * 30_000):
        request = pb.GetJobRequest(job_id=job_id)
        error = rpc_error(lambda r=request: stub.GetJob(r, metadata=viewer))  # type: ignore[misc]
        assert error.code() is Code.NOT_FOUND
        assert error.details().startswith("unknown job '") and error.details().endswith("...")


def test_a_demand_response_event_sent_again_modifies_it(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    """Found by the fuzzer: the event in force and its new version were both put in the
    scenario, which refused the duplicate id, so no event could ever be modified."""
    operator = tokens.metadata(Role.OPERATOR)

    def submit(max_import_kw: float) -> pb.DemandResponseDecision:
        event_ = pb.DrEventSpec(
            event_id="dr-1",
            site_id="berlin-depot",
            start=stamp(0),
            end=stamp(2),
            max_import_kw=max_import_kw,
        )
        request = pb.SubmitDemandResponseRequest(event=event_)
        return stub.SubmitDemandResponse(request, metadata=operator)

    first = submit(1000.0)
    assert first.honoured, first.reason
    again = submit(900.0)
    assert again.honoured, again.reason
    assert backend.state.dr_events["dr-1"].max_import_kw == 900.0
