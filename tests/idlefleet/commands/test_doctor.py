"""`idlefleet doctor` against a live broker and API (all OK), against broken keys and tokens,
and against nothing running (FAIL lines with fixes, exit 1, within its timeouts)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.api.health import broker_probe, solver_answers
from idlefleet.cli import main
from idlefleet.commands.doctor import CHECKS
from idlefleet.credentials import enroll
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.service_backend import wall_clock
from idlefleet.store.embedded import EmbeddedStore
from streams.broker import free_loopback_port
from streams.clients import KafkaSettings
from streams.identity import Authority, Identity
from streams.topics import Stream
from streams.trust import Trust, publish_enrollments, revocation_of
from tests.idlefleet.client.conftest import token_file
from tests.idlefleet.conftest import SETTINGS, SITES, ServerFactory, Tokens


def findings(out: str) -> dict[str, str]:
    """Each printed line by its check's name."""
    return {line.split()[1]: line for line in out.splitlines()}


def use_store(monkeypatch: pytest.MonkeyPatch, store: EmbeddedStore, endpoint: str) -> None:
    """IDLEFLEET_STORE_* naming `store`'s bucket at `endpoint` with its lab credentials."""
    monkeypatch.setenv("IDLEFLEET_STORE_URL", store.url)
    monkeypatch.setenv("IDLEFLEET_STORE_ENDPOINT", endpoint)
    monkeypatch.setenv("IDLEFLEET_STORE_ACCESS_KEY_ID", store.access_key_id)
    monkeypatch.setenv("IDLEFLEET_STORE_SECRET_ACCESS_KEY", store.secret_access_key)


@pytest.fixture
def live(
    serve: ServerFactory,
    kafka_settings: KafkaSettings,
    tokens: Tokens,
    own_environment: Path,
    tmp_path: Path,
    embedded_store: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """A broker with the topics, an API on the wall clock serving while the broker answers, a
    viewer token, this machine's identity enrolled by the lab authority, and a store: doctor's
    options."""
    use_store(monkeypatch, embedded_store, embedded_store.endpoint_url)
    backend = LocalBackend(SITES, SETTINGS, wall_clock)
    probes = {"broker": broker_probe(kafka_settings.bootstrap_servers), "solver": solver_answers}
    _, port = serve(backend, probes=probes)
    authority = Authority.load_or_create(own_environment / "authority.key")
    identity = Identity.load_or_create(own_environment / "forecast.key", "forecast", "adapter")
    enroll(kafka_settings, authority, [identity])
    viewer = token_file(tmp_path, tokens.by_role[Role.VIEWER])
    return [
        "doctor",
        "--bootstrap-servers",
        kafka_settings.bootstrap_servers,
        "--topic-prefix",
        kafka_settings.topic_prefix,
        "--target",
        f"127.0.0.1:{port}",
        "--token-file",
        str(viewer),
    ]


def test_everything_live_is_ok(live: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(live) == 0
    lines = findings(capsys.readouterr().out)
    assert list(lines) == [check.name for check in CHECKS]
    assert all(line.startswith("OK ") for line in lines.values()), lines
    assert f"all {len(Stream)} " in lines["kafka"] and "is SERVING" in lines["api"]
    assert "forecast k-" in lines["keys"] and "enrolled and in force" in lines["keys"]
    assert (
        "agents ask for" in lines["onnxruntime"] and "CPUExecutionProvider" in lines["onnxruntime"]
    )
    assert "from this machine's" in lines["clock"]
    assert "stores, returns and presigns objects" in lines["store"]


def test_a_store_that_is_down_fails_with_the_fix(
    live: list[str],
    embedded_store: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_store(monkeypatch, embedded_store, f"http://127.0.0.1:{free_loopback_port()}")
    assert main(live) == 1
    line = findings(capsys.readouterr().out)["store"]
    assert line.startswith("FAIL") and "unreachable" in line and "IDLEFLEET_STORE_ENDPOINT" in line


def test_a_revoked_key_and_a_loose_file_fail_with_the_fix(
    live: list[str],
    kafka_settings: KafkaSettings,
    own_environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    authority = Authority.load(own_environment / "authority.key")
    identity = Identity.load(own_environment / "forecast.key")
    trust = Trust(kafka_settings, authority.public_key).start()
    try:
        revoked = revocation_of(trust.registry, identity.key_id, datetime.now(UTC))
    finally:
        trust.stop()
    publish_enrollments(kafka_settings, authority, [revoked])
    assert main(live) == 1
    keys = findings(capsys.readouterr().out)["keys"]
    assert keys.startswith("FAIL") and "was revoked" in keys and "idlefleet keys new" in keys
    (own_environment / "forecast.key").chmod(0o644)
    assert main(live) == 1
    keys = findings(capsys.readouterr().out)["keys"]
    assert "mode 644" in keys and f"chmod 600 {own_environment / 'forecast.key'}" in keys


def test_an_unenrolled_key_fails(
    live: list[str], own_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Identity.load_or_create(own_environment / "car-9.key", "car-9", "car")
    assert main(live) == 1
    keys = findings(capsys.readouterr().out)["keys"]
    assert "car car-9 k-" in keys and "not enrolled" in keys and "keys enroll" in keys


def test_a_bad_token_fails_as_unauthenticated(
    live: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = token_file(tmp_path, "an-unknown-token-0123456789", "wrong")
    assert main([*live, "--token-file", str(wrong), "--json"]) == 1
    rows = {row["check"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["api"]["level"] == "OK"
    assert rows["token"]["level"] == "FAIL" and "UNAUTHENTICATED" in rows["token"]["summary"]
    assert "--tokens" in rows["token"]["fix"] and rows["clock"]["level"] == "WARN"


def test_without_identities_or_a_token_the_checks_say_so(
    live: list[str], own_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (own_environment / "forecast.key").unlink()
    argv = [arg for arg in live if not arg.endswith("/token")]
    argv.remove("--token-file")
    assert main(argv) == 1
    lines = findings(capsys.readouterr().out)
    assert lines["keys"].startswith("WARN") and "no identity configured" in lines["keys"]
    assert lines["token"].startswith("FAIL  token        no token")
    assert str(own_environment / "lab-token") in lines["token"]


def test_nothing_running_fails_with_fixes_within_the_timeouts(own_environment: Path) -> None:
    argv = ["--bootstrap-servers", f"127.0.0.1:{free_loopback_port()}"]
    argv += ["--target", f"127.0.0.1:{free_loopback_port()}", "--timeout", "3"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "idlefleet.cli", "doctor", *argv],
        capture_output=True,
        text=True,
        timeout=sum(check.timeout_s for check in CHECKS),
    )
    took_s = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = findings(result.stdout)
    for name in ("kafka", "api"):
        assert lines[name].startswith("FAIL") and " -> fix: " in lines[name]
    assert "no Kafka broker answers" in lines["kafka"] and "UNAVAILABLE" in lines["api"]
    assert lines["token"].startswith("WARN") and "not checked: api failed" in lines["token"]
    assert took_s < 60.0


def test_a_token_file_others_may_read_is_a_warning(
    live: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    token = Path(live[live.index("--token-file") + 1])
    token.chmod(0o644)
    assert main(live) == 0  # a warning, not a failure
    line = findings(capsys.readouterr().out)["token"]
    assert line.startswith("WARN") and f"chmod 600 {token}" in line
