"""`idlefleet bridge fleet-telemetry`: a real process bridging a real broker until SIGTERM, and
the arguments it refuses with exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from idlefleet.bridges.fleet_telemetry import telemetry_topic
from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb
from idlefleet.cli import main
from idlefleet.commands.bridge import PRINCIPAL
from streams.clients import KafkaSettings
from streams.identity import Identity
from streams.messages import MeasuredState
from streams.serde import decode
from streams.topics import Stream
from tests.idlefleet.bridges.payloads import BERLIN, VIN, at, binary, datum, entry, record
from tests.idlefleet.bridges.test_runner import read_topic
from tests.streams import factories

IDLEFLEET = [sys.executable, "-m", "idlefleet.cli"]
WAIT_S = 30.0


def test_the_command_bridges_records_until_sigterm(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    world = factories.World(kafka_settings, {"planner": "service"})
    try:
        world.publish([entry("car-a", VIN, home_site_id="berlin-depot")], "planner")
    finally:
        world.stop()
    world.authority.save(tmp_path / "authority.key")  # a lab: the bridge enrolls its own key
    namespace = f"{kafka_settings.topic_prefix}-tesla"
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    admin.create_topics([NewTopic(telemetry_topic(namespace), 1, 1)])
    admin.close()
    fresh = datetime.now(UTC)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    for vin, payload in (
        (VIN, record(datum(pb.BatteryLevel, int_value=64), at(*BERLIN), created=fresh)),
        ("WAUZZZ8V1KA000042", record(vin="WAUZZZ8V1KA000042", created=fresh)),
    ):
        producer.send(telemetry_topic(namespace), key=vin.encode(), value=binary(payload))
    producer.flush()
    producer.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("IDLEFLEET_")}
    env["IDLEFLEET_STATE_DIR"] = str(tmp_path)
    command = [
        *IDLEFLEET,
        "bridge",
        "fleet-telemetry",
        "--namespace",
        namespace,
        "--bootstrap-servers",
        kafka_settings.bootstrap_servers,
        "--topic-prefix",
        kafka_settings.topic_prefix,
        "--authority-key",
        str(tmp_path / "authority.key"),
    ]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as process:
        lines: list[str] = []
        assert process.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
        reader.start()
        try:
            ((headers, value),) = read_topic(kafka_settings, Stream.MEASURED_STATE, 1)
            read_topic(kafka_settings, Stream.DEAD_LETTER, 1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=WAIT_S) == 0
        finally:
            process.kill()
        reader.join(WAIT_S)
    output = "".join(lines)
    assert f"bridging {namespace}_V on {kafka_settings.bootstrap_servers}" in output
    assert "VINs in the fleet registry: 1; sites: 2" in output
    assert "stopped: 1 records bridged, 1 dead-lettered" in output
    state = decode(Stream.MEASURED_STATE, value)
    assert isinstance(state, MeasuredState)
    assert (state.vehicle_id, state.site_id, state.soc_frac) == ("car-a", "berlin-depot", 0.64)
    bridge_key = Identity.load(tmp_path / f"{PRINCIPAL}.key")
    assert headers["idf-proof"].startswith(bridge_key.key_id.encode() + b" ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--namespace", "t"], "--bootstrap-servers"),
        (["--namespace", "depot fleet", "--bootstrap-servers", "h:1"], "namespace 'depot fleet'"),
        (["--namespace", "t", "--bootstrap-servers", "h:1"], "--authority-public-key"),
        (["--namespace", "t", "--bootstrap-servers", "h:1", "--geofence-radius-m", "-1"], "0 or"),
        (["--namespace", "t", "--bootstrap-servers", "h:1", "--max-age-minutes", "0"], "above 0"),
        (
            ["--namespace", "t", "--bootstrap-servers", "h:1", "--sites", "/nonexistent.json"],
            "nonexistent",
        ),
    ],
)
def test_bad_arguments_exit_2_naming_what_is_wrong(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("IDLEFLEET_AUTHORITY_PUBLIC_KEY", raising=False)
    monkeypatch.setenv("IDLEFLEET_STATE_DIR", str(tmp_path))
    assert main(["bridge", "fleet-telemetry", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("idlefleet bridge fleet-telemetry: ") and message in err


def test_help_says_where_records_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["bridge", "fleet-telemetry", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "<namespace>_V" in out and "dead-letter" in out and "docs/bridges.md" in out
