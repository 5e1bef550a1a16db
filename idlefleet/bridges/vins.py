"""Which car a VIN is: the fleet registry's VIN -> vehicle_id, kept current as entries arrive.

Makers' streams key their records by VIN; idlefleet knows cars by `vehicle_id`. The fleet
registry (`VehicleRecord`, topic `fleet-registry`) holds both. Each car's newest entry (by
`updated_at`) counts; a retired car, or an entry without a VIN, maps no VIN. A VIN that two
active entries claim maps to neither until the registry is put right: a car's measurements
must never be booked to another car.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from idlefleet.bridges.measured import DeadLetter
from streams.messages import VehicleRecord


class VinDirectory:
    """VIN -> vehicle_id from registry entries; thread-safe (a registry reader applies entries
    while a bridge looks VINs up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, VehicleRecord] = {}  # each car's newest entry
        self._by_vin: dict[str, set[str]] = {}  # VIN -> active cars claiming it

    @classmethod
    def of(cls, records: Iterable[VehicleRecord]) -> VinDirectory:
        directory = cls()
        for record in records:
            directory.apply(record)
        return directory

    def apply(self, record: VehicleRecord) -> bool:
        """Take `record` if it is the car's newest entry; True when it was."""
        with self._lock:
            current = self._entries.get(record.vehicle_id)
            if current is not None and record.updated_at <= current.updated_at:
                return False
            if current is not None and current.vin is not None:
                claimants = self._by_vin.get(current.vin, set())
                claimants.discard(current.vehicle_id)
                if not claimants:
                    self._by_vin.pop(current.vin, None)
            self._entries[record.vehicle_id] = record
            if record.vin is not None and not record.retired:
                self._by_vin.setdefault(record.vin, set()).add(record.vehicle_id)
            return True

    def __len__(self) -> int:
        """VINs that map to a car now [count]."""
        with self._lock:
            return sum(1 for claimants in self._by_vin.values() if len(claimants) == 1)

    def vehicle_of(self, vin: str) -> str | DeadLetter:
        """The car `vin` is; a dead letter when no active entry, or more than one, has it."""
        with self._lock:
            claimants = sorted(self._by_vin.get(vin, ()))
        if not claimants:
            return DeadLetter(f"unknown VIN {masked_vin(vin)}")
        if len(claimants) > 1:
            return DeadLetter(
                f"VIN {masked_vin(vin)} is registered to {len(claimants)} cars: "
                + ", ".join(claimants)
            )
        return claimants[0]


def masked_vin(vin: str) -> str:
    """A VIN as reasons and logs show it: maker code and last four characters."""
    return f"{vin[:3]}…{vin[-4:]}" if len(vin) > 7 else "…" * bool(vin)
