"""A real API server over the planned fleet, clients of it, and an environment without a
user's own target, token or state directory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.client.fleet import FleetClient
from idlefleet.queries.local_backend import LocalBackend
from streams.catalog import T0
from streams.messages import Result
from tests.idlefleet.api.conftest import pki  # noqa: F401  (the test PKI, for TLS)
from tests.idlefleet.conftest import ServerFactory, Tokens


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No IDLEFLEET_GRPC_TARGET or IDLEFLEET_TOKEN, and a state directory of the test's own
    (so a lab token in the user's home is never read). The state directory."""
    monkeypatch.delenv("IDLEFLEET_GRPC_TARGET", raising=False)
    monkeypatch.delenv("IDLEFLEET_TOKEN", raising=False)
    monkeypatch.delenv("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("IDLEFLEET_AUTHORITY_PUBLIC_KEY", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("IDLEFLEET_STATE_DIR", str(state))
    return state


@pytest.fixture
def target(serve: ServerFactory, backend: LocalBackend) -> str:
    """HOST:PORT of a plaintext server over the planned fleet."""
    _, port = serve(backend)
    return f"127.0.0.1:{port}"


@pytest.fixture
def viewer(target: str, tokens: Tokens) -> Iterator[FleetClient]:
    with FleetClient(target, token=tokens.by_role[Role.VIEWER], timeout_s=20) as client:
        yield client


@pytest.fixture
def operator(target: str, tokens: Tokens) -> Iterator[FleetClient]:
    with FleetClient(target, token=tokens.by_role[Role.OPERATOR], timeout_s=20) as client:
        yield client


def token_file(directory: Path, token: str, name: str = "token") -> Path:
    path = directory / name
    path.write_text(f"{token}\n")
    path.chmod(0o600)
    return path


def accept_shards(backend: LocalBackend, job_id: str, shards: range) -> None:
    """Lease each shard of `job_id` to car-a and report it done, as results would."""
    for shard in shards:
        with backend.lock:
            lease = backend.ledger.lease(
                job_id, shard, "car-a", T0 + timedelta(minutes=15), f"asg-{job_id}-{shard}"
            )
            accepted = backend.ledger.accept(
                Result(
                    work_id=lease.work_id,
                    assignment_id=lease.assignment_id,
                    job_id=job_id,
                    shard_index=shard,
                    vehicle_id="car-a",
                    status="done",
                    output_uri=f"file:///srv/out/{job_id}/{shard}.npy",
                    output_sha256="0" * 64,
                    finished_at=datetime(2020, 6, 1, 12, 15, tzinfo=UTC),
                )
            )
        assert accepted
