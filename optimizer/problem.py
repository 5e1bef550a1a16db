"""Planning scenario data (contract scenario-v2): plain frozen dataclasses, no Pyomo.

Time is a grid of N slots; slot ``s`` covers ``[start + s*Δ, start + (s+1)*Δ)``. Storage levels
live on the N+1 boundaries ``b = 0..N``; boundary ``b`` is the instant ``start + b*Δ``.
Every timestamp is timezone-aware UTC; a naive timestamp raises :class:`ValueError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property


def require_utc(when: datetime, name: str = "timestamp") -> datetime:
    """Return ``when`` converted to UTC; raise ``ValueError`` if it is naive."""
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(UTC)


@dataclass(frozen=True)
class Horizon:
    """The slot grid: ``slots`` slots of ``slot_minutes`` from ``start`` [UTC]."""

    start: datetime
    slot_minutes: int
    slots: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_utc(self.start, "horizon.start"))
        if self.slot_minutes <= 0 or self.slots <= 0:
            raise ValueError("horizon.slot_minutes and horizon.slots must be positive")

    @property
    def dt_h(self) -> float:
        """Slot length [h]."""
        return self.slot_minutes / 60.0

    @property
    def slot_delta(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    @property
    def end(self) -> datetime:
        """The last boundary, ``start + N*Δ`` [UTC]."""
        return self.boundary_time(self.slots)

    def slot_start(self, slot: int) -> datetime:
        """Start of slot ``slot`` (= boundary ``slot``) [UTC]."""
        return self.boundary_time(slot)

    def boundary_time(self, boundary: int) -> datetime:
        return self.start + boundary * self.slot_delta

    def _offset_slots(self, when: datetime) -> float:
        return (require_utc(when) - self.start) / self.slot_delta

    def boundary_at_or_after(self, when: datetime) -> int:
        """First boundary at or after ``when``, clipped to ``0..N`` (rounds up)."""
        return min(max(math.ceil(self._offset_slots(when) - 1e-9), 0), self.slots)

    def boundary_at_or_before(self, when: datetime) -> int:
        """Last boundary at or before ``when``, clipped to ``0..N`` (rounds down)."""
        return min(max(math.floor(self._offset_slots(when) + 1e-9), 0), self.slots)

    def slots_within(self, start: datetime | None, end: datetime | None) -> range:
        """Slots lying wholly inside ``[start, end)``, clipped to the horizon."""
        first = 0 if start is None else self.boundary_at_or_after(start)
        last = self.slots if end is None else self.boundary_at_or_before(end)
        return range(first, max(first, last))


@dataclass(frozen=True)
class Region:
    """A grid region: carbon intensity [g/kWh] and energy price [currency/kWh] per slot."""

    id: str
    intensity_g_per_kwh: tuple[float, ...]
    price_per_kwh: tuple[float, ...]

    @property
    def mean_intensity_g_per_kwh(self) -> float:
        return math.fsum(self.intensity_g_per_kwh) / len(self.intensity_g_per_kwh)

    @property
    def mean_price_per_kwh(self) -> float:
        return math.fsum(self.price_per_kwh) / len(self.price_per_kwh)


@dataclass(frozen=True)
class Site:
    """A depot: grid connection limit [kW] and on-site PV, mean AC output per slot [kW]."""

    id: str
    region: str
    grid_limit_kw: float
    pv_kw: tuple[float, ...]


@dataclass(frozen=True)
class Vehicle:
    """A parked electric car; energies [kWh], powers [kW], times UTC."""

    id: str
    site: str
    arrival: datetime
    departure: datetime
    battery_kwh: float
    soc_kwh: float
    compute_kw: float
    reserve_kwh: float = 0.0
    target_kwh: float | None = None
    charger_kw: float = 0.0
    charge_efficiency_frac: float = 0.92
    shards_per_slot: int = 1
    wear_cost_per_kwh: float = 0.0
    participating: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "arrival", require_utc(self.arrival, f"{self.id}.arrival"))
        object.__setattr__(self, "departure", require_utc(self.departure, f"{self.id}.departure"))

    @property
    def wished_kwh(self) -> float:
        """The owner's wish at departure; ``soc_kwh`` when no target was given [kWh]."""
        return self.soc_kwh if self.target_kwh is None else self.target_kwh

    @property
    def floor_kwh(self) -> float:
        """Rule 4 floor: ``min(reserve_kwh, soc_kwh)`` [kWh]."""
        return min(self.reserve_kwh, self.soc_kwh)


@dataclass(frozen=True)
class Job:
    """A batch of ``shards`` one-slot pieces of work, each run on ``replicas`` vehicles."""

    id: str
    shards: int
    value_per_shard: float
    replicas: int = 1
    release: datetime | None = None
    deadline: datetime | None = None
    sites: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.release is not None:
            object.__setattr__(self, "release", require_utc(self.release, f"{self.id}.release"))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", require_utc(self.deadline, f"{self.id}.deadline"))

    @property
    def executions_required(self) -> int:
        return self.shards * self.replicas

    def allows_site(self, site_id: str) -> bool:
        return self.sites is None or site_id in self.sites


@dataclass(frozen=True)
class DrEvent:
    """A demand-response cap on grid import [kW] during ``[start, end)``.

    Exactly one of ``site`` and ``region`` is set; a region cap bounds the sum of the imports
    of the region's sites.
    """

    id: str
    start: datetime
    end: datetime
    max_import_kw: float
    site: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_utc(self.start, f"{self.id}.start"))
        object.__setattr__(self, "end", require_utc(self.end, f"{self.id}.end"))
        if (self.site is None) == (self.region is None):
            raise ValueError(f"dr event {self.id}: exactly one of site and region must be set")


@dataclass(frozen=True)
class VehicleWindow:
    """A vehicle's usable slots ``first..last-1`` and boundaries ``first..last``."""

    first: int
    last: int

    @property
    def slots(self) -> range:
        return range(self.first, self.last)

    @property
    def boundaries(self) -> range:
        return range(self.first, self.last + 1) if self.last > self.first else range(0)

    def __len__(self) -> int:
        return self.last - self.first

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self.first <= slot < self.last


@dataclass(frozen=True)
class Scenario:
    """A complete planning problem (contract scenario-v2)."""

    horizon: Horizon
    carbon_price_per_tonne: float
    regions: tuple[Region, ...]
    sites: tuple[Site, ...]
    vehicles: tuple[Vehicle, ...]
    jobs: tuple[Job, ...] = ()
    dr_events: tuple[DrEvent, ...] = ()

    # -- look-ups ---------------------------------------------------------------------------
    @cached_property
    def region_by_id(self) -> dict[str, Region]:
        return {r.id: r for r in self.regions}

    @cached_property
    def site_by_id(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def vehicle_by_id(self) -> dict[str, Vehicle]:
        return {v.id: v for v in self.vehicles}

    @cached_property
    def job_by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}

    def region_of(self, vehicle: Vehicle) -> Region:
        return self.region_by_id[self.site_by_id[vehicle.site].region]

    def sites_in_region(self, region_id: str) -> tuple[Site, ...]:
        return tuple(s for s in self.sites if s.region == region_id)

    # -- derived time windows ---------------------------------------------------------------
    def window(self, vehicle: Vehicle) -> VehicleWindow:
        """Usable slots: arrival rounds up, departure down, clipped to the horizon."""
        slots = self.horizon.slots_within(vehicle.arrival, vehicle.departure)
        return VehicleWindow(slots.start, slots.stop)

    def departs_in_horizon(self, vehicle: Vehicle) -> bool:
        """Whether the vehicle leaves by the horizon end (and so owes its rule-5 target)."""
        return vehicle.departure <= self.horizon.end

    def required_departure_kwh(self, vehicle: Vehicle) -> float | None:
        """Rule 5 level at the last usable boundary [kWh], or None if none is owed.

        ``min(target_kwh, soc_kwh + eff * charger_kw * dt_h * usable_slots, battery_kwh)``.
        """
        if not self.departs_in_horizon(vehicle):
            return None
        reach = (
            vehicle.soc_kwh
            + vehicle.charge_efficiency_frac
            * vehicle.charger_kw
            * self.horizon.dt_h
            * len(self.window(vehicle))
        )
        return min(vehicle.wished_kwh, reach, vehicle.battery_kwh)

    def job_slots(self, job: Job) -> range:
        """Slots lying wholly inside ``[release, deadline)``, clipped to the horizon."""
        return self.horizon.slots_within(job.release, job.deadline)

    def can_compute(self, vehicle: Vehicle) -> bool:
        return vehicle.participating and vehicle.shards_per_slot > 0

    def eligible_jobs(self, vehicle: Vehicle) -> tuple[Job, ...]:
        """Jobs the vehicle may ever run: participation, residency and positive shards."""
        if not self.can_compute(vehicle):
            return ()
        return tuple(j for j in self.jobs if j.shards > 0 and j.allows_site(vehicle.site))

    def dr_slots(self, event: DrEvent) -> range:
        """Slots in which a DR cap is in force: every slot overlapping ``[start, end)``.

        Import is constant over a slot, so a cap that covers part of a slot binds all of it.
        """
        first = self.horizon.boundary_at_or_before(event.start)
        last = self.horizon.boundary_at_or_after(event.end)
        return range(first, max(first, last))

    def site_cap_kw(self, site: Site) -> list[float]:
        """Per-slot import cap [kW]: the grid limit and every site DR cap in force."""
        caps = [site.grid_limit_kw] * self.horizon.slots
        for event in self.dr_events:
            if event.site == site.id:
                for s in self.dr_slots(event):
                    caps[s] = min(caps[s], event.max_import_kw)
        return caps

    def region_caps(self) -> list[tuple[DrEvent, range]]:
        """Region DR events with the slots they cover."""
        return [(e, self.dr_slots(e)) for e in self.dr_events if e.region is not None]
