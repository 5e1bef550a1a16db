"""Fuzzing the message decoders: whatever a topic carries, `decode` returns a valid message or
raises `MessageError` with a reason, never anything else; on a real topic every record is
either handled or dead-lettered with its reason, and none is lost.

Inputs are random JSON (with NaN and ±Infinity as JSON tokens), random documents built from
each message's field names, and mutations of the catalog examples: a field set to a huge
string, a non-finite or negative number, a naive or out-of-range timestamp, a wrong type or
deeply nested JSON, a field dropped, an unknown field added.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from pydantic import BaseModel

from streams.broker import EmbeddedBroker
from streams.catalog import EXAMPLES
from streams.clients import KafkaSettings, ensure_topics
from streams.consumer import StreamReader
from streams.errors import MessageError
from streams.messages import Message
from streams.producer import MAX_REASON_CHARS, Publisher
from streams.serde import MAX_MESSAGE_BYTES, decode, encode, key_of
from streams.topics import STREAM_SPECS, Stream
from streams.validation import RecordRules
from tests.streams.test_reader import read_dead_letters

TYPED = [stream for stream, spec in STREAM_SPECS.items() if spec.message_type is not None]
FUZZ = settings(max_examples=200, deadline=None)


# --- the property -----------------------------------------------------------------------------


def _assert_valid(value: Any, where: str) -> None:
    """What the README promises of every decoded message: UTC timestamps, finite numbers."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _assert_valid(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _assert_valid(item, f"{where}[{index}]")
    elif isinstance(value, datetime):
        assert value.utcoffset() == timedelta(0), f"{where} is not UTC: {value!r}"
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where} is not finite: {value!r}"


def decoded_or_refused(stream: Stream, payload: bytes | None) -> Message | MessageError:
    """`decode`'s outcome, checked: a valid message of the stream's type, or a MessageError
    with a reason. Any other exception propagates and fails the test."""
    try:
        message = decode(stream, payload)
    except MessageError as refused:
        assert isinstance(refused.reason, str) and refused.reason.strip(), repr(refused)
        assert str(refused) == refused.reason
        return refused
    assert type(message) is STREAM_SPECS[stream].message_type
    _assert_valid(message, type(message).__name__)
    assert decode(stream, encode(message)) == message, "a decoded message must round-trip"
    return message


# --- JSON with the tokens json.dumps writes for non-finite floats -----------------------------


@dataclass(frozen=True)
class RawJson:
    """JSON text spliced into a document as is (deep nesting that json.dumps cannot write)."""

    text: str


def dumps(document: Any) -> bytes:
    """`document` as JSON: NaN and Infinity as bare tokens, RawJson spliced in verbatim."""
    raws: list[str] = []

    def default(value: object) -> str:
        if isinstance(value, RawJson):
            raws.append(value.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(type(value).__name__)

    text = json.dumps(document, allow_nan=True, default=default)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{index}\x00"), raw, 1)
    return text.encode("utf-8", errors="surrogatepass")


def deeply_nested(depth: int, opener: str) -> RawJson:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return RawJson(opener * depth + "1" + closer * depth)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN, ±Infinity and -0.0 included
    st.text(max_size=30),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

huge_strings = st.builds(
    lambda char, count: char * count,
    st.sampled_from(["x", "é", "\x00", "9", "/", "\U0001f600"]),
    st.sampled_from([101, 201, 2_001, 100_001, MAX_MESSAGE_BYTES // 4 + 1]),
)
bad_numbers = st.sampled_from(
    [math.nan, math.inf, -math.inf, -1.0, -1e-300, -0.0, 1e308, -(10**30), 10**400, 2**63, True]
)
bad_timestamps = st.sampled_from(
    [
        "2020-06-01T12:00:00",  # no zone
        "2020-06-01 12:00:00",
        "2020-06-01",
        "12:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "2020-06-01T12:00:00+25:00",
        "2020-13-01T00:00:00Z",
        "2020-02-30T00:00:00Z",
        "2020-06-01T24:00:00Z",
        "2020-06-01T12:00:00.1234567891234Z",
        "",
        "now",
        "1591012800",
    ]
)
wrong_types = st.sampled_from([None, [], {}, [1, 2], {"a": 1}, "12.5", 12, False])
nested = st.builds(
    deeply_nested, st.sampled_from([50, 300, 5_000, 50_000]), st.sampled_from(["[", '{"a":'])
)
nasty_values = st.one_of(
    huge_strings, bad_numbers, bad_timestamps, wrong_types, nested, json_values, st.floats()
)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside a JSON document."""
    out: list[tuple[str | int, ...]] = []
    children: list[tuple[str | int, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    for key, child in children:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _example_document(stream: Stream) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(encode(EXAMPLES[stream]))
    return document


@st.composite
def mutated_examples(draw: st.DrawFn, stream: Stream) -> bytes:
    """The stream's catalog example with one to three fields broken."""
    document: Any = _example_document(stream)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        action = draw(st.sampled_from(["set", "set", "set", "drop", "add", "replace"]))
        if action == "replace" or not paths:
            document = copy.deepcopy(draw(nasty_values))  # drawn constants stay intact
            continue
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        if action == "set":
            parent[path[-1]] = copy.deepcopy(draw(nasty_values))
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=20))] = copy.deepcopy(draw(nasty_values))
    return dumps(document)


@st.composite
def documents_with_field_names(draw: st.DrawFn, stream: Stream) -> bytes:
    """A JSON object made of the message's own field names with random values."""
    model = STREAM_SPECS[stream].message_type
    assert model is not None
    values = st.one_of(json_values, nasty_values)
    optional = dict.fromkeys(model.model_fields, values)
    return dumps(draw(st.fixed_dictionaries({}, optional=optional)))


def payloads(stream: Stream) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        mutated_examples(stream),
        documents_with_field_names(stream),
        json_values.map(dumps),
        st.binary(max_size=200),
        st.just(encode(EXAMPLES[stream])),
        st.none(),
    )


def stream_payloads() -> st.SearchStrategy[tuple[Stream, bytes | None]]:
    return st.sampled_from(TYPED).flatmap(lambda s: st.tuples(st.just(s), payloads(s)))


# --- decode on its own ------------------------------------------------------------------------


def _with(stream: Stream, **changes: object) -> bytes:
    document = _example_document(stream)
    document.update(changes)
    return dumps(document)


@FUZZ
@given(stream_payloads())
@example((Stream.TELEMETRY, _with(Stream.TELEMETRY, event_time="0001-01-01T00:00:00+01:00")))
@example((Stream.JOBS, _with(Stream.JOBS, deadline="9999-12-31T23:59:59-01:00")))
@example((Stream.ASSIGNMENTS, _with(Stream.ASSIGNMENTS, slot_end="9999-12-31T23:59:59-02:00")))
@example((Stream.TELEMETRY, _with(Stream.TELEMETRY, energy_kwh=RawJson("NaN"))))
@example((Stream.RESULTS, _with(Stream.RESULTS, runtime_s=RawJson("-Infinity"))))
@example((Stream.JOBS, _with(Stream.JOBS, input_uris=deeply_nested(100_000, "["))))
def test_decode_returns_a_valid_message_or_a_message_error(
    case: tuple[Stream, bytes | None],
) -> None:
    outcome = decoded_or_refused(*case)
    event("refused" if isinstance(outcome, MessageError) else "decoded")


@pytest.mark.parametrize(
    ("stream", "field", "value"),
    [
        (Stream.TELEMETRY, "event_time", "0001-01-01T00:00:00+01:00"),
        (Stream.TELEMETRY, "expected_departure", "9999-12-31T23:59:59-01:00"),
        (Stream.HEARTBEATS, "sent_at", "0001-01-01T00:30:00+00:31"),
        (Stream.DR_EVENTS, "end", "9999-12-31T23:00:00-01:00"),
    ],
)
def test_a_timestamp_outside_the_utc_calendar_is_refused_naming_the_field(
    stream: Stream, field: str, value: str
) -> None:
    """Found by the fuzzer: the UTC conversion overflowed and raised OverflowError."""
    refused = decoded_or_refused(stream, _with(stream, **{field: value}))
    assert isinstance(refused, MessageError)
    assert field in refused.reason and "outside the years 1 to 9999" in refused.reason


@pytest.mark.parametrize("stream", TYPED)
def test_negative_energies_and_non_finite_tokens_are_refused(stream: Stream) -> None:
    """Every number of every example (all are quantities >= 0) set to NaN, ±Infinity, -1."""
    document = _example_document(stream)
    numeric = [p for p in _paths(document) if isinstance(_at(document, p), float)]
    assert numeric or stream in (Stream.HEARTBEATS, Stream.JOB_CANCELLATIONS, Stream.IDENTITIES)
    for path in numeric:
        for token in ("NaN", "Infinity", "-Infinity", "-1.0"):
            broken = json.loads(json.dumps(document))
            _at(broken, path[:-1])[path[-1]] = RawJson(token)
            refused = decoded_or_refused(stream, dumps(broken))
            assert isinstance(refused, MessageError), (path, token)
            assert ".".join(map(str, path)) in refused.reason


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


# --- the consumer path on a real topic --------------------------------------------------------

RULES = RecordRules()


def _expected(stream: Stream, key: bytes | None, value: bytes | None) -> Message | str:
    """What the reader must do with a record: hand this message on, or park it for a reason."""
    try:
        message = decode(stream, value)
        RULES.checker(stream)(message, key, None)
    except MessageError as refused:
        return refused.reason[:MAX_REASON_CHARS]
    return message


small_huge_strings = st.builds(lambda n: "x" * n, st.sampled_from([201, 2_001, 20_001]))


@st.composite
def records(draw: st.DrawFn) -> tuple[Stream, bytes | None, bytes | None]:
    """A record on a typed topic: its example, a mutation, JSON or bytes; keyed right or not."""
    stream = draw(st.sampled_from(TYPED))
    example_value = encode(EXAMPLES[stream])
    right_key = key_of(stream, EXAMPLES[stream])
    value = draw(
        st.one_of(
            st.just(example_value),
            mutated_examples(stream).filter(lambda v: len(v) < 200_000),
            documents_with_field_names(stream).filter(lambda v: len(v) < 200_000),
            st.binary(max_size=100),
            st.none(),
        )
    )
    keys = st.one_of(st.just(right_key), st.binary(min_size=1, max_size=20))
    key = draw(keys if value is None else st.one_of(keys, st.none()))  # Kafka needs one of them
    return stream, key, value


@settings(max_examples=3, deadline=None)
@given(st.lists(records(), min_size=5, max_size=40))
def test_every_record_is_handled_or_dead_lettered_with_its_reason(
    broker: EmbeddedBroker, batch: list[tuple[Stream, bytes | None, bytes | None]]
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"fz{uuid.uuid4().hex[:12]}"
    )
    ensure_topics(kafka)
    handled_expected: Counter[tuple[Stream, bytes]] = Counter()
    parked_expected: dict[tuple[str, int, int], str] = {}
    raw = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, max_request_size=4_000_000)
    try:
        for stream, key, value in batch:
            topic = kafka.topics.name(stream)
            metadata = raw.send(topic, key=key, value=value).get(timeout=10)
            outcome = _expected(stream, key, value)
            if isinstance(outcome, str):
                parked_expected[(topic, metadata.partition, metadata.offset)] = outcome
            else:
                handled_expected[(stream, encode(outcome))] += 1
    finally:
        raw.close()

    handled: Counter[tuple[Stream, bytes]] = Counter()
    publisher = Publisher(kafka)
    reader = StreamReader(
        kafka,
        "fuzz",
        TYPED,
        lambda stream, message: handled.update([(stream, encode(message))]),
        publisher,
        rules=RULES,
    ).start()
    try:
        assert reader.wait_caught_up(timeout_s=30)
    finally:
        reader.stop()
        publisher.close()
    assert reader.failure is None
    assert handled == handled_expected
    assert reader.records_processed == len(batch)
    assert reader.records_dead_lettered == len(parked_expected)
    letters = read_dead_letters(kafka, len(parked_expected)) if parked_expected else []
    parked = {
        (
            (letter["source_topic"] or b"").decode(),
            int(letter["source_partition"] or b"-1"),
            int(letter["source_offset"] or b"-1"),
        ): (letter["reason"] or b"").decode()
        for letter in letters
    }
    assert parked == parked_expected
    assert all(reason.strip() for reason in parked.values())
