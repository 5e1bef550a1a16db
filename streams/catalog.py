"""The topic catalog: one example per stream and the docs page rendered from the models.

`python -m streams.catalog > docs/topics.md` regenerates the page; a test keeps it in sync.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from streams.identity import key_id_of
from streams.messages import (
    Assignment,
    ConsentRules,
    DemandResponseEvent,
    Enrollment,
    GridSignal,
    Heartbeat,
    Job,
    JobCancellation,
    MeasuredState,
    Message,
    ModelRef,
    OwnerPreferences,
    Result,
    SolarForecast,
    Telemetry,
    VehicleRecord,
    WorkItem,
)
from streams.topics import STREAM_SPECS, Stream, Topics

T0 = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
SHA256_EXAMPLE = "3d2792190f5c2b4d9d3c6fd5e1a0a8f4b7d1c9e2f3a4b5c6d7e8f9a0b1c240c6"
MODEL = ModelRef(uri="file:///srv/models/demo-mlp.onnx", sha256=SHA256_EXAMPLE)

EXAMPLES: dict[Stream, Message] = {
    Stream.TELEMETRY: Telemetry(
        vehicle_id="car-001",
        event_time=T0,
        site_id="berlin-depot",
        plugged_in=True,
        energy_kwh=30.0,
        battery_kwh=75.0,
        reserve_kwh=15.0,
        target_kwh=60.0,
        expected_departure=T0 + timedelta(hours=8),
        charger_kw=11.0,
        compute_kw=0.3,
    ),
    Stream.MEASURED_STATE: MeasuredState(
        vehicle_id="car-001",
        event_time=T0,
        source="ocpp:depot-cs-7/1",
        site_id="berlin-depot",
        plugged_in=True,
        session_id="tx-4711",
        session_energy_kwh=3.2,
        power_kw=10.8,
    ),
    Stream.OWNER_PREFERENCES: OwnerPreferences(
        vehicle_id="car-001",
        updated_at=T0,
        reserve_kwh=15.0,
        target_kwh=60.0,
        expected_departure=T0 + timedelta(hours=8),
        rules=ConsentRules(only_at_sites=["berlin-depot"], min_soc_frac=0.6),
        updated_by="owner-car-001",
    ),
    Stream.FLEET_REGISTRY: VehicleRecord(
        vehicle_id="car-001",
        updated_at=T0,
        battery_kwh=75.0,
        charger_kw=11.0,
        compute_kw=0.3,
        home_site_id="berlin-depot",
        vin="5YJ3E1EA7JF000001",
        id_tokens=["04A2B3C4D5E6F7"],
        evse="depot-cs-7/1",
    ),
    Stream.SOLAR_FORECASTS: SolarForecast(
        site_id="berlin-depot",
        issued_at=T0,
        start=T0,
        slot_minutes=15,
        source="pvlib clear-sky (Ineichen)",
        pv_kw=[21.4, 21.1],
    ),
    Stream.GRID_SIGNALS: GridSignal(
        region="DE",
        issued_at=T0,
        start=T0,
        slot_minutes=15,
        kind="actual",
        source="ENTSO-E 2020",
        intensity_g_per_kwh=[310.5, 305.1],
    ),
    Stream.JOBS: Job(
        job_id="embed-1",
        submitted_at=T0,
        model=MODEL,
        input_uris=["file:///srv/in/0.npy", "file:///srv/in/1.npy"],
        output_uri="file:///srv/out/embed-1",
        replicas=2,
        value_per_shard=0.5,
        release=T0,
        deadline=T0 + timedelta(hours=4),
    ),
    Stream.ASSIGNMENTS: Assignment(
        assignment_id="a-1",
        plan_id="plan-2020-06-01T12:00:00Z",
        vehicle_id="car-001",
        slot_start=T0,
        slot_end=T0 + timedelta(minutes=15),
        charge_power_kw=11.0,
        work=[
            WorkItem(
                work_id="w-1",
                job_id="embed-1",
                shard_index=0,
                model=MODEL,
                input_uri="file:///srv/in/0.npy",
                output_uri="file:///srv/out/embed-1",
            )
        ],
    ),
    Stream.RESULTS: Result(
        work_id="w-1",
        assignment_id="a-1",
        job_id="embed-1",
        shard_index=0,
        vehicle_id="car-001",
        status="done",
        output_uri="file:///srv/out/embed-1/0.npy",
        output_sha256=SHA256_EXAMPLE,
        runtime_s=0.004,
        energy_kwh=3.3e-7,
        provider="CPUExecutionProvider",
        finished_at=T0,
    ),
    Stream.DR_EVENTS: DemandResponseEvent(
        event_id="evt-1",
        site_id="berlin-depot",
        start=T0,
        end=T0 + timedelta(hours=2),
        max_import_kw=40.0,
    ),
    Stream.HEARTBEATS: Heartbeat(
        vehicle_id="car-001",
        sent_at=T0,
        running=["w-1"],
        provider="CPUExecutionProvider",
    ),
    Stream.JOB_CANCELLATIONS: JobCancellation(
        job_id="embed-1", cancelled_at=T0, cancelled_by="operator-1"
    ),
    Stream.IDENTITIES: Enrollment(
        key_id=key_id_of(bytes.fromhex("11" * 32), bytes.fromhex("22" * 32)),
        principal="car-001",
        role="car",
        signing_public_key="11" * 32,
        agreement_public_key="22" * 32,
        enrolled_at=T0,
    ),
}

UNIT_SUFFIXES = (
    ("_g_per_kwh", "gCO2/kWh"),
    ("_per_kwh", "currency/kWh"),
    ("_kwh", "kWh"),
    ("_kw", "kW"),
    ("_frac", "fraction 0..1"),
    ("_minutes", "min"),
    ("_s", "s"),
    ("_per_shard", "currency"),
)
TIME_FIELDS = {
    "event_time",
    "expected_departure",
    "issued_at",
    "start",
    "end",
    "release",
    "deadline",
    "submitted_at",
    "slot_start",
    "slot_end",
    "finished_at",
    "sent_at",
    "updated_at",
}


def unit_of(field: str) -> str:
    """The unit a field's name promises."""
    if field in TIME_FIELDS:
        return "UTC, ISO 8601 with offset"
    for suffix, unit in UNIT_SUFFIXES:
        if field.endswith(suffix):
            return unit
    return ""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("Annotated", "").replace("NoneType", "null")


def _fields_table(model: type[BaseModel]) -> list[str]:
    rows = ["| field | unit | required | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        required = "yes" if info.is_required() else f"no (default `{default!r}`)"
        meaning = info.description or ""
        rows.append(f"| `{name}` | {unit_of(name)} | {required} | {meaning} |")
    return rows


def render_topic_docs(topics: Topics | None = None) -> str:
    """The Markdown page that lists every topic: key, fields with units, an example."""
    topics = topics or Topics()
    lines = [
        "# Topics and messages",
        "",
        "Generated by `python -m streams.catalog`; do not edit by hand.",
        "",
        "Every payload is UTF-8 JSON carrying `message_version` (now 1), validated when built",
        "and when read. Unknown fields, naive timestamps, NaN and infinities are refused; a",
        f"record that fails is parked on `{topics.name(Stream.DEAD_LETTER)}` with headers",
        "`reason`, `source_topic`, `source_partition` and `source_offset`. Topic names take a",
        "configurable prefix (default `idlefleet`).",
        "",
        "Every record but a dead letter proves its writer in its `idf-proof` header (an",
        "Ed25519 signature, or a MAC for the service on a car's records; see",
        "[security.md](security.md)); a reader parks a record that does not, with the reason.",
        "",
        "| topic | key | message | partitions |",
        "| --- | --- | --- | --- |",
    ]
    for stream, spec in STREAM_SPECS.items():
        message = spec.message_type.__name__ if spec.message_type else "raw record + headers"
        lines.append(
            f"| `{topics.name(stream)}` | {spec.key_field or 'source key'} | {message} "
            f"| {spec.partitions} |"
        )
    nested: list[type[BaseModel]] = [ModelRef, WorkItem, ConsentRules]
    for stream, example in EXAMPLES.items():
        model = type(example)
        lines += ["", f"## `{topics.name(stream)}`: {model.__name__}", ""]
        lines.append((model.__doc__ or "").strip().splitlines()[0])
        lines += ["", *_fields_table(model), "", "Example:", "", "```json"]
        lines.append(json.dumps(json.loads(example.model_dump_json()), indent=2))
        lines.append("```")
    for nested_model in nested:
        doc = (nested_model.__doc__ or "").strip()
        lines += ["", f"## {nested_model.__name__} (nested)", "", doc, ""]
        lines += _fields_table(nested_model)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_topic_docs(), end="")
