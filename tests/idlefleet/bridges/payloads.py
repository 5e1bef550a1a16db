"""fleet-telemetry records as the server writes them, built with the generated classes, and
fleet-registry entries for the cars they come from."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf import json_format

from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb
from streams.messages import VehicleRecord

SITES_JSON = Path(__file__).resolve().parents[3] / "idlefleet" / "data" / "sites.json"
VIN = "5YJ3E1EA7KF000001"
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
BERLIN = (52.52, 13.405)
LONDON = (51.507, -0.128)


def binary(payload: pb.Payload) -> bytes:
    return payload.SerializeToString()


def protojson(payload: pb.Payload) -> bytes:
    """As fleet-telemetry's transmit_decoded_records writes it: enum names, unpopulated too."""
    text = json_format.MessageToJson(
        payload, always_print_fields_with_no_presence=True, indent=None
    )
    return text.encode()


Encode = Callable[[pb.Payload], bytes]


def record(*data: pb.Datum, vin: str = VIN, created: datetime | None = T0) -> pb.Payload:
    payload = pb.Payload(vin=vin, data=list(data))
    if created is not None:
        payload.created_at.FromDatetime(created)
    return payload


def datum(key: int, **value: object) -> pb.Datum:
    return pb.Datum(key=key, value=pb.Value(**value))  # type: ignore[arg-type]


def at(lat_deg: float, lon_deg: float) -> pb.Datum:
    return datum(pb.Location, location_value=pb.LocationValue(latitude=lat_deg, longitude=lon_deg))


def entry(vehicle_id: str, vin: str | None, **changes: object) -> VehicleRecord:
    """A fleet-registry entry for a 75 kWh car, written a day before T0."""
    fields: dict[str, object] = {
        "vehicle_id": vehicle_id,
        "updated_at": T0 - timedelta(days=1),
        "battery_kwh": 75.0,
        "charger_kw": 11.0,
        "compute_kw": 0.3,
        "vin": vin,
        **changes,
    }
    return VehicleRecord.model_validate(fields)
