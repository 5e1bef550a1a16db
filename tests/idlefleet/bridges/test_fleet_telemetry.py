"""fleet-telemetry records, encoded with code generated from Tesla's public .proto."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from idlefleet.bridges.fleet_telemetry import (
    FleetTelemetryBridge,
    decode_payload,
    telemetry_topic,
)
from idlefleet.bridges.measured import DeadLetter, Measured
from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb
from idlefleet.bridges.vins import VinDirectory
from idlefleet.sites import SiteConfig, load_sites
from streams.messages import MeasuredState
from tests.idlefleet.bridges.payloads import (
    BERLIN,
    SITES_JSON,
    T0,
    VIN,
    Encode,
    at,
    binary,
    datum,
    entry,
    protojson,
    record,
)

NOW = T0 + timedelta(seconds=30)
ENCODINGS = pytest.mark.parametrize("encode", [binary, protojson], ids=["binary", "protojson"])


@pytest.fixture(scope="module")
def sites() -> list[SiteConfig]:
    return load_sites(SITES_JSON)


@pytest.fixture
def bridge(sites: list[SiteConfig]) -> FleetTelemetryBridge:
    return FleetTelemetryBridge(vehicles=VinDirectory.of([entry("car-a", VIN)]), sites=sites)


def measured(result: object) -> MeasuredState:
    assert isinstance(result, Measured), result
    return result.state


def dead(result: object) -> str:
    assert isinstance(result, DeadLetter), result
    assert "\n" not in result.reason
    return result.reason


def test_the_topic_is_the_namespace_and_v() -> None:
    assert telemetry_topic("tesla") == "tesla_V"
    for bad in ("", "depot fleet", "tesla/V", "x" * 250):
        with pytest.raises(ValueError, match="namespace"):
            telemetry_topic(bad)


@ENCODINGS
def test_typed_values_map_to_measured_state_in_our_units(
    bridge: FleetTelemetryBridge, encode: Encode
) -> None:
    payload = record(
        datum(pb.BatteryLevel, double_value=81.5),
        datum(pb.Soc, float_value=79.0),  # the BMS's level: BatteryLevel wins
        datum(pb.EnergyRemaining, double_value=58.25),
        datum(pb.ChargeLimitSoc, int_value=90),
        datum(pb.ACChargingPower, float_value=11.0),
        datum(pb.DetailedChargeState, detailed_charge_state_value=pb.DetailedChargeStateCharging),
        at(*BERLIN),
        datum(pb.VehicleSpeed, string_value="0"),  # unmapped: ignored
    )
    state = measured(bridge.bridge(VIN.encode(), encode(payload), now=NOW))
    assert state.model_dump() == {
        "message_version": 1,
        "vehicle_id": "car-a",
        "event_time": T0,
        "source": "fleet-telemetry",
        "site_id": "berlin-depot",
        "away": False,
        "plugged_in": True,
        "energy_kwh": 58.25,
        "soc_frac": pytest.approx(0.815),
        "session_id": None,
        "session_energy_kwh": None,
        "power_kw": 11.0,
        "charge_limit_frac": pytest.approx(0.9),
        "controllable": None,
    }


@ENCODINGS
def test_values_sent_as_text_read_like_typed_ones(
    bridge: FleetTelemetryBridge, encode: Encode
) -> None:
    """Vehicles not configured for typed values send numbers and states as text."""
    payload = record(
        datum(pb.Soc, string_value="42.500"),
        datum(pb.EnergyRemaining, string_value="42.880"),
        datum(pb.DCChargingPower, string_value="120.000"),
        datum(pb.ACChargingPower, string_value="0.000"),
        datum(pb.DetailedChargeState, string_value="DetailedChargeStateStopped"),
        datum(pb.Location, string_value="(51.507000 N, 0.128000 W)"),
    )
    state = measured(bridge.bridge(VIN.encode(), encode(payload), now=NOW))
    assert state.soc_frac == pytest.approx(0.425)
    assert state.energy_kwh == pytest.approx(42.88)
    assert state.power_kw == pytest.approx(120.0)  # AC and DC inlets add up
    assert state.plugged_in is True
    assert (state.site_id, state.away) == ("london-depot", False)


def test_a_record_says_only_what_it_carries(bridge: FleetTelemetryBridge) -> None:
    payload = record(datum(pb.DetailedChargeState, string_value="DetailedChargeStateDisconnected"))
    state = measured(bridge.bridge(VIN.encode(), binary(payload), now=NOW))
    assert state.plugged_in is False
    assert state.soc_frac is state.energy_kwh is state.power_kw is None
    assert state.site_id is None and state.away is None  # no location: where is not said


@ENCODINGS
def test_a_location_outside_every_site_is_away(
    bridge: FleetTelemetryBridge, encode: Encode
) -> None:
    payload = record(at(48.137, 11.575), datum(pb.BatteryLevel, int_value=50))  # Munich
    state = measured(bridge.bridge(VIN.encode(), encode(payload), now=NOW))
    assert state.site_id is None and state.away is True


def test_the_key_alone_may_carry_the_vin(bridge: FleetTelemetryBridge) -> None:
    payload = record(datum(pb.BatteryLevel, int_value=50), vin="")
    assert measured(bridge.bridge(VIN.encode(), binary(payload), now=NOW)).vehicle_id == "car-a"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xff\xff", "malformed protobuf Payload"),
        (b"\x0a\x05\x08", "malformed protobuf Payload"),  # a datum cut short
        (b'{"data": [', "malformed protojson Payload"),
        (b'{"data": "Soc"}', "malformed protojson Payload"),
        (b"{\xff}", "malformed protojson Payload"),
        (b"", "malformed: no created_at"),
    ],
)
def test_malformed_records_are_dead_letters(
    bridge: FleetTelemetryBridge, value: bytes, reason: str
) -> None:
    assert dead(bridge.bridge(VIN.encode(), value, now=NOW)).startswith(reason)


def test_a_record_without_a_value_is_a_dead_letter(bridge: FleetTelemetryBridge) -> None:
    assert dead(bridge.bridge(VIN.encode(), None, now=NOW)) == "malformed: no value"


@ENCODINGS
def test_an_unknown_vin_is_a_dead_letter_that_masks_it(
    bridge: FleetTelemetryBridge, encode: Encode
) -> None:
    other = "WAUZZZ8V1KA000042"
    payload = record(datum(pb.BatteryLevel, int_value=50), vin=other)
    reason = dead(bridge.bridge(other.encode(), encode(payload), now=NOW))
    assert reason == "unknown VIN WAU…0042"


def test_a_retired_car_or_a_vin_two_cars_claim_is_a_dead_letter(
    sites: list[SiteConfig],
) -> None:
    other = "WAUZZZ8V1KA000042"
    vehicles = VinDirectory.of(
        [
            entry("car-a", VIN),
            entry("car-a", VIN, retired=True, updated_at=T0 - timedelta(hours=1)),
            entry("car-b", other),
            entry("car-c", other),
        ]
    )
    bridge = FleetTelemetryBridge(vehicles=vehicles, sites=sites)
    payload = record(datum(pb.BatteryLevel, int_value=50))
    assert dead(bridge.bridge(VIN.encode(), binary(payload), now=NOW)) == "unknown VIN 5YJ…0001"
    payload = record(datum(pb.BatteryLevel, int_value=50), vin=other)
    reason = dead(bridge.bridge(other.encode(), binary(payload), now=NOW))
    assert reason == "VIN WAU…0042 is registered to 2 cars: car-b, car-c"


def test_key_and_payload_vins_must_agree(bridge: FleetTelemetryBridge) -> None:
    payload = record(datum(pb.BatteryLevel, int_value=50))
    reason = dead(bridge.bridge(b"WAUZZZ8V1KA000042", binary(payload), now=NOW))
    assert reason.startswith("VIN mismatch")
    no_vin = record(datum(pb.BatteryLevel, int_value=50), vin="")
    assert dead(bridge.bridge(None, binary(no_vin), now=NOW)).startswith("malformed: no VIN")


@ENCODINGS
def test_a_record_of_unmapped_signals_only_is_a_dead_letter(
    bridge: FleetTelemetryBridge, encode: Encode
) -> None:
    payload = record(
        datum(pb.VehicleSpeed, string_value="0"),
        datum(pb.Odometer, double_value=12345.6),
        datum(pb.BatteryLevel, invalid=True),  # mapped, but the car cannot measure it now
    )
    reason = dead(bridge.bridge(VIN.encode(), encode(payload), now=NOW))
    assert reason == "no usable mapped signal; signals: BatteryLevel, Odometer, VehicleSpeed"


def test_signals_newer_than_the_vendored_proto_are_skipped(bridge: FleetTelemetryBridge) -> None:
    newer = record(datum(9999, string_value="x"), datum(pb.BatteryLevel, int_value=60))
    assert measured(bridge.bridge(VIN.encode(), binary(newer), now=NOW)).soc_frac == 0.6
    only_newer = record(datum(9999, string_value="x"))
    reason = dead(bridge.bridge(VIN.encode(), binary(only_newer), now=NOW))
    assert reason == "no usable mapped signal; signals: Field#9999"
    text = b'{"vin": "%s", "createdAt": "2026-07-01T12:00:00Z", "data": [' % VIN.encode()
    text += b'{"key": "SignalOfTomorrow", "value": {"stringValue": "1"}},'
    text += b'{"key": "Soc", "value": {"floatValue": 55}}], "fieldOfTomorrow": 1}'
    assert measured(bridge.bridge(VIN.encode(), text, now=NOW)).soc_frac == 0.55


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (datum(pb.BatteryLevel, double_value=120.0), "out of range: BatteryLevel 120 pct"),
        (datum(pb.Soc, float_value=-1.0), "out of range: Soc -1 pct"),
        (datum(pb.EnergyRemaining, string_value="nan"), "out of range: EnergyRemaining nan"),
        (datum(pb.EnergyRemaining, string_value="lots"), "out of range: EnergyRemaining 'lots'"),
        (datum(pb.ChargeLimitSoc, int_value=101), "out of range: ChargeLimitSoc 101 pct"),
        (datum(pb.ChargeLimitSoc, int_value=0), "out of range: ChargeLimitSoc 0 pct"),
        (datum(pb.ACChargingPower, float_value=-3.0), "out of range: ACChargingPower -3 kW"),
        (datum(pb.DCChargingPower, boolean_value=True), "out of range: DCChargingPower True"),
        (datum(pb.DetailedChargeState, string_value="Charging?"), "out of range: Detailed"),
        (at(91.0, 0.0), "out of range: Location (91, 0)"),
        (at(0.0, -181.0), "out of range: Location (0, -181)"),
    ],
)
def test_values_out_of_range_are_dead_letters(
    bridge: FleetTelemetryBridge, data: pb.Datum, reason: str
) -> None:
    payload = record(datum(pb.BatteryLevel, int_value=50), data)
    assert dead(bridge.bridge(VIN.encode(), binary(payload), now=NOW)).startswith(reason)


@pytest.mark.parametrize(
    ("created", "reason"),
    [
        (NOW - timedelta(hours=2), "stale: created_at 2026-07-01T10:00:30+00:00 is 2:00:00 old"),
        (NOW + timedelta(minutes=6), "from the future: created_at"),
        (None, "malformed: no created_at"),
    ],
)
def test_stale_future_or_missing_timestamps_are_dead_letters(
    bridge: FleetTelemetryBridge, created: datetime | None, reason: str
) -> None:
    payload = record(datum(pb.BatteryLevel, int_value=50), created=created)
    assert dead(bridge.bridge(VIN.encode(), binary(payload), now=NOW)).startswith(reason)


def test_decoding_tells_protojson_from_binary() -> None:
    payload = record(datum(pb.Soc, float_value=80.5))
    assert decode_payload(protojson(payload)) == payload
    assert decode_payload(b"  \n" + protojson(payload)) == payload
    assert decode_payload(binary(payload)) == payload


def test_now_must_be_timezone_aware(bridge: FleetTelemetryBridge) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bridge.bridge(VIN.encode(), b"", now=datetime(2026, 7, 1))  # noqa: DTZ001
