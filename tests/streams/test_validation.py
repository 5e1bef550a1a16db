"""Rules beyond the schema: the key is the keyed field, named sites are known, and nothing is
dated beyond the reader's clock plus a skew."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from streams.catalog import EXAMPLES
from streams.errors import MessageError
from streams.messages import Message
from streams.serde import key_of
from streams.topics import Stream
from streams.validation import DATED_BY, RecordRules
from tests.streams.factories import telemetry

RULES = RecordRules({"berlin-depot"})


def test_records_keyed_as_their_topic_says_at_known_sites_pass() -> None:
    for stream, message in EXAMPLES.items():
        RULES.checker(stream)(message, key_of(stream, message), None)
    RULES.checker(Stream.TELEMETRY)(telemetry(site_id=None, plugged_in=False), b"car-001", None)


@pytest.mark.parametrize(
    ("stream", "message", "key", "reason"),
    [
        (Stream.TELEMETRY, EXAMPLES[Stream.TELEMETRY], b"car-002", "key 'car-002' does not match"),
        (Stream.TELEMETRY, EXAMPLES[Stream.TELEMETRY], None, "key none does not match"),
        (Stream.TELEMETRY, telemetry(site_id="paris"), b"car-001", "site_id: unknown site"),
        (
            Stream.SOLAR_FORECASTS,
            EXAMPLES[Stream.SOLAR_FORECASTS].model_copy(update={"site_id": "x"}),
            b"x",
            "site_id: unknown site 'x'",
        ),
        (
            Stream.JOBS,
            EXAMPLES[Stream.JOBS].model_copy(update={"sites": ["berlin-depot", "rome"]}),
            b"embed-1",
            "sites[1]: unknown site 'rome'",
        ),
        (
            Stream.DR_EVENTS,
            EXAMPLES[Stream.DR_EVENTS].model_copy(update={"site_id": "oslo"}),
            b"evt-1",
            "site_id: unknown site 'oslo'",
        ),
    ],
)
def test_a_broken_rule_is_named(
    stream: Stream, message: Message, key: bytes | None, reason: str
) -> None:
    with pytest.raises(MessageError, match=re.escape(reason)):
        RULES.checker(stream)(message, key, None)


def test_without_sites_only_keys_are_checked() -> None:
    RecordRules().checker(Stream.TELEMETRY)(telemetry(site_id="anywhere"), b"car-001", None)


# --- dates: nothing dated in the future can pin state ------------------------------------------


@pytest.mark.parametrize(
    "stream", [Stream.TELEMETRY, Stream.GRID_SIGNALS, Stream.SOLAR_FORECASTS, Stream.JOBS]
)
def test_a_record_dated_beyond_the_clock_plus_the_skew_is_refused(stream: Stream) -> None:
    example = EXAMPLES[stream]
    field = DATED_BY[type(example)]
    now: datetime = getattr(example, field)
    rules = RecordRules({"berlin-depot"}, clock=lambda: now, max_skew=timedelta(minutes=5))
    check = rules.checker(stream)
    check(example, key_of(stream, example), None)  # dated now
    within = example.model_copy(update={field: now + timedelta(minutes=5)})
    check(within, key_of(stream, within), None)
    forged = example.model_copy(update={field: datetime(2099, 1, 1, tzinfo=UTC)})
    with pytest.raises(MessageError, match=f"{field}: 2099-01-01T00:00:00\\+00:00 lies more"):
        check(forged, key_of(stream, forged), None)


def test_without_a_clock_dates_are_not_judged() -> None:
    forged = telemetry(event_time=datetime(2099, 1, 1, tzinfo=UTC))
    RecordRules().checker(Stream.TELEMETRY)(forged, b"car-001", None)
