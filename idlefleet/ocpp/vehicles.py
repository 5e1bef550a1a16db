"""Which car is on an EVSE: the fleet registry's `evse` and `id_tokens`, newest entry per car.

A session's id token (2.0.1 idToken, 1.6 idTag, or the EVCCID a station sends as the token)
names a car when exactly one active entry lists it; otherwise the EVSE names the car whose
entry has it as `evse` (`<station id>/<evse id>`). A token the registry does not know does
not stop the EVSE's car (RFID cards, app sessions). Tokens are compared ignoring case, as
OCPP 1.6 does. Retired cars map to nothing. Thread-safe: the registry's reader applies entries
while the adapter looks cars up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from streams.messages import VehicleRecord


class UnmappedError(LookupError):
    """No single car is on the EVSE; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _names(vehicle_ids: Iterable[str]) -> str:
    return ", ".join(sorted(vehicle_ids))


class VehicleMap:
    """The fleet registry's newest entries, indexed by EVSE and by id token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, VehicleRecord] = {}
        self._by_evse: dict[str, set[str]] = {}
        self._by_token: dict[str, set[str]] = {}

    def apply(self, record: VehicleRecord) -> bool:
        """Take a car's entry if it is newer than the one known; True when it was."""
        with self._lock:
            known = self._records.get(record.vehicle_id)
            if known is not None and record.updated_at <= known.updated_at:
                return False
            if known is not None:
                self._index(known, remove=True)
            self._records[record.vehicle_id] = record
            if not record.retired:
                self._index(record, remove=False)
            return True

    def _index(self, record: VehicleRecord, *, remove: bool) -> None:
        keys = [(self._by_token, token.casefold()) for token in record.id_tokens]
        if record.evse is not None:
            keys.append((self._by_evse, record.evse))
        for index, key in keys:
            holders = index.setdefault(key, set())
            if remove:
                holders.discard(record.vehicle_id)
                if not holders:
                    del index[key]
            else:
                holders.add(record.vehicle_id)

    def vehicle_for(self, station_id: str, evse_id: int, id_token: str | None) -> str:
        """The car on the EVSE; UnmappedError with the reason when no single car is."""
        evse = f"{station_id}/{evse_id}"
        with self._lock:
            by_token = set(self._by_token.get(id_token.casefold(), ())) if id_token else set()
            by_evse = set(self._by_evse.get(evse, ()))
        if len(by_token) == 1:
            return next(iter(by_token))
        if len(by_token) > 1:
            raise UnmappedError(
                f"idToken {id_token!r} is in the fleet registry entries of {_names(by_token)}"
            )
        if len(by_evse) == 1:
            return next(iter(by_evse))
        if by_evse:
            raise UnmappedError(
                f"EVSE {evse} is the registered EVSE of {_names(by_evse)}, and no idToken of "
                "the session tells them apart"
            )
        token = f" nor idToken {id_token!r} (id_tokens)" if id_token else " (and no idToken)"
        raise UnmappedError(f"no car in the fleet registry has EVSE {evse} (evse){token}")
