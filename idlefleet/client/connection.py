"""How a client reaches the gRPC API: target, bearer token, TLS, call timeouts.

`add_connection_arguments` adds the options every client command shares; `Connection` opens
the channel from them (`Connection.from_args`) or from keyword arguments (`Connection.open`,
for the SDK). Where each value comes from, first found wins:

- target: `--target HOST:PORT`, `IDLEFLEET_GRPC_TARGET`, `127.0.0.1:50051`;
- token: `--token-file PATH`, `IDLEFLEET_TOKEN`, the lab token file `<state dir>/lab-token`
  (written by a lab `idlefleet serve`). A token file's first word of its first line that is
  not blank or a `#` comment is the token, so a server's `TOKEN ROLE [NAME]` line works too;
- TLS: `--tls-ca PEM` (trust this CA for the server's certificate; default the system's
  roots), `--tls-cert PEM --tls-key PEM` (a client certificate for mutual TLS),
  `--tls-server-name` (the name the server's certificate must carry, when the target's host
  is another).

Plaintext only to loopback (as the server binds plaintext only there), unless `--insecure`:
bearer tokens must not cross a network in clear. A target off loopback without TLS options
uses TLS with the system's roots. Tokens never reach a log, an error or a repr.

gRPC is imported only when a channel opens, so every command's options (and `idlefleet`
itself) load where grpcio is not installed, as on a car agent.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from idlefleet.credentials import state_dir

if TYPE_CHECKING:
    import grpc

log = logging.getLogger(__name__)

TARGET_ENV = "IDLEFLEET_GRPC_TARGET"
TOKEN_ENV = "IDLEFLEET_TOKEN"
DEFAULT_TARGET = "127.0.0.1:50051"
#: The token a lab `idlefleet serve` writes in the state directory.
LAB_TOKEN_FILE = "lab-token"
DEFAULT_TIMEOUT_S = 10.0


class ConnectionConfigError(ValueError):
    """The connection's options do not fit together, or a file cannot be read; the message
    never holds a token."""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to reach the API."""
    group = parser.add_argument_group("fleet API connection")
    group.add_argument(
        "--target",
        help=f"API HOST:PORT (default: {TARGET_ENV}, else {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the bearer token (default: {TOKEN_ENV}, else the lab token "
        f"<state dir>/{LAB_TOKEN_FILE} if present)",
    )
    group.add_argument("--tls-ca", type=Path, help="PEM CA to trust for the server's certificate")
    group.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    group.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    group.add_argument("--tls-server-name", help="name the server's certificate must carry")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext to a target off loopback (the token crosses the network in clear)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds each call may take (default {DEFAULT_TIMEOUT_S:g})",
    )


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, `[v6]`, or `localhost`) is this machine's loopback; any
    other name is not (it may resolve anywhere). The server's rule (idlefleet.api.server)."""
    bare = host.strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def host_of(target: str) -> str:
    """The host of `HOST:PORT` or `[V6]:PORT`; ConnectionConfigError without a port."""
    host, colon, port = target.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ConnectionConfigError(f"target {target!r}: expected HOST:PORT")
    return host


def resolve_target(target: str | None) -> str:
    """`target`, else IDLEFLEET_GRPC_TARGET, else 127.0.0.1:50051."""
    return target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def lab_token_path() -> Path:
    """Where a lab `idlefleet serve` leaves its token: `<state dir>/lab-token`."""
    return state_dir() / LAB_TOKEN_FILE


def read_token_file(path: Path) -> str:
    """The token in `path`: the first word of its first line that is not blank or a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionConfigError(f"token file {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            return words[0]
    raise ConnectionConfigError(f"token file {path}: no token in it")


def find_token(token_file: Path | None) -> tuple[str, str] | None:
    """The token and where it came from: `token_file`, else IDLEFLEET_TOKEN, else the lab
    token file if it exists; None without one (health checks need none, other calls do)."""
    if token_file is not None:
        return read_token_file(token_file), str(token_file)
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, TOKEN_ENV
    lab = lab_token_path()
    return (read_token_file(lab), str(lab)) if lab.is_file() else None


def resolve_token(token_file: Path | None) -> str | None:
    """The token `find_token` finds, or None."""
    found = find_token(token_file)
    return None if found is None else found[0]


def _read_pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConnectionConfigError(f"{what} {path}: {exc.strerror}") from exc


class Connection:
    """A channel to the API, the call metadata (the bearer token) and the call timeout [s].

    Use as a context manager, or call `close()`."""

    def __init__(
        self,
        channel: grpc.Channel,
        target: str,
        *,
        token: str | None,
        secure: bool,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.channel = channel
        self.target = target
        self.secure = secure
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (
            () if token is None else (("authorization", f"Bearer {token}"),)
        )

    @property
    def has_token(self) -> bool:
        return bool(self._metadata)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata for every call (holds the token: never print it)."""
        return self._metadata

    @classmethod
    def open(
        cls,
        target: str | None = None,
        *,
        token: str | None = None,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_server_name: str | None = None,
        insecure: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Connection:
        """A connection to `target` (default: IDLEFLEET_GRPC_TARGET, else 127.0.0.1:50051).

        TLS when any TLS option is given or the target is off loopback; plaintext off
        loopback only with `insecure`. ConnectionConfigError for options that do not fit or
        files that cannot be read. The token is used as given (see `resolve_token`)."""
        import grpc

        target = resolve_target(target)
        host = host_of(target)
        if (tls_cert is None) != (tls_key is None):
            raise ConnectionConfigError("--tls-cert and --tls-key go together")
        if not timeout_s > 0:
            raise ConnectionConfigError(f"--timeout must be > 0 s, got {timeout_s:g}")
        tls_asked = any(v is not None for v in (tls_ca, tls_cert, tls_server_name))
        secure = tls_asked or not (is_loopback(host) or insecure)
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(tls_ca, "--tls-ca"),
                private_key=_read_pem(tls_key, "--tls-key"),
                certificate_chain=_read_pem(tls_cert, "--tls-cert"),
            )
            options = (
                []
                if tls_server_name is None
                else [("grpc.ssl_target_name_override", tls_server_name)]
            )
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            if not is_loopback(host):
                log.warning("plaintext to %s (--insecure): the token crosses it in clear", target)
            channel = grpc.insecure_channel(target)
        return cls(channel, target, token=token, secure=secure, timeout_s=timeout_s)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connection:
        """A connection from `add_connection_arguments`' options."""
        return cls.open(
            args.target,
            token=resolve_token(args.token_file),
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            tls_server_name=args.tls_server_name,
            insecure=args.insecure,
            timeout_s=args.timeout,
        )

    @classmethod
    def from_environment(cls, timeout_s: float = DEFAULT_TIMEOUT_S) -> Connection:
        """A connection from IDLEFLEET_GRPC_TARGET and IDLEFLEET_TOKEN (or the lab token),
        plaintext to loopback and TLS with the system's roots elsewhere."""
        return cls.open(token=resolve_token(None), timeout_s=timeout_s)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        security = "TLS" if self.secure else "plaintext"
        token = "a token" if self.has_token else "no token"
        return f"Connection({self.target}, {security}, {token})"
