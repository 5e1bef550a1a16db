"""An EVSE report as the `MeasuredState` of the car on it, or the reason it cannot be one.

The record says what the station measured and nothing else (None: "not said"): the site the
station stands at, whether a car is plugged in, the car's state of charge when the car sends
it (ISO 15118 / DC), the grid energy metered since the session began, the power now, and
whether the station follows its profiles. The source is `ocpp:<station id>/<evse id>`; the
session is the transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from pydantic import ValidationError

from idlefleet.ocpp.reports import EvseReport, ReportKind
from streams.messages import MeasuredState

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,199}$")


class MeasurementError(ValueError):
    """A report that cannot become a measured state; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def source_of(report: EvseReport) -> str:
    """`ocpp:<station id>/<evse id>`."""
    return f"ocpp:{report.where}"


def session_id_of(transaction_id: str) -> str:
    """The transaction id, or `tx-` and its SHA-256 (first 32 hex digits) when it is not an
    identifier (2.0.1 allows any string up to 36 characters)."""
    if _IDENTIFIER.match(transaction_id):
        return transaction_id
    return "tx-" + hashlib.sha256(transaction_id.encode()).hexdigest()[:32]


def measured_state(
    report: EvseReport, vehicle_id: str, site_id: str | None
) -> MeasuredState | None:
    """What `report` says of car `vehicle_id` at `site_id`; None when it says nothing of a
    car (a status such as Reserved or Faulted). MeasurementError for values no car has."""
    if report.kind is ReportKind.UNREADABLE:
        raise MeasurementError(report.detail or "unreadable")
    plugged_in = report.plugged_in
    soc_frac = power_kw = None
    session_id = session_energy_kwh = None
    sample = report.sample
    if sample is not None:
        if sample.soc_pct is not None:
            soc_frac = _soc_frac(sample.soc_pct)
        if sample.power_w is not None:
            power_kw = _power_kw(sample.power_w)
            if power_kw > 0 and plugged_in is None:
                plugged_in = True  # power flows into a car
        if report.transaction_id is not None and sample.energy_wh is not None:
            session_energy_kwh = _session_kwh(report, sample.energy_wh)
            if session_energy_kwh is not None:  # (the two come together)
                session_id = session_id_of(report.transaction_id)
    says_something = (
        plugged_in is not None or sample is not None or report.kind is ReportKind.CONTROL
    )
    if not says_something:
        return None
    try:
        return MeasuredState(
            vehicle_id=vehicle_id,
            event_time=sample.time if sample is not None else report.time,
            source=source_of(report),
            site_id=site_id,
            plugged_in=plugged_in,
            soc_frac=soc_frac,
            session_id=session_id,
            session_energy_kwh=session_energy_kwh,
            power_kw=power_kw,
            controllable=report.controllable,
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "measured state"
        raise MeasurementError(f"{where}: {first['msg']}") from exc


def _soc_frac(soc_pct: float) -> float:
    if not (math.isfinite(soc_pct) and 0.0 <= soc_pct <= 100.0):
        raise MeasurementError(f"SoC {soc_pct:g} % lies outside 0-100 %")
    return soc_pct / 100.0


def _power_kw(power_w: float) -> float:
    if not math.isfinite(power_w):
        raise MeasurementError(f"Power.Active.Import {power_w} W is not a number")
    if power_w < 0:
        raise MeasurementError(f"Power.Active.Import {power_w:g} W is negative (export?)")
    return power_w / 1000.0


def _session_kwh(report: EvseReport, energy_wh: float) -> float | None:
    """The register now minus at the session's start [kWh]; None when the start is unknown."""
    start_wh = report.session_start_wh
    if start_wh is None:
        return None
    if not math.isfinite(energy_wh):
        raise MeasurementError(f"Energy.Active.Import.Register {energy_wh} Wh is not a number")
    if energy_wh < start_wh:
        raise MeasurementError(
            f"the energy register went back from {start_wh:g} Wh at the session's start to "
            f"{energy_wh:g} Wh"
        )
    return (energy_wh - start_wh) / 1000.0


def dead_letter_value(report: EvseReport) -> bytes:
    """What the station said, as JSON for a dead letter (an operator needs the id token to
    register the car)."""
    sample = report.sample
    document = {
        "station_id": report.station_id,
        "evse_id": report.evse_id,
        "kind": report.kind.value,
        "time": report.time.isoformat(),
        "transaction_id": report.transaction_id,
        "id_token": report.id_token,
        "plugged_in": report.plugged_in,
        "controllable": report.controllable,
        "detail": report.detail,
        "sample": None
        if sample is None
        else {
            "time": sample.time.isoformat(),
            "energy_wh": _number(sample.energy_wh),
            "power_w": _number(sample.power_w),
            "soc_pct": _number(sample.soc_pct),
        },
    }
    return json.dumps(document).encode()


def _number(value: float | None) -> float | str | None:
    """A value JSON can hold: NaN and infinities as text."""
    return value if value is None or math.isfinite(value) else str(value)
