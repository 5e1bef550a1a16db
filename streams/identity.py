"""Key pairs of cars, adapters, services and the fleet authority, and the files that hold them.

Every participant has its own `Identity`, made where it runs (on the car, in the service):
an Ed25519 key pair that signs records anyone can check, and an X25519 key pair that agrees a
pairwise key with the service for records only the two of them read (streams.signing). Only
the public halves leave the machine, in an `Enrollment` the fleet authority signs
(streams.registry). A key id is derived from both public keys, so it cannot be claimed for
someone else's keys.

An identity file is PEM: the two private keys (PKCS #8, unencrypted), written with mode 0600
and refused when other users may read it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from streams.messages import Enrollment

Role = Literal["car", "service", "adapter"]

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def key_id_of(signing_public_key: bytes, agreement_public_key: bytes) -> str:
    """The id of a pair of raw public keys: `k-` and 24 hex digits of their sha256."""
    return "k-" + hashlib.sha256(signing_public_key + agreement_public_key).hexdigest()[:24]


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when `signature` is the Ed25519 signature of `data` by raw `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """One participant's private keys; `principal` names it (a car id, `planner`, `forecast`)."""

    principal: str
    role: Role
    signing_key: Ed25519PrivateKey = field(repr=False)
    agreement_key: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, principal: str, role: Role) -> Identity:
        return cls(principal, role, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @cached_property
    def signing_public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(*_RAW)

    @cached_property
    def agreement_public_key(self) -> bytes:
        return self.agreement_key.public_key().public_bytes(*_RAW)

    @cached_property
    def key_id(self) -> str:
        return key_id_of(self.signing_public_key, self.agreement_public_key)

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of `data` [64 bytes]."""
        return self.signing_key.sign(data)

    def exchange(self, peer_agreement_key: bytes) -> bytes:
        """The X25519 shared secret with a peer's raw public agreement key [32 bytes]."""
        return self.agreement_key.exchange(X25519PublicKey.from_public_bytes(peer_agreement_key))

    def enrollment(self, enrolled_at: datetime) -> Enrollment:
        """The registry entry of this identity's public keys (to be signed by the authority)."""
        return Enrollment(
            key_id=self.key_id,
            principal=self.principal,
            role=self.role,
            signing_public_key=self.signing_public_key.hex(),
            agreement_public_key=self.agreement_public_key.hex(),
            enrolled_at=enrolled_at,
        )

    # -- files ----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the identity to `path` (mode 0600), creating it; FileExistsError if it exists."""
        header = f"# idlefleet identity: {self.role} {self.principal}\n".encode()
        write_private(path, header + _pem(self.signing_key) + _pem(self.agreement_key))

    @classmethod
    def load(cls, path: Path) -> Identity:
        """Read an identity file; ValueError when it is malformed or readable by others."""
        text = _read_private(path)
        first, _, rest = text.partition(b"\n")
        parts = first.decode(errors="replace").split()
        if len(parts) != 5 or parts[:3] != ["#", "idlefleet", "identity:"]:
            raise ValueError(f"{path}: not an idlefleet identity file")
        role, principal = parts[3], parts[4]
        if role not in ("car", "service", "adapter"):
            raise ValueError(f"{path}: unknown role {role!r}")
        marker = b"-----END PRIVATE KEY-----"
        pems = [chunk + marker for chunk in rest.split(marker) if chunk.strip()]
        if len(pems) != 2:
            raise ValueError(f"{path}: expected two private keys, found {len(pems)}")
        signing = serialization.load_pem_private_key(pems[0], password=None)
        agreement = serialization.load_pem_private_key(pems[1], password=None)
        if not isinstance(signing, Ed25519PrivateKey) or not isinstance(
            agreement, X25519PrivateKey
        ):
            raise ValueError(f"{path}: expected an Ed25519 and an X25519 private key")
        return cls(principal, role, signing, agreement)  # type: ignore[arg-type]

    @classmethod
    def load_or_create(cls, path: Path, principal: str, role: Role) -> Identity:
        """The identity at `path`, made there first if there is none (on first start)."""
        if not path.exists():
            cls.generate(principal, role).save(path)
        identity = cls.load(path)
        if (identity.principal, identity.role) != (principal, role):
            raise ValueError(
                f"{path} holds {identity.role} {identity.principal!r}, not {role} {principal!r}"
            )
        return identity


@dataclass(frozen=True)
class Authority:
    """The fleet authority's Ed25519 key: it signs the registry's enrollments."""

    signing_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> Authority:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(*_RAW)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data)

    def save(self, path: Path) -> None:
        """Write the key (mode 0600, PKCS #8 PEM); FileExistsError if `path` exists."""
        write_private(path, _pem(self.signing_key))

    @classmethod
    def load(cls, path: Path) -> Authority:
        key = serialization.load_pem_private_key(_read_private(path), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> Authority:
        if not path.exists():
            cls.generate().save(path)
        return cls.load(path)


def _pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 (its missing parents too) and write `data`;
    FileExistsError if anything (a symlink too) stands at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _read_private(path: Path) -> bytes:
    """The bytes of a private key file; ValueError when group or others may access it."""
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path}: group or others may access it; chmod 600 {path}")
    return path.read_bytes()
