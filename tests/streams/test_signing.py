"""Record proofs: who may write what, and every way a record fails to prove its writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.catalog import EXAMPLES
from streams.errors import MessageError, PublishError
from streams.identity import Authority, Identity
from streams.messages import Assignment, Heartbeat, Message, Telemetry
from streams.registry import Registry
from streams.serde import encode, key_of
from streams.signing import (
    PROOF_HEADER,
    Authenticator,
    AuthoritySigner,
    RecordSigner,
    proof_header,
)
from streams.topics import Stream

NOW = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.fixture
def world() -> dict:
    authority = Authority.generate()
    registry = Registry(authority.public_key)
    ids = {
        "planner": Identity.generate("planner", "service"),
        "car-1": Identity.generate("car-1", "car"),
        "car-2": Identity.generate("car-2", "car"),
        "forecast": Identity.generate("forecast", "adapter"),
    }
    for identity in ids.values():
        registry.apply(identity.enrollment(NOW))
    return {"authority": authority, "registry": registry, **ids}


def record(stream: Stream, message: Message, signer: RecordSigner | AuthoritySigner):
    key, value = key_of(stream, message), encode(message)
    return key, value, signer.headers(stream, message, key, value)


def telemetry(car: str) -> Telemetry:
    example = EXAMPLES[Stream.TELEMETRY]
    assert isinstance(example, Telemetry)
    return example.model_copy(update={"vehicle_id": car})


def check(world: dict, stream: Stream, message: Message, key, value, headers, reader="planner"):
    authenticator = Authenticator(world["registry"], [world[reader]])
    writer = authenticator.verify(stream, key, value, headers)
    authenticator.check_writer(stream, message, writer)
    return writer


def test_a_car_authenticates_its_own_telemetry_to_the_service(world: dict) -> None:
    car = RecordSigner([world["car-1"]], world["registry"])
    message = telemetry("car-1")
    writer = check(world, Stream.TELEMETRY, message, *record(Stream.TELEMETRY, message, car))
    assert writer is not None and writer.principal == "car-1"
    # the car itself can check it too (it holds one key of the pair), another car cannot
    check(world, Stream.TELEMETRY, message, *record(Stream.TELEMETRY, message, car), "car-1")
    with pytest.raises(MessageError, match="holds neither key"):
        check(world, Stream.TELEMETRY, message, *record(Stream.TELEMETRY, message, car), "car-2")


def test_a_car_cannot_sign_for_another_car(world: dict) -> None:
    car = RecordSigner([world["car-1"]], world["registry"])
    with pytest.raises(PublishError, match="no identity"):
        record(Stream.TELEMETRY, telemetry("car-2"), car)
    # a forged record claiming car-2, proven with car-1's key, is refused by the reader
    _, _, headers = record(Stream.TELEMETRY, telemetry("car-1"), car)
    forged = telemetry("car-2")
    forged_value = encode(forged)
    with pytest.raises(MessageError, match="does not match"):
        check(world, Stream.TELEMETRY, forged, b"car-2", forged_value, headers)


def test_a_tampered_record_is_refused(world: dict) -> None:
    service = RecordSigner([world["planner"]], world["registry"])
    example = EXAMPLES[Stream.ASSIGNMENTS]
    assert isinstance(example, Assignment)
    key, value, headers = record(Stream.ASSIGNMENTS, example, service)
    check(world, Stream.ASSIGNMENTS, example, key, value, headers)
    tampered = value.replace(b'"charge_power_kw":', b'"charge_power_kw":1', 1)
    with pytest.raises(MessageError, match="signature does not match"):
        check(world, Stream.ASSIGNMENTS, example, key, tampered, headers)
    with pytest.raises(MessageError, match="signature does not match"):  # replayed elsewhere
        check(world, Stream.DR_EVENTS, example, key, value, headers)


def test_roles_limit_what_a_key_may_write(world: dict) -> None:
    car = RecordSigner([world["car-1"]], world["registry"])
    example = EXAMPLES[Stream.ASSIGNMENTS]
    with pytest.raises(PublishError):
        record(Stream.ASSIGNMENTS, example, car)
    # a car's signature on an assignment (made by hand) names a role that may not write it
    key, value = key_of(Stream.ASSIGNMENTS, example), encode(example)
    headers = [proof_header(world["car-1"].key_id, b"x" * 64)]
    with pytest.raises(MessageError, match="car 'car-1' may not write assignments"):
        check(world, Stream.ASSIGNMENTS, example, key, value, headers)


def test_unsigned_unknown_and_revoked_keys_are_refused(world: dict) -> None:
    message = telemetry("car-1")
    key, value = key_of(Stream.TELEMETRY, message), encode(message)
    with pytest.raises(MessageError, match="unsigned"):
        check(world, Stream.TELEMETRY, message, key, value, [])
    stranger = Identity.generate("car-1", "car")  # same name, never enrolled
    registry = world["registry"]
    with pytest.raises(MessageError, match="unknown key"):
        check(
            world,
            Stream.TELEMETRY,
            message,
            *record(Stream.TELEMETRY, message, RecordSigner([stranger], registry)),
        )
    signed = record(Stream.TELEMETRY, message, RecordSigner([world["car-1"]], registry))
    revoked = world["car-1"].enrollment(NOW).model_copy(update={"revoked_at": NOW})
    registry.apply(revoked)
    registry.apply(world["car-1"].enrollment(NOW))  # a revoked key id stays revoked
    with pytest.raises(MessageError, match="revoked key"):
        check(world, Stream.TELEMETRY, message, *signed)


def test_enrollments_count_only_with_the_authority_signature(world: dict) -> None:
    newcomer = Identity.generate("car-9", "car").enrollment(NOW)
    key, value, headers = record(Stream.IDENTITIES, newcomer, AuthoritySigner(world["authority"]))
    assert check(world, Stream.IDENTITIES, newcomer, key, value, headers) is None
    rogue = AuthoritySigner(Authority.generate())
    with pytest.raises(MessageError, match="not the fleet authority"):
        check(world, Stream.IDENTITIES, newcomer, *record(Stream.IDENTITIES, newcomer, rogue))
    with pytest.raises(MessageError, match="not the id of its keys"):
        world["registry"].apply(newcomer.model_copy(update={"key_id": world["car-1"].key_id}))


def test_cars_address_the_newest_service_key(world: dict) -> None:
    registry = world["registry"]
    successor = Identity.generate("planner", "service")
    registry.apply(successor.enrollment(NOW.replace(hour=1)))
    car = RecordSigner([world["car-1"]], registry)
    beat = Heartbeat(vehicle_id="car-1", sent_at=NOW)
    key, value, headers = record(Stream.HEARTBEATS, beat, car)
    assert dict(headers)[PROOF_HEADER].split(b" ")[1] == successor.key_id.encode()
    # the service holds both keys while it rotates
    Authenticator(registry, [world["planner"], successor]).verify(
        Stream.HEARTBEATS, key, value, headers
    )


def test_identity_files_round_trip_and_refuse_loose_permissions(tmp_path) -> None:
    path = tmp_path / "car-1.key"
    made = Identity.load_or_create(path, "car-1", "car")
    assert Identity.load(path).key_id == made.key_id
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="holds car"):
        Identity.load_or_create(path, "car-2", "car")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        Identity.load(path)
