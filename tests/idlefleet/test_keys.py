"""`idlefleet keys` as an operator uses it: an authority, a car's own key, enrollment,
rotation and revocation, read back from the registry topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streams.clients import KafkaSettings

IDLEFLEET = [sys.executable, "-m", "idlefleet.cli", "keys"]


def keys(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IDLEFLEET_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(
        [*IDLEFLEET, *args], capture_output=True, text=True, timeout=120, input=stdin, env=env
    )


def registry(tmp_path: Path, kafka: list[str], authority: Path) -> list[dict[str, str]]:
    listed = keys(tmp_path, "list", *kafka, "--authority-key", str(authority))
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_enroll_rotate_and_revoke_a_cars_key(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    kafka = [
        "--bootstrap-servers",
        kafka_settings.bootstrap_servers,
        "--topic-prefix",
        kafka_settings.topic_prefix,
    ]
    authority = tmp_path / "authority.key"
    made = keys(tmp_path, "authority", "--out", str(authority))
    assert made.returncode == 0 and len(made.stdout.strip()) == 64
    assert keys(tmp_path, "authority", "--out", str(authority)).returncode == 2  # kept

    first = keys(tmp_path, "new", "--principal", "car-7", "--role", "car")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "state" / "car-7.key").stat().st_mode & 0o077 == 0
    enrolled = keys(
        tmp_path, "enroll", *kafka, "--authority-key", str(authority), "-", stdin=first.stdout
    )
    assert enrolled.returncode == 0, enrolled.stderr
    [entry] = registry(tmp_path, kafka, authority)
    assert (entry["principal"], entry["role"], entry["revoked_at"]) == ("car-7", "car", None)

    # rotation: a second key for the same car, then the first is revoked
    second = keys(
        tmp_path,
        "new",
        "--principal",
        "car-7",
        "--role",
        "car",
        "--out",
        str(tmp_path / "car-7-next.key"),
    )
    request = tmp_path / "next.json"
    request.write_text(second.stdout)
    assert (
        keys(tmp_path, "enroll", *kafka, "--authority-key", str(authority), str(request)).returncode
        == 0
    )
    revoked = keys(tmp_path, "revoke", *kafka, "--authority-key", str(authority), entry["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    states = {e["key_id"]: e["revoked_at"] for e in registry(tmp_path, kafka, authority)}
    assert len(states) == 2 and states[entry["key_id"]] is not None
    assert sum(state is None for state in states.values()) == 1

    unknown = keys(tmp_path, "revoke", *kafka, "--authority-key", str(authority), "k-nobody")
    assert unknown.returncode == 2 and "not enrolled: k-nobody" in unknown.stderr
    # a request whose key id was edited to someone else's is refused
    forged = json.loads(second.stdout) | {"key_id": entry["key_id"]}
    refused = keys(
        tmp_path, "enroll", *kafka, "--authority-key", str(authority), "-", stdin=json.dumps(forged)
    )
    assert refused.returncode == 2 and "not the id of its keys" in refused.stderr
