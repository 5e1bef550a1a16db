"""Bearer tokens mapped to principals and roles: the token file every adapter checks callers
against (the gRPC API's interceptor, the web console's login).

The token file has one `TOKEN ROLE [NAME]` per line (blank lines and `#` comments are
skipped); ROLE is viewer, operator, admin or `owner:VEHICLE_ID`; NAME is the principal the
token speaks for (tokens may share one, as when one is rotated), by default the role (with
the car, for an owner) and the first 8 hex digits of the token's SHA-256. Only SHA-256
digests of the tokens are kept, each presented token is compared with every digest in
constant time, and no token ever reaches a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

MIN_TOKEN_CHARS = 16


class Role(IntEnum):
    """Ordered: each role may do what the ones below it may. An owner is below a viewer: it
    may only call the owner methods for its own car (`Owner`)."""

    OWNER = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class Owner:
    """The owner role of one car: a token file's `owner:VEHICLE_ID`."""

    vehicle_id: str


#: What a token grants: a role, or the owner role of one car.
Grant = Role | Owner
#: A vehicle id as the streams accept one (streams.messages.Identifier).
_VEHICLE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,199}$")


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for, with which role, and for an owner, which car."""

    name: str
    role: Role
    vehicle_id: str | None = None


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the line, never the token."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _principal(token: str, grant: Grant, name: str | None = None) -> Principal:
    tag = _digest(token).hex()[:8]
    if isinstance(grant, Owner):
        return Principal(name or f"owner-{grant.vehicle_id}-{tag}", Role.OWNER, grant.vehicle_id)
    if grant is Role.OWNER:
        raise ValueError("an owner token needs its car: give Owner(vehicle_id)")
    return Principal(name or f"{grant.name.lower()}-{tag}", grant)


def parse_grant(text: str) -> Grant:
    """`viewer`, `operator`, `admin` (any case) or `owner:VEHICLE_ID`; ValueError naming what
    is wrong (never the token)."""
    kind, colon, vehicle_id = text.partition(":")
    if kind.lower() == "owner":
        if not colon or not _VEHICLE_ID.fullmatch(vehicle_id):
            raise ValueError("an owner's role is owner:VEHICLE_ID (a car id, e.g. owner:car-7)")
        return Owner(vehicle_id)
    roles = [r for r in Role if r is not Role.OWNER]
    for role in roles:
        if not colon and kind.upper() == role.name:
            return role
    names = ", ".join(r.name.lower() for r in roles)
    raise ValueError(f"role must be one of {names} or owner:VEHICLE_ID")


class TokenTable:
    """Which principal and role each bearer token has; entries are (TOKEN, GRANT[, NAME]),
    GRANT a Role or an Owner."""

    def __init__(self, entries: Iterable[tuple[str, Grant] | tuple[str, Grant, str]]) -> None:
        self._entries = tuple((_digest(entry[0]), _principal(*entry)) for entry in entries)

    @classmethod
    def parse(cls, text: str, source: str = "token file") -> TokenTable:
        entries: list[tuple[str, Grant, str]] = []
        seen: dict[bytes, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            where = f"{source} line {number}"
            if len(parts) not in (2, 3):
                raise TokenFileError(f"{where}: expected TOKEN ROLE [NAME]")
            token, role_name, name = (*parts, "")[:3]
            try:
                grant = parse_grant(role_name)
            except ValueError as exc:
                raise TokenFileError(f"{where}: {exc}") from None
            if len(token) < MIN_TOKEN_CHARS:
                raise TokenFileError(f"{where}: token shorter than {MIN_TOKEN_CHARS} characters")
            digest = _digest(token)
            if digest in seen:
                raise TokenFileError(f"{where}: same token as line {seen[digest]}")
            seen[digest] = number
            entries.append((token, grant, name))
        if not entries:
            raise TokenFileError(f"{source}: no tokens")
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenFileError(f"{path}: {exc.strerror}") from exc
        return cls.parse(text, str(path))

    def principal_of(self, token: str) -> Principal | None:
        """The token's principal, or None; the time taken does not depend on which entry
        matches."""
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(presented, digest):
                found = principal
        return found

    def caller(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        """The principal of the bearer token in a call's metadata, or None."""
        token = bearer_token(metadata)
        return None if token is None else self.principal_of(token)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The token of an `authorization: Bearer TOKEN` entry, or None."""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
