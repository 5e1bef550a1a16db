"""What the central system knows of each station and EVSE; it outlives a connection.

`StationRegistry` keeps one `StationState` per station id, created on the first connection and
kept across reconnects, so a station that drops and comes back resumes its sessions (its
transaction, its car's id token, its profiles in force and its compliance record).
EVSE ids are the 2.0.1 EVSE ids, or the 1.6 connector ids (1..n); 0 is the whole station.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from idlefleet.ocpp.compliance import Compliance, ComplianceRule
from idlefleet.ocpp.meters import MeterSample
from idlefleet.ocpp.passwords import Password
from idlefleet.ocpp.profiles import EvseLimits, Schedule, SlotPower


class EvseRef(NamedTuple):
    """One EVSE (2.0.1) or connector (1.6) of a station."""

    station_id: str
    evse_id: int


@dataclass(frozen=True)
class StationConfig:
    """What the operator declares about a station.

    `password` is its HTTP Basic password or a hash of it (security profile 1/2; the user
    name is the station id). `evse` are the limits of each EVSE unless `evses` names one;
    `station` the limits of the whole station, for DR caps (default: `evse`). `site_id` is
    the site the station stands at (its measurements are that site's; None: not said).
    """

    password: Password
    evse: EvseLimits
    evses: Mapping[int, EvseLimits] = field(default_factory=dict)
    station: EvseLimits | None = None
    site_id: str | None = None

    def limits(self, evse_id: int) -> EvseLimits:
        """The limits of one EVSE (0: the whole station)."""
        if evse_id == 0:
            return self.station or self.evse
        return self.evses.get(evse_id, self.evse)


@dataclass
class EvseState:
    """One EVSE: its session, newest sample, the profile it was sent and its compliance.

    `planned` are the car's planned slots, kept so that a session starting later, or a station
    reconnecting before it acknowledged the profile, gets them; `tx_schedule` is the TxProfile
    sent for the running transaction and `tx_acknowledged` whether the station accepted it.
    `session_start_wh` [Wh] is the energy register when the session began (1.6 meterStart,
    else the session's first reading of the register): what the session has metered is the
    register now minus it.
    """

    evse_id: int
    limits: EvseLimits
    compliance: Compliance
    status: str | None = None
    transaction_id: str | None = None
    id_token: str | None = None
    last_sample: MeterSample | None = None
    planned: tuple[SlotPower, ...] = ()
    tx_schedule: Schedule | None = None
    tx_acknowledged: bool = False
    session_start_wh: float | None = None

    def end_transaction(self) -> None:
        """The session ended: forget it, its profile and its plan (the next session may be
        another car's)."""
        self.transaction_id = None
        self.id_token = None
        self.tx_schedule = None
        self.tx_acknowledged = False
        self.session_start_wh = None
        self.planned = ()


@dataclass
class StationState:
    """One station: whether it is connected, with which protocol, its EVSEs and its cap."""

    station_id: str
    config: StationConfig
    compliance: Compliance
    protocol: str | None = None
    connected: bool = False
    booted: bool = False
    connections: int = 0
    evses: dict[int, EvseState] = field(default_factory=dict)
    default_acknowledged: bool = False
    cap_schedule: Schedule | None = None
    cap_acknowledged: bool = False

    def evse(self, evse_id: int) -> EvseState:
        """The EVSE's state, created on first mention."""
        state = self.evses.get(evse_id)
        if state is None:
            state = EvseState(
                evse_id, self.config.limits(evse_id), Compliance(self.compliance.rule)
            )
            self.evses[evse_id] = state
        return state

    def by_transaction(self, transaction_id: str) -> EvseState | None:
        """The EVSE running a transaction, if any."""
        return next((e for e in self.evses.values() if e.transaction_id == transaction_id), None)

    def controllable(self, evse_id: int) -> bool:
        """Whether the EVSE follows its profiles (and the station accepted its own)."""
        evse = self.evses.get(evse_id)
        own = evse.compliance.controllable if evse is not None else True
        return self.compliance.controllable and own

    def limit_kw_at(self, evse_id: int, moment: datetime) -> float:
        """The most the EVSE may draw at `moment` [kW]: its maximum, TxProfile and the cap."""
        evse = self.evse(evse_id)
        limits_kw = [evse.limits.max_power_kw]
        if evse.tx_schedule is not None and evse.tx_acknowledged:
            tx_kw = evse.tx_schedule.limit_kw_at(moment, evse.limits)
            if tx_kw is not None:
                limits_kw.append(tx_kw)
        if self.cap_schedule is not None and self.cap_acknowledged:
            cap_kw = self.cap_schedule.limit_kw_at(moment, self.config.limits(0))
            if cap_kw is not None:
                limits_kw.append(cap_kw)
        return min(limits_kw)


class StationRegistry:
    """Every configured station's state, by station id; unknown stations are refused."""

    def __init__(self, configs: Mapping[str, StationConfig], rule: ComplianceRule) -> None:
        self._configs = dict(configs)
        self._rule = rule
        self._states: dict[str, StationState] = {}

    def config(self, station_id: str) -> StationConfig | None:
        """The station's configuration; None for a station the operator did not declare."""
        return self._configs.get(station_id)

    def state(self, station_id: str) -> StationState:
        """The station's state, created on its first connection and kept after it."""
        state = self._states.get(station_id)
        if state is None:
            config = self._configs.get(station_id)
            if config is None:
                raise KeyError(f"unknown station {station_id!r}")
            state = StationState(station_id, config, Compliance(self._rule))
            self._states[station_id] = state
        return state

    def known(self) -> Sequence[StationState]:
        """Every station that has connected at least once."""
        return list(self._states.values())
