"""The API's own fixtures: a channel and stub to a server over the planned backend, and a
test PKI for TLS."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from tests.idlefleet.conftest import ServerFactory


@pytest.fixture
def channel(serve: ServerFactory, backend: LocalBackend) -> Iterator[grpc.Channel]:
    """A plaintext channel to a server over `backend`."""
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.FleetPlannerStub:
    return pb_grpc.FleetPlannerStub(channel)


class _WithMetadata(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed metadata (a bearer token) to every call, for clients that take none."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), *self._metadata))

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def with_metadata(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> grpc.Channel:
    """`channel`, every call on it carrying `metadata`."""
    return grpc.intercept_channel(channel, _WithMetadata(metadata))


@dataclass(frozen=True)
class Pki:
    """PEM bytes: a CA, a server certificate for 127.0.0.1/localhost and a client one."""

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes
    other_ca_cert: bytes


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def pki() -> Pki:
    pem = serialization.Encoding.PEM
    ca_key, server_key, client_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca = _issue("idlefleet test CA", ca_key, None, ca=True)
    issuer = (ca.subject, ca_key)
    return Pki(
        ca_cert=ca.public_bytes(pem),
        server_cert=_issue("localhost", server_key, issuer, server=True).public_bytes(pem),
        server_key=_pem_key(server_key),
        client_cert=_issue("planner-client", client_key, issuer).public_bytes(pem),
        client_key=_pem_key(client_key),
        other_ca_cert=_issue("another CA", other_key, None, ca=True).public_bytes(pem),
    )
