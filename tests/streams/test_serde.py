"""Schema round trips and rejections for every topic's payload."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.catalog import EXAMPLES, T0, render_topic_docs
from streams.errors import MessageError
from streams.messages import Telemetry
from streams.serde import MAX_MESSAGE_BYTES, decode, encode, key_of
from streams.topics import STREAM_SPECS, Stream, Topics


@pytest.mark.parametrize("stream", list(EXAMPLES))
def test_every_stream_round_trips(stream: Stream) -> None:
    message = EXAMPLES[stream]
    assert decode(stream, encode(message)) == message
    assert json.loads(encode(message))["message_version"] == 1


def test_every_typed_stream_has_an_example() -> None:
    typed = {s for s, spec in STREAM_SPECS.items() if spec.message_type is not None}
    assert typed == set(EXAMPLES)


def test_keys_follow_the_topic_table() -> None:
    assert key_of(Stream.TELEMETRY, EXAMPLES[Stream.TELEMETRY]) == b"car-001"
    assert key_of(Stream.SOLAR_FORECASTS, EXAMPLES[Stream.SOLAR_FORECASTS]) == b"berlin-depot"
    assert key_of(Stream.GRID_SIGNALS, EXAMPLES[Stream.GRID_SIGNALS]) == b"DE"
    assert key_of(Stream.JOBS, EXAMPLES[Stream.JOBS]) == b"embed-1"
    assert key_of(Stream.ASSIGNMENTS, EXAMPLES[Stream.ASSIGNMENTS]) == b"car-001"
    assert key_of(Stream.RESULTS, EXAMPLES[Stream.RESULTS]) == b"embed-1"


def test_timestamps_are_normalised_to_utc() -> None:
    payload = json.loads(encode(EXAMPLES[Stream.TELEMETRY]))
    payload["event_time"] = "2020-06-01T14:00:00+02:00"
    decoded = decode(Stream.TELEMETRY, json.dumps(payload).encode())
    assert isinstance(decoded, Telemetry)
    assert decoded.event_time == T0 and decoded.event_time.utcoffset() == timedelta(0)


def _mutated(stream: Stream, **changes: object) -> bytes:
    payload = json.loads(encode(EXAMPLES[stream]))
    payload.update(changes)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("stream", "payload", "field"),
    [
        (
            Stream.TELEMETRY,
            _mutated(Stream.TELEMETRY, event_time="2020-06-01T12:00:00"),
            "event_time",
        ),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, energy_kwh=-1.0), "energy_kwh"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, energy_kwh=80.0), "energy_kwh"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, energy_kwh=float("nan")), "energy_kwh"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, energy_kwh=float("inf")), "energy_kwh"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, power=3), "power"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, message_version=2), "message_version"),
        (Stream.TELEMETRY, _mutated(Stream.TELEMETRY, vehicle_id="../etc"), "vehicle_id"),
        (Stream.SOLAR_FORECASTS, _mutated(Stream.SOLAR_FORECASTS, pv_kw=[]), "pv_kw"),
        (Stream.JOBS, _mutated(Stream.JOBS, deadline="2020-06-01T11:00:00Z"), "deadline"),
        (Stream.JOBS, _mutated(Stream.JOBS, model={"uri": "/m", "sha256": "xyz"}), "sha256"),
        (Stream.RESULTS, _mutated(Stream.RESULTS, output_sha256=None), "output_sha256"),
        (Stream.DR_EVENTS, _mutated(Stream.DR_EVENTS, region="DE"), "site_id"),
        (Stream.ASSIGNMENTS, _mutated(Stream.ASSIGNMENTS, plan_revision=-1), "plan_revision"),
        (Stream.ASSIGNMENTS, _mutated(Stream.ASSIGNMENTS, plan_revision=2**63), "plan_revision"),
        (Stream.ASSIGNMENTS, _mutated(Stream.ASSIGNMENTS, plan_revision=1.5), "plan_revision"),
        (Stream.TELEMETRY, b"not json", "json"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(
    stream: Stream, payload: bytes, field: str
) -> None:
    with pytest.raises(MessageError) as refused:
        decode(stream, payload)
    assert field in refused.value.reason.lower()


def test_empty_and_oversize_payloads_are_refused() -> None:
    with pytest.raises(MessageError, match="empty"):
        decode(Stream.JOBS, None)
    with pytest.raises(MessageError, match="exceeds"):
        decode(Stream.JOBS, b" " * (MAX_MESSAGE_BYTES + 1))


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(payload: bytes) -> None:
    for stream in EXAMPLES:
        try:
            decode(stream, payload)
        except MessageError as refused:
            assert refused.reason


def test_topic_names_carry_the_prefix() -> None:
    topics = Topics("acme")
    assert topics.name(Stream.TELEMETRY) == "acme.telemetry"
    assert topics.stream_of("acme.dead-letter") is Stream.DEAD_LETTER
    with pytest.raises(KeyError):
        topics.stream_of("other.telemetry")
    with pytest.raises(ValueError, match="prefix"):
        Topics("")


def test_the_topics_page_is_generated_from_the_models() -> None:
    page = Path(__file__).parents[2] / "docs" / "topics.md"
    assert page.read_text() == render_topic_docs(), (
        "run: python -m streams.catalog > docs/topics.md"
    )
