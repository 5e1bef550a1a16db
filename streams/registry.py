"""The fleet registry: who holds which public keys, as the fleet authority enrolled them.

The registry is the state of the compacted `identities` topic, read from the start by every
process that checks records (streams.signing verifies each enrollment's authority signature
before it reaches `Registry.apply`). Rotation needs no downtime: a holder enrolls a second
key, switches to it, and the operator revokes the first. Revocation is final: a key id once
seen revoked stays revoked whatever is published for it later.
"""

from __future__ import annotations

import hashlib
import threading

from streams.errors import MessageError
from streams.identity import key_id_of
from streams.messages import Enrollment


def check_key_id(enrollment: Enrollment) -> None:
    """MessageError unless the enrollment's key id is the id of its public keys."""
    derived = key_id_of(
        bytes.fromhex(enrollment.signing_public_key),
        bytes.fromhex(enrollment.agreement_public_key),
    )
    if enrollment.key_id != derived:
        raise MessageError(f"key_id {enrollment.key_id!r} is not the id of its keys")


def authority_key_id(public_key: bytes) -> str:
    """The key id the authority signs enrollments under: `a-` and 24 hex digits."""
    return "a-" + hashlib.sha256(public_key).hexdigest()[:24]


class Registry:
    """Enrollments by key id; thread-safe. `authority_public_key` is the raw Ed25519 key."""

    def __init__(self, authority_public_key: bytes) -> None:
        if len(authority_public_key) != 32:
            raise ValueError("the authority's public key is 32 raw bytes")
        self.authority_public_key = authority_public_key
        self.authority_key_id = authority_key_id(authority_public_key)
        self._lock = threading.Lock()
        self._entries: dict[str, Enrollment] = {}

    def apply(self, enrollment: Enrollment) -> None:
        """Record an authority-signed enrollment; MessageError if its key id is not its keys'."""
        check_key_id(enrollment)
        with self._lock:
            known = self._entries.get(enrollment.key_id)
            if known is not None and known.revoked_at is not None:
                return
            self._entries[enrollment.key_id] = enrollment

    def get(self, key_id: str) -> Enrollment | None:
        # no lock: a dict read is atomic, and `apply` replaces whole entries
        return self._entries.get(key_id)

    def service_key(self) -> Enrollment | None:
        """The newest enrolled, unrevoked service key: the one cars address their records to."""
        with self._lock:
            live = [
                entry
                for entry in self._entries.values()
                if entry.role == "service" and entry.revoked_at is None
            ]
        return max(live, key=lambda entry: (entry.enrolled_at, entry.key_id), default=None)

    def key_of(self, principal: str, role: str) -> Enrollment | None:
        """The newest enrolled, unrevoked key of `principal` in `role` (a car's: the one its
        work keys are wrapped to)."""
        with self._lock:
            live = [
                entry
                for entry in self._entries.values()
                if entry.principal == principal and entry.role == role and entry.revoked_at is None
            ]
        return max(live, key=lambda entry: (entry.enrolled_at, entry.key_id), default=None)

    def entries(self) -> list[Enrollment]:
        with self._lock:
            return sorted(self._entries.values(), key=lambda entry: entry.key_id)
