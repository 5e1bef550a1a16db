"""Tesla fleet-telemetry records to measured state.

fleet-telemetry (github.com/teslamotors/fleet-telemetry) writes each vehicle's signals to the
Kafka topic ``<namespace>_V``, key the VIN, value a ``telemetry.vehicle_data.Payload``
(``proto/vendor/tesla/vehicle_data.proto``): binary protobuf, or its protojson form when the
server runs with ``transmit_decoded_records``. A payload holds only the signals that changed
(``data``: repeated ``Datum{key: Field, value: Value}``), the vehicle's ``created_at`` and
usually the VIN. Most values arrive as text (``"42.880"``) unless the vehicle is configured
for typed values; both are read. ``Value.invalid`` means "the car cannot measure this now"
and counts as absent.

``VARIABLE_MAP`` is the one place where Tesla's signal names and units map to ours. The
deprecated ``ChargeState`` signal is not mapped: vehicles send it as the words ``Idle`` or
``Enable`` (fleet-telemetry issue #123); ``DetailedChargeState`` carries the charge state.

A record becomes a `streams.messages.MeasuredState` with source ``fleet-telemetry``, for the
car the fleet registry gives its VIN (`vins.VinDirectory`); anything else becomes a dead
letter with a one-line reason. `runner.py` runs the bridge against Kafka.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from idlefleet.bridges.geofence import SitePoint, site_at
from idlefleet.bridges.measured import BridgeResult, DeadLetter, Measured
from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb
from idlefleet.bridges.variables import (
    ChargeStateVariable,
    LocationVariable,
    NumberVariable,
    Reading,
    ReadingError,
    Variable,
    apply_map,
)
from idlefleet.bridges.vins import VinDirectory, masked_vin
from streams.messages import MeasuredState

#: fleet-telemetry names its vehicle-data topic ``<namespace>_<record type>``; "V" is data.
RECORD_TYPE: Final = "V"
#: The `source` of the measured state this bridge publishes.
SOURCE: Final = "fleet-telemetry"
#: What Kafka allows in a topic name (and so in a namespace).
_TOPIC_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,247}$")

#: Tesla signal -> our quantity; readings outside [low, high] dead-letter the record.
VARIABLE_MAP: Final[dict[str, Variable]] = {
    # The level the owner sees and the charge limit refers to; Soc (the BMS's) if absent.
    "BatteryLevel": NumberVariable("soc_frac", "pct", 0.01, 0.0, 100.0),
    "Soc": NumberVariable("soc_frac", "pct", 0.01, 0.0, 100.0),
    "EnergyRemaining": NumberVariable("energy_kwh", "kWh", 1.0, 0.0, 1000.0),
    # a limit of 0 % is no limit a car has (Tesla's lowest is 50 %)
    "ChargeLimitSoc": NumberVariable("charge_limit_frac", "pct", 0.01, 1.0, 100.0),
    "ACChargingPower": NumberVariable("power_kw", "kW", 1.0, 0.0, 100.0),
    "DCChargingPower": NumberVariable("power_kw", "kW", 1.0, 0.0, 1500.0),
    "DetailedChargeState": ChargeStateVariable(
        {
            "DetailedChargeStateUnknown": None,
            "DetailedChargeStateDisconnected": False,
            "DetailedChargeStateNoPower": True,
            "DetailedChargeStateStarting": True,
            "DetailedChargeStateCharging": True,
            "DetailedChargeStateComplete": True,
            "DetailedChargeStateStopped": True,
        }
    ),
    "Location": LocationVariable(),
}

#: The text form fleet-telemetry may leave a location in: "(37.412374 N, 122.145867 W)".
_LOCATION_TEXT: Final = re.compile(
    r"^\(\s*([0-9.+-eE]+)\s*([NS])\s*,\s*([0-9.+-eE]+)\s*([EW])\s*\)$"
)


def telemetry_topic(namespace: str) -> str:
    """The topic fleet-telemetry writes vehicle data to under `namespace` (its config's
    ``namespace``); ValueError when that makes no Kafka topic name."""
    topic = f"{namespace}_{RECORD_TYPE}"
    if not namespace or not _TOPIC_NAME.match(topic):
        raise ValueError(
            f"namespace {namespace!r}: a topic name takes 1 to 247 letters, digits, '.', '_' or '-'"
        )
    return topic


class MalformedRecordError(ValueError):
    """A record value that is no fleet-telemetry Payload."""


def decode_payload(value: bytes) -> pb.Payload:
    """A Payload from binary protobuf, or protojson when the value starts with ``{``.

    A binary Payload cannot start with ``{`` (0x7b would open group 15), so the first byte
    tells the forms apart. Fields and enum names newer than the vendored .proto are skipped.
    """
    payload = pb.Payload()
    if value.lstrip()[:1] == b"{":
        try:
            json_format.Parse(value.decode("utf-8"), payload, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
            raise MalformedRecordError(f"malformed protojson Payload: {exc}") from exc
    else:
        try:
            payload.ParseFromString(value)
        except DecodeError as exc:
            raise MalformedRecordError(f"malformed protobuf Payload: {exc}") from exc
    return payload


def readings(payload: pb.Payload) -> dict[str, Reading]:
    """Signal name -> reading of every datum with a usable value (the last of repeats)."""
    found: dict[str, Reading] = {}
    for datum in payload.data:
        reading = datum_reading(datum.value)
        if reading is not None:
            found[_field_name(datum.key)] = reading
    return found


def datum_reading(value: pb.Value) -> Reading | None:
    """The reading a Value carries; None when it carries none, or is marked invalid."""
    kind = value.WhichOneof("value")
    if kind is None or kind == "invalid":
        return None
    if kind == "string_value":
        text = value.string_value
        match = _LOCATION_TEXT.match(text)
        if match is None:
            return text
        lat, ns, lon, ew = match.groups()
        try:
            return (float(lat) * (-1 if ns == "S" else 1), float(lon) * (-1 if ew == "W" else 1))
        except ValueError:
            return text
    if kind == "boolean_value":
        return value.boolean_value
    if kind in ("int_value", "long_value", "float_value", "double_value"):
        return float(getattr(value, kind))
    if kind == "location_value":
        return (value.location_value.latitude, value.location_value.longitude)
    descriptor = pb.Value.DESCRIPTOR.fields_by_name[kind]
    if descriptor.enum_type is not None:
        number = getattr(value, kind)
        known = descriptor.enum_type.values_by_number.get(number)
        return known.name if known is not None else f"{descriptor.enum_type.name}#{number}"
    return None  # messages (doors, time, tires) map to nothing of ours


@dataclass(frozen=True)
class BridgeConfig:
    """How strict the bridge is."""

    geofence_radius_m: float = 250.0  # a car this near a site's point is at the site [m]
    max_age: timedelta = timedelta(hours=1)  # older records are stale
    max_clock_skew: timedelta = timedelta(minutes=5)  # newer than now by more: refused


@dataclass(frozen=True)
class FleetTelemetryBridge:
    """Maps fleet-telemetry records of registered vehicles to measured state.

    `vehicles` gives the car of each VIN (the fleet registry's; a VIN it lacks dead-letters
    the record); `sites` are the geofences a location is placed in.
    """

    vehicles: VinDirectory
    sites: Sequence[SitePoint]
    config: BridgeConfig = field(default_factory=BridgeConfig)
    variable_map: Mapping[str, Variable] = field(default_factory=lambda: VARIABLE_MAP)

    def bridge(self, key: bytes | None, value: bytes | None, *, now: datetime) -> BridgeResult:
        """One record (Kafka key and value) -> measured state, or a dead letter saying why."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        if value is None:
            return DeadLetter("malformed: no value")
        try:
            payload = decode_payload(value)
        except MalformedRecordError as exc:
            return DeadLetter(_one_line(str(exc)))
        vin_or_reason = self._vin(key, payload)
        if isinstance(vin_or_reason, DeadLetter):
            return vin_or_reason
        vehicle_id = self.vehicles.vehicle_of(vin_or_reason)
        if isinstance(vehicle_id, DeadLetter):
            return vehicle_id
        event_time = self._event_time(payload, now)
        if isinstance(event_time, DeadLetter):
            return event_time
        found = readings(payload)
        if not any(name in self.variable_map for name in found):
            names = sorted({_field_name(datum.key) for datum in payload.data})
            return DeadLetter(f"no usable mapped signal; signals: {', '.join(names) or 'none'}")
        try:
            quantities = apply_map(found, self.variable_map)
        except ReadingError as exc:
            return DeadLetter(_one_line(str(exc)))
        site_id, away = None, None
        if quantities.location_deg is not None:
            lat_deg, lon_deg = quantities.location_deg
            site_id = site_at(lat_deg, lon_deg, self.sites, self.config.geofence_radius_m)
            away = site_id is None
        try:
            state = MeasuredState(
                vehicle_id=vehicle_id,
                event_time=event_time,
                source=SOURCE,
                site_id=site_id,
                away=away,
                plugged_in=quantities.plugged_in,
                energy_kwh=quantities.energy_kwh,
                soc_frac=quantities.soc_frac,
                power_kw=quantities.power_kw,
                charge_limit_frac=quantities.charge_limit_frac,
            )
        except ValidationError as exc:  # a map whose ranges are wider than the message's
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "<message>"
            return DeadLetter(_one_line(f"invalid MeasuredState: {where}: {first['msg']}"))
        return Measured(state)

    def _vin(self, key: bytes | None, payload: pb.Payload) -> str | DeadLetter:
        """The record's VIN: the payload's, which the key must match when both are there."""
        try:
            key_vin = key.decode("ascii").strip() if key else ""
        except UnicodeDecodeError:
            return DeadLetter("malformed: key is not an ASCII VIN")
        vin = payload.vin.strip()
        if vin and key_vin and vin != key_vin:
            return DeadLetter(f"VIN mismatch: key {masked_vin(key_vin)}, payload {masked_vin(vin)}")
        return vin or key_vin or DeadLetter("malformed: no VIN in key or payload")

    def _event_time(self, payload: pb.Payload, now: datetime) -> datetime | DeadLetter:
        """The payload's created_at [UTC], if neither missing, stale nor in the future."""
        if not payload.HasField("created_at"):
            return DeadLetter("malformed: no created_at")
        try:
            created = payload.created_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError) as exc:
            return DeadLetter(_one_line(f"malformed: created_at: {exc}"))
        age = now - created
        if age > self.config.max_age:
            return DeadLetter(f"stale: created_at {created.isoformat()} is {age} old")
        if -age > self.config.max_clock_skew:
            return DeadLetter(f"from the future: created_at {created.isoformat()} is {-age} ahead")
        return created


def _field_name(number: int) -> str:
    """A Field's name, or ``Field#n`` for a signal newer than the vendored .proto."""
    known = pb.Field.DESCRIPTOR.values_by_number.get(number)
    return known.name if known is not None else f"Field#{number}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
