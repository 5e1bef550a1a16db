"""`idlefleet serve --ocpp-port`: options checked before anything starts, and a real serve
process whose stations are measured into the fleet's streams."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from idlefleet.cli import build_parser, main
from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.commands.serve import default_sites
from idlefleet.ocpp.passwords import PasswordHash
from idlefleet.ocpp.runner import OcppConfigError, describe, ocpp_config
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.identity import Authority, Identity
from streams.messages import MeasuredState, Message, VehicleRecord
from streams.topics import Stream
from streams.trust import Trust, publish_enrollments
from tests.idlefleet.ocpp.harness import PASSWORD, connected, self_signed
from tests.idlefleet.test_packaging import modules_after
from tests.idlefleet.test_serve import IDLEFLEET, Lines
from tests.streams import factories
from tests.streams.test_reader import read_dead_letters

SITE = "berlin-depot"  # of the shipped example sites serve plans by default


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stations_file(directory: Path, text: str, mode: int = 0o600) -> Path:
    path = directory / "stations"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory of the test's own (a lab serve writes its token there)."""
    monkeypatch.setenv("IDLEFLEET_STATE_DIR", str(tmp_path / "state"))
    for name in ("IDLEFLEET_OCPP_PORT", "IDLEFLEET_OCPP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "file_text", "says"),
    [
        (["--ocpp-port", "9"], None, "--ocpp-port needs --ocpp-stations FILE"),
        ([], "CS-1 berlin-depot plain:pw\n", "--ocpp-stations needs --ocpp-port"),
        (
            ["--ocpp-port", "9", "--ocpp-tls-cert", "cert.pem"],
            "CS-1 berlin-depot plain:pw\n",
            "--ocpp-tls-cert and --ocpp-tls-key go together",
        ),
        (
            ["--ocpp-port", "9"],
            "# id site password\nCS-1 berlin-depot plain:pw\nCS-2 plain:s3cr3t-pw evse_kw=11\n",
            "line 3: field 2 (site id) is none of the sites served (berlin-depot, london-depot)",
        ),
        (
            ["--ocpp-port", "9", "--clock-speed", "60"],
            "CS-1 berlin-depot plain:pw\n",
            "--ocpp-port needs --clock-speed 1: chargers run on the wall clock",
        ),
        (["--ocpp-port", "70000"], "CS-1 berlin-depot plain:pw\n", "OCPP settings: "),
    ],
    ids=["no-stations-file", "no-port", "cert-without-key", "bad-line", "scaled-clock", "port"],
)
def test_serve_refuses_ocpp_options_that_do_not_fit(
    lab_state: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    file_text: str | None,
    says: str,
) -> None:
    stations = (
        [] if file_text is None else ["--ocpp-stations", str(stations_file(lab_state, file_text))]
    )
    assert main(["serve", *flags, *stations]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert says in err
    assert "s3cr3t" not in err  # a password in the wrong field is never shown


def test_serve_measures_a_registered_car_and_parks_an_unknown_one(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """serve against the test's broker, enrolling its own keys (the OCPP adapter's too) with
    an authority file; one station with a hashed password. A registered car's session becomes
    its signed measured state; another station's car, not registered, a dead letter."""
    authority = Authority.generate()
    authority.save(tmp_path / "authority.key")
    hashed = PasswordHash.make(PASSWORD).text()
    stations = stations_file(
        tmp_path,
        f"CS-1 {SITE} {hashed} evse_kw=11 unit=A\nCS-2 {SITE} plain:{PASSWORD} evse_kw=22\n",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDLEFLEET_")}
    env["IDLEFLEET_STATE_DIR"] = str(tmp_path / "state")
    command = [
        *IDLEFLEET,
        "serve",
        "--bootstrap-servers",
        kafka_settings.bootstrap_servers,
        "--topic-prefix",
        kafka_settings.topic_prefix,
        "--authority-key",
        str(tmp_path / "authority.key"),
        "--identity-dir",
        str(tmp_path / "ids"),
        "--ocpp-port",
        str(port),
        "--ocpp-host",
        "127.0.0.1",
        "--ocpp-stations",
        str(stations),
    ]
    registrar = Identity.generate("registrar", "service")  # who keeps the fleet registry
    publish_enrollments(kafka_settings, authority, [registrar.enrollment(datetime.now(UTC))])
    trust = Trust(kafka_settings, authority.public_key, [registrar]).start()
    record = VehicleRecord(
        vehicle_id="car-a",
        updated_at=datetime.now(UTC),
        battery_kwh=60.0,
        charger_kw=11.0,
        compute_kw=0.3,
        evse="CS-1/1",
    )
    factories.publish(kafka_settings, [record], trust.signer)
    states: list[MeasuredState] = []
    seen = threading.Event()

    def keep(stream: Stream, message: Message) -> None:
        assert isinstance(message, MeasuredState)
        states.append(message)
        if message.soc_frac == 0.42:
            seen.set()

    reader = StreamReader(
        kafka_settings, None, [Stream.MEASURED_STATE], keep, None, rules=trust.rules()
    ).start()

    async def stations_speak() -> None:
        async with connected(port, "CS-1", "ocpp2.0.1") as cs1:
            await cs1.boot()
            await cs1.start_session("tx-1", soc_pct=42.0, power_w=11000.0)
            assert await asyncio.to_thread(seen.wait, 20)
            assert "TxDefaultProfile" in cs1.purposes()
        async with connected(port, "CS-2", "ocpp1.6") as cs2:
            await cs2.boot()
            await cs2.start_session("ignored", soc_pct=10.0, power_w=22000.0)
            letters = await asyncio.to_thread(read_dead_letters, kafka_settings, 1)
            assert str(letters[0]["reason"], "utf-8") == (
                "ocpp CS-2/1 session-started: no car in the fleet registry has EVSE CS-2/1 "
                "(evse) nor idToken 'EVCCID-0A1B2C' (id_tokens)"
            )

    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            lines = Lines(process)
            line = lines.seen[lines.until("OCPP central system on ws://127.0.0.1:")]
            assert f":{port}/ocpp/<station id> for 2 station(s) of {stations}; no TLS" in line
            asyncio.run(stations_speak())
            [state] = [s for s in states if s.soc_frac == 0.42]
            assert (state.vehicle_id, state.source, state.site_id) == ("car-a", "ocpp:CS-1/1", SITE)
            assert (tmp_path / "ids" / "ocpp.key").exists()  # the adapter's own identity
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
            reader.stop()
            trust.stop()
    assert PASSWORD not in "".join(lines.seen)


def test_the_password_hash_tool_prints_a_hash_the_central_system_accepts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "idlefleet.ocpp.passwords"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        check=True,
    )
    hashed = PasswordHash.parse(done.stdout.strip())
    assert hashed.matches("correct horse") and not hashed.matches("correct horse ")
    assert "correct horse" not in done.stdout


def test_tls_options_make_a_wss_central_system_and_unreadable_files_are_refused(
    lab_state: Path,
) -> None:
    tmp_path = lab_state
    cert_file, key_file = self_signed(tmp_path)
    stations = stations_file(tmp_path, f"CS-1 {SITE} plain:pw\n")
    flags = ["serve", "--ocpp-port", "9000", "--ocpp-stations", str(stations)]
    tls = ["--ocpp-tls-cert", str(cert_file), "--ocpp-tls-key", str(key_file)]
    config = ocpp_config(build_parser().parse_args([*flags, *tls]), default_sites())
    assert config is not None and config.tls and config.port == 9000
    assert describe(config, 9000) == (
        f"OCPP central system on wss://0.0.0.0:9000/ocpp/<station id> for 1 station(s) of "
        f"{stations}"
    )
    missing = ["--ocpp-tls-cert", str(tmp_path / "none.pem"), "--ocpp-tls-key", str(key_file)]
    with pytest.raises(OcppConfigError, match="--ocpp-tls-cert/--ocpp-tls-key: "):
        ocpp_config(build_parser().parse_args([*flags, *missing]), default_sites())


def test_serve_loads_the_charger_libraries_only_when_ocpp_is_on() -> None:
    """`ocpp` and `websockets` come with the chargers extra: a serve without chargers runs
    without them."""
    loaded = modules_after("import idlefleet.cli, idlefleet.commands.serve, idlefleet.ocpp.runner")
    assert not {"ocpp", "websockets"} & loaded
