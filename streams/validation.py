"""Rules a record must meet beyond its schema that the record and the configuration decide.

The schema (streams.messages) refuses wrong types, missing fields, negative energies and
energies above the battery. These rules add what needs the record's Kafka key or the
configured sites: the key must be the field the topic is keyed by, and every site a record
names must be a known site. A record that breaks a rule is dead-lettered with the reason.

What depends on records read before (stale telemetry, a duplicate result, a result for work
nobody leased) is not a rule here: such records are valid, and state absorbs them
idempotently. Keeping the rules a function of the record alone makes every worker of a
consumer group judge a record the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from streams.errors import MessageError
from streams.messages import DemandResponseEvent, Job, Message, SolarForecast, Telemetry
from streams.topics import STREAM_SPECS, Stream

Check = Callable[[Message, bytes | None], None]


class RecordRules:
    """Checks keys always, and site ids when `site_ids` is given."""

    def __init__(self, site_ids: Collection[str] | None = None) -> None:
        self._site_ids = None if site_ids is None else frozenset(site_ids)

    def checker(self, stream: Stream) -> Check:
        """The check of one record of `stream`: raises MessageError naming the broken rule."""
        spec = STREAM_SPECS[stream]
        key_field = spec.key_field
        known_sites = self._site_ids or frozenset()
        sites_named = None if self._site_ids is None else _SITES_NAMED.get(spec.message_type)

        def check(message: Message, key: bytes | None) -> None:
            if key_field is not None:
                expected: str = getattr(message, key_field)
                if key is None or key != expected.encode():
                    shown = "none" if key is None else repr(key.decode(errors="replace"))
                    raise MessageError(f"key {shown} does not match {key_field} {expected!r}")
            if sites_named is not None:
                for name, site_id in sites_named(message):
                    if site_id not in known_sites:
                        raise MessageError(f"{name}: unknown site {site_id!r}")

        return check


def _site_id(message: Any) -> list[tuple[str, str]]:
    return [] if message.site_id is None else [("site_id", message.site_id)]


def _job_sites(message: Any) -> list[tuple[str, str]]:
    return [(f"sites[{index}]", site) for index, site in enumerate(message.sites or ())]


#: (field, site id) of every site a message of each type names.
_SITES_NAMED: dict[type[Message] | None, Callable[[Any], list[tuple[str, str]]]] = {
    Telemetry: _site_id,
    SolarForecast: _site_id,
    DemandResponseEvent: _site_id,
    Job: _job_sites,
}
