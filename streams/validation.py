"""Rules a record must meet beyond its schema that the record and the configuration decide.

The schema (streams.messages) refuses wrong types, missing fields, negative energies and
energies above the battery. These rules add what needs the record's Kafka key or the
configured sites: the key must be the field the topic is keyed by, and every site a record
names must be a known site. With a clock, a record may not be dated beyond the reader's now
plus a skew: state keeps the newest record by its date, so one forged or clock-jumped record
dated in the future would otherwise pin a car, a region's signal or a site's forecast for as
long as the date lies ahead. A record that breaks a rule is dead-lettered with the reason.

What depends on records read before (stale telemetry, a duplicate result, a result for work
nobody leased) is not a rule here: such records are valid, and state absorbs them
idempotently. Keeping the rules a function of the record alone makes every worker of a
consumer group judge a record the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from streams.errors import MessageError
from streams.messages import (
    DemandResponseEvent,
    Enrollment,
    GridSignal,
    Heartbeat,
    Job,
    JobCancellation,
    MeasuredState,
    Message,
    OwnerPreferences,
    Result,
    SolarForecast,
    Telemetry,
    VehicleRecord,
)
from streams.signing import Authenticator
from streams.topics import STREAM_SPECS, Stream

Check = Callable[[Message, bytes | None, Enrollment | None], None]


#: A record's own date, by message type: what state orders records of that type by.
DATED_BY: dict[type[Message], str] = {
    Telemetry: "event_time",
    MeasuredState: "event_time",
    OwnerPreferences: "updated_at",
    VehicleRecord: "updated_at",
    SolarForecast: "issued_at",
    GridSignal: "issued_at",
    Job: "submitted_at",
    JobCancellation: "cancelled_at",
    Result: "finished_at",
    Heartbeat: "sent_at",
}


class RecordRules:
    """Checks keys always, site ids when `site_ids` is given, and dates when `clock` is: a
    record dated more than `max_skew` after `clock()` is refused. With an `authenticator`,
    a record must prove its writer (streams.signing) and name it where its stream says."""

    def __init__(
        self,
        site_ids: Collection[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_skew: timedelta = timedelta(minutes=5),
        authenticator: Authenticator | None = None,
    ) -> None:
        self._site_ids = None if site_ids is None else frozenset(site_ids)
        self._clock = clock
        self._max_skew = max_skew
        self.authenticator = authenticator

    def authenticate(
        self,
        stream: Stream,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> Enrollment | None:
        """The record's proven writer (None without an authenticator, or for the authority);
        MessageError when the record does not prove one."""
        if self.authenticator is None:
            return None
        return self.authenticator.verify(stream, key, value, headers)

    def checker(self, stream: Stream) -> Check:
        """The check of one record of `stream`: raises MessageError naming the broken rule."""
        spec = STREAM_SPECS[stream]
        key_field = spec.key_field
        known_sites = self._site_ids or frozenset()
        sites_named = None if self._site_ids is None else _SITES_NAMED.get(spec.message_type)
        dated_by = (
            DATED_BY.get(spec.message_type)
            if self._clock is not None and spec.message_type is not None
            else None
        )
        clock, max_skew, authenticator = self._clock, self._max_skew, self.authenticator

        def check(message: Message, key: bytes | None, writer: Enrollment | None) -> None:
            if authenticator is not None:
                authenticator.check_writer(stream, message, writer)
            if key_field is not None:
                expected: str = getattr(message, key_field)
                if key is None or key != expected.encode():
                    shown = "none" if key is None else repr(key.decode(errors="replace"))
                    raise MessageError(f"key {shown} does not match {key_field} {expected!r}")
            if sites_named is not None:
                for name, site_id in sites_named(message):
                    if site_id not in known_sites:
                        raise MessageError(f"{name}: unknown site {site_id!r}")
            if dated_by is not None and clock is not None:
                dated: datetime = getattr(message, dated_by)
                now = clock()
                if dated > now + max_skew:
                    raise MessageError(
                        f"{dated_by}: {dated.isoformat()} lies more than "
                        f"{max_skew.total_seconds():g} s after this reader's clock "
                        f"({now.isoformat()})"
                    )

        return check


def _site_id(message: Any) -> list[tuple[str, str]]:
    return [] if message.site_id is None else [("site_id", message.site_id)]


def _rule_sites(message: Any) -> list[tuple[str, str]]:
    sites = message.rules.only_at_sites or ()
    return [(f"rules.only_at_sites[{index}]", site) for index, site in enumerate(sites)]


def _home_site(message: Any) -> list[tuple[str, str]]:
    return [] if message.home_site_id is None else [("home_site_id", message.home_site_id)]


def _job_sites(message: Any) -> list[tuple[str, str]]:
    return [(f"sites[{index}]", site) for index, site in enumerate(message.sites or ())]


#: (field, site id) of every site a message of each type names.
_SITES_NAMED: dict[type[Message] | None, Callable[[Any], list[tuple[str, str]]]] = {
    Telemetry: _site_id,
    MeasuredState: _site_id,
    OwnerPreferences: _rule_sites,
    VehicleRecord: _home_site,
    SolarForecast: _site_id,
    DemandResponseEvent: _site_id,
    Job: _job_sites,
}
