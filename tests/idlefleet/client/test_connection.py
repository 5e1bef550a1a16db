"""Where the target, token and TLS come from; plaintext only to loopback unless waived; real
TLS and mutual TLS channels."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.api.server import TlsConfig
from idlefleet.api.server import is_loopback as server_is_loopback
from idlefleet.client.connection import (
    DEFAULT_TARGET,
    LAB_TOKEN_FILE,
    Connection,
    ConnectionConfigError,
    add_connection_arguments,
    find_token,
    is_loopback,
    resolve_target,
)
from idlefleet.client.fleet import FleetClient, FleetError
from idlefleet.queries.local_backend import LocalBackend
from tests.idlefleet.api.conftest import Pki
from tests.idlefleet.client.conftest import token_file
from tests.idlefleet.conftest import ServerFactory, Tokens

SECRET = "s3cret-token-0123456789"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    return parser.parse_args(argv)


def test_the_target_comes_from_the_flag_then_the_environment_then_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_target(None) == DEFAULT_TARGET == "127.0.0.1:50051"
    monkeypatch.setenv("IDLEFLEET_GRPC_TARGET", "planner.example.org:443")
    assert resolve_target(None) == "planner.example.org:443"
    assert resolve_target("10.0.0.1:50051") == "10.0.0.1:50051"


def test_the_token_comes_from_the_file_then_the_environment_then_the_lab_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_environment: Path
) -> None:
    assert find_token(None) is None
    (own_environment / LAB_TOKEN_FILE).write_text(f"{SECRET}-lab\n")
    assert find_token(None) == (f"{SECRET}-lab", str(own_environment / LAB_TOKEN_FILE))
    monkeypatch.setenv("IDLEFLEET_TOKEN", f"{SECRET}-env")
    assert find_token(None) == (f"{SECRET}-env", "IDLEFLEET_TOKEN")
    server_line = tmp_path / "tokens.txt"
    server_line.write_text(f"# my token\n\n{SECRET} operator utility-eon\n")
    assert find_token(server_line) == (SECRET, str(server_line))


@pytest.mark.parametrize(
    ("content", "problem"), [(None, "No such file"), ("# nothing here\n", "no token in it")]
)
def test_a_bad_token_file_is_named_and_nothing_is_sent(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConnectionConfigError) as error:
        Connection.from_args(parse("--token-file", str(path)))
    assert str(path) in str(error.value) and problem in str(error.value)


@pytest.mark.parametrize(
    ("target", "options", "secure"),
    [
        ("127.0.0.1:50051", {}, False),
        ("localhost:50051", {}, False),
        ("[::1]:50051", {}, False),
        ("planner.example.org:443", {}, True),
        ("192.0.2.1:50051", {}, True),
        ("192.0.2.1:50051", {"insecure": True}, False),
        ("127.0.0.1:50051", {"tls_server_name": "planner"}, True),
    ],
)
def test_plaintext_only_to_loopback_unless_waived(
    target: str, options: dict[str, object], secure: bool
) -> None:
    with Connection.open(target, **options) as connection:  # type: ignore[arg-type]
        assert connection.secure is secure


def test_the_client_and_the_server_agree_on_loopback() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "example.org"):
        assert is_loopback(host) == server_is_loopback(host), host


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--target", "planner"], "expected HOST:PORT"),
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "missing-ca.pem"], "--tls-ca missing-ca.pem: No such file"),
        (["--timeout", "0"], "--timeout must be > 0"),
    ],
)
def test_bad_connection_options_are_refused_before_any_call(argv: list[str], problem: str) -> None:
    with pytest.raises(ConnectionConfigError) as error:
        Connection.from_args(parse(*argv))
    assert problem in str(error.value)


def test_a_connection_never_shows_its_token() -> None:
    with Connection.open(token=SECRET) as connection:
        assert SECRET not in repr(connection) and "a token" in repr(connection)
        assert connection.metadata == (("authorization", f"Bearer {SECRET}"),)


def test_tls_with_the_servers_ca_and_mutual_tls_with_a_client_certificate(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens, tmp_path: Path
) -> None:
    for name, pem in (
        ("ca.pem", pki.ca_cert),
        ("cert.pem", pki.client_cert),
        ("key.pem", pki.client_key),
        ("other-ca.pem", pki.other_ca_cert),
    ):
        (tmp_path / name).write_bytes(pem)
    viewer = token_file(tmp_path, tokens.by_role[Role.VIEWER])
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca_cert))
    base = ["--target", f"localhost:{port}", "--token-file", str(viewer), "--timeout", "10"]
    mutual = [*base, "--tls-ca", str(tmp_path / "ca.pem"), "--tls-cert", str(tmp_path / "cert.pem")]
    mutual += ["--tls-key", str(tmp_path / "key.pem")]
    with FleetClient.over(Connection.from_args(parse(*mutual))) as client:
        assert client.fleet_status().vehicles_known == 4
    without_certificate = [*base, "--tls-ca", str(tmp_path / "ca.pem")]
    untrusted = [*base, "--tls-ca", str(tmp_path / "other-ca.pem")]
    plaintext = base
    for argv in (without_certificate, untrusted, plaintext):
        with (
            FleetClient.over(Connection.from_args(parse(*argv))) as client,
            pytest.raises(FleetError) as error,
        ):
            client.fleet_status()
        assert error.value.code == "UNAVAILABLE", argv


def test_the_server_name_may_differ_from_the_targets_host(
    serve: ServerFactory, backend: LocalBackend, pki: Pki, tokens: Tokens, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca_cert)
    _, port = serve(backend, TlsConfig(pki.server_cert, pki.server_key))
    with FleetClient(
        f"127.0.0.1:{port}",
        token=tokens.by_role[Role.VIEWER],
        tls_ca=tmp_path / "ca.pem",
        tls_server_name="localhost",
    ) as client:
        assert client.fleet_status().vehicles_known == 4
