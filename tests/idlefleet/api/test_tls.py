"""TLS, and mutual TLS with a client CA, on a real channel."""

from __future__ import annotations

import grpc

from idlefleet.api.auth import Role
from idlefleet.api.server import TlsConfig
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from tests.idlefleet.api.conftest import Pki
from tests.idlefleet.conftest import ServerFactory, Tokens, rpc_error

TIMEOUT_S = 5.0


def _status(channel: grpc.Channel, tokens: Tokens) -> pb.FleetStatus:
    stub = pb_grpc.FleetPlannerStub(channel)
    status: pb.FleetStatus = stub.GetFleetStatus(
        pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=TIMEOUT_S
    )
    return status


def _refused(channel: grpc.Channel, tokens: Tokens) -> grpc.StatusCode:
    code: grpc.StatusCode = rpc_error(lambda: _status(channel, tokens)).code()
    return code


def test_tls_serves_clients_that_trust_the_ca(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens
) -> None:
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key))
    target = f"localhost:{port}"
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(target, trusted) as channel:
        assert _status(channel, tokens).vehicles_known == 4
    untrusted = grpc.ssl_channel_credentials(root_certificates=pki.other_ca_cert)
    with grpc.secure_channel(target, untrusted) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(target) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_client_ca(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens
) -> None:
    tls = TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca_cert)
    _, port = serve(backend, tls)
    target = f"localhost:{port}"
    with_cert = grpc.ssl_channel_credentials(pki.ca_cert, pki.client_key, pki.client_cert)
    with grpc.secure_channel(target, with_cert) as channel:
        assert _status(channel, tokens).vehicles_known == 4
    without_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(target, without_cert) as channel:
        assert _refused(channel, tokens) is grpc.StatusCode.UNAVAILABLE


def test_tls_still_needs_a_token(serve: ServerFactory, backend: LocalBackend, pki: Pki) -> None:
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key))
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_cert)
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        error = rpc_error(
            lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), timeout=TIMEOUT_S)
        )
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
