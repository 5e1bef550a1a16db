"""What a bridge makes of one maker's record: a measured-state update, or a dead letter.

`MeasuredState` is a stand-in until the measured-state stream message exists. Makers'
streams send only the signals that changed, so every measured quantity is optional: None
means "not in this record", never "zero"; whoever keeps a car's state merges updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class MeasuredState:
    """What one record says about a car; None: the record does not say.

    `site_id` is the site the car's `location_deg` falls in; with a location and no site the
    car is away, with neither it is not known from this record (see `away`).
    """

    vehicle_id: str
    event_time: datetime  # when the car measured this state [UTC]
    soc_frac: float | None = None  # state of charge [0-1]
    energy_kwh: float | None = None  # energy in the battery [kWh]
    plugged_in: bool | None = None  # connected to a charger
    charging: bool | None = None  # drawing power to charge now
    charge_limit_frac: float | None = None  # owner's charge limit [0-1]
    power_kw: float | None = None  # charging power into the car [kW]
    site_id: str | None = None  # site whose geofence holds the location
    location_deg: tuple[float, float] | None = None  # (latitude, longitude) [deg]

    def __post_init__(self) -> None:
        if self.event_time.utcoffset() != timedelta(0):
            raise ValueError(f"event_time must be UTC, not {self.event_time!r}")

    @property
    def away(self) -> bool | None:
        """True outside every site, False at a site, None when the record has no location."""
        if self.location_deg is None:
            return None
        return self.site_id is None


@dataclass(frozen=True)
class Measured:
    """A record that maps to measured state."""

    state: MeasuredState


@dataclass(frozen=True)
class DeadLetter:
    """A record for the dead-letter topic; `reason` is one line, naming what is wrong."""

    reason: str


BridgeResult = Measured | DeadLetter
