"""Rules beyond the schema: the key is the keyed field, and named sites are known."""

from __future__ import annotations

import re

import pytest

from streams.catalog import EXAMPLES
from streams.errors import MessageError
from streams.messages import Message
from streams.serde import key_of
from streams.topics import Stream
from streams.validation import RecordRules
from tests.streams.factories import telemetry

RULES = RecordRules({"berlin-depot"})


def test_records_keyed_as_their_topic_says_at_known_sites_pass() -> None:
    for stream, message in EXAMPLES.items():
        RULES.checker(stream)(message, key_of(stream, message))
    RULES.checker(Stream.TELEMETRY)(telemetry(site_id=None, plugged_in=False), b"car-001")


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
        RULES.checker(stream)(message, key)


def test_without_sites_only_keys_are_checked() -> None:
    RecordRules().checker(Stream.TELEMETRY)(telemetry(site_id="anywhere"), b"car-001")
