"""Signed records: who wrote each record, checked before anything believes it.

A record carries its proof in Kafka headers, over the bytes `idlefleet/1 NUL stream NUL key
NUL value` (the stream's logical name, so a record cannot be replayed onto another topic):

- `idf-key`: the writer's key id (streams.identity), or the authority's for enrollments;
- `idf-sig`: an Ed25519 signature (64 bytes) anyone can check against the registry; or, when
  `idf-to` is present, an HMAC-SHA256 (32 bytes) under the key the writer and the service
  key named by `idf-to` agree (X25519, then HKDF-SHA256). Cars send their high-volume records
  (telemetry, heartbeats, results) that way: checking an HMAC costs a microsecond against an
  Ed25519 verification's hundred, and only the car and the service can make it.

`WRITERS` says which roles may write each stream, and which field of a record must name the
writer: a car signs only its own telemetry, heartbeats and results; only a service signs
assignments. A record that is unsigned, signed by an unknown, revoked or wrong key, or by a
role that may not write its stream is refused with the reason (the reader dead-letters it).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from streams.errors import MessageError, PublishError
from streams.identity import Authority, Identity, verify_signature
from streams.messages import Enrollment, Message
from streams.registry import Registry, authority_key_id
from streams.topics import Stream

KEY_HEADER = "idf-key"
SIG_HEADER = "idf-sig"
TO_HEADER = "idf-to"
Headers = list[tuple[str, bytes]]

#: For each stream, the roles that may write it and the field that must name the writer
#: (None: any record of the stream).
WRITERS: dict[Stream, dict[str, str | None]] = {
    Stream.TELEMETRY: {"car": "vehicle_id", "adapter": None},
    Stream.HEARTBEATS: {"car": "vehicle_id"},
    Stream.RESULTS: {"car": "vehicle_id"},
    Stream.ASSIGNMENTS: {"service": None},
    Stream.JOBS: {"service": None, "adapter": None},
    Stream.SOLAR_FORECASTS: {"service": None, "adapter": None},
    Stream.GRID_SIGNALS: {"service": None, "adapter": None},
    Stream.DR_EVENTS: {"service": None, "adapter": None},
}
#: Streams whose records are authenticated pairwise with the service (an HMAC).
PAIRWISE: frozenset[Stream] = frozenset({Stream.TELEMETRY, Stream.HEARTBEATS, Stream.RESULTS})


def signed_bytes(stream: Stream, key: bytes | None, value: bytes) -> bytes:
    return b"idlefleet/1\0" + stream.value.encode() + b"\0" + (key or b"") + b"\0" + value


class _PairwiseKeys:
    """Pairwise HMAC keys by (own key id, peer key id), agreed once and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], bytes] = {}

    def key(self, own: Identity, peer: Enrollment) -> bytes:
        pair = (own.key_id, peer.key_id)
        with self._lock:
            known = self._keys.get(pair)
        if known is not None:
            return known
        secret = own.exchange(bytes.fromhex(peer.agreement_public_key))
        low, high = sorted(pair)
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"idlefleet pairwise v1\0{low}\0{high}".encode(),
        ).derive(secret)
        with self._lock:
            self._keys[pair] = derived
        return derived


class RecordSigner:
    """Signs records for the identities a process holds (one per car for a car agent)."""

    def __init__(self, identities: Sequence[Identity], registry: Registry | None = None) -> None:
        if not identities:
            raise ValueError("a signer needs at least one identity")
        self._identities = list(identities)
        self._by_principal = {identity.principal: identity for identity in identities}
        self._registry = registry
        self._pairwise = _PairwiseKeys()

    def headers(self, stream: Stream, message: Message, key: bytes | None, value: bytes) -> Headers:
        """The headers that prove this process wrote the record; PublishError if it may not."""
        identity = self._identity_for(stream, message)
        data = signed_bytes(stream, key, value)
        if stream not in PAIRWISE:
            return [(KEY_HEADER, identity.key_id.encode()), (SIG_HEADER, identity.sign(data))]
        peer = None if self._registry is None else self._registry.service_key()
        if peer is None:
            raise PublishError(f"cannot sign {stream.value}: no service key is enrolled yet")
        mac = hmac.new(self._pairwise.key(identity, peer), data, hashlib.sha256).digest()
        return [
            (KEY_HEADER, identity.key_id.encode()),
            (TO_HEADER, peer.key_id.encode()),
            (SIG_HEADER, mac),
        ]

    def _identity_for(self, stream: Stream, message: Message) -> Identity:
        """The identity the record names (a car's own record), else one whose role may write
        any record of the stream."""
        allowed = WRITERS.get(stream, {})
        for role, field in allowed.items():
            named = None if field is None else self._by_principal.get(getattr(message, field))
            if named is not None and named.role == role:
                return named
        for identity in self._identities:
            if identity.role in allowed and allowed[identity.role] is None:
                return identity
        raise PublishError(f"no identity of this process may write this {stream.value} record")


class AuthoritySigner:
    """Signs enrollments with the fleet authority's key (the operator's `enroll` and `revoke`)."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority
        self._key_id = authority_key_id(authority.public_key).encode()

    def headers(self, stream: Stream, message: Message, key: bytes | None, value: bytes) -> Headers:
        if stream is not Stream.IDENTITIES:
            raise PublishError(f"the fleet authority writes only enrollments, not {stream.value}")
        return [
            (KEY_HEADER, self._key_id),
            (SIG_HEADER, self._authority.sign(signed_bytes(stream, key, value))),
        ]


class Authenticator:
    """Checks records against the registry; `identities` are the reader's own keys (for HMACs)."""

    def __init__(self, registry: Registry, identities: Sequence[Identity] = ()) -> None:
        self.registry = registry
        self._own = {identity.key_id: identity for identity in identities}
        self._pairwise = _PairwiseKeys()

    def verify(
        self,
        stream: Stream,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> Enrollment | None:
        """The writer's enrollment (None for the authority); MessageError when not proven."""
        found = {name: data for name, data in headers or () if name in _PROOF_HEADERS}
        key_id_bytes, signature = found.get(KEY_HEADER), found.get(SIG_HEADER)
        if key_id_bytes is None or signature is None:
            raise MessageError("unsigned record (no idf-key and idf-sig headers)")
        key_id = key_id_bytes.decode(errors="replace")
        data = signed_bytes(stream, key, value or b"")
        if stream is Stream.IDENTITIES:
            if key_id != self.registry.authority_key_id:
                raise MessageError(f"enrollment signed by {key_id!r}, not the fleet authority")
            if not verify_signature(self.registry.authority_public_key, signature, data):
                raise MessageError("enrollment signature does not match the fleet authority's")
            return None
        writer = self._live(key_id, "signed by")
        allowed = WRITERS.get(stream, {})
        if writer.role not in allowed:
            raise MessageError(
                f"{writer.role} {writer.principal!r} may not write {stream.value} records"
            )
        to_bytes = found.get(TO_HEADER)
        if to_bytes is None:
            if stream in PAIRWISE:
                raise MessageError(f"{stream.value} records must be authenticated to the service")
            if not verify_signature(bytes.fromhex(writer.signing_public_key), signature, data):
                raise MessageError(f"signature does not match key {key_id!r}")
            return writer
        expected = hmac.new(
            self._pair_key(writer, to_bytes.decode(errors="replace")), data, "sha256"
        )
        if not hmac.compare_digest(expected.digest(), signature):
            raise MessageError(f"authenticator does not match key {key_id!r}")
        return writer

    def check_writer(self, stream: Stream, message: Message, writer: Enrollment | None) -> None:
        """MessageError unless the record names its writer where the stream requires it."""
        if writer is None:
            return
        field = WRITERS.get(stream, {}).get(writer.role)
        if field is not None and getattr(message, field) != writer.principal:
            raise MessageError(
                f"{field} {getattr(message, field)!r} is not the writer {writer.principal!r}"
            )

    def _live(self, key_id: str, what: str) -> Enrollment:
        entry = self.registry.get(key_id)
        if entry is None:
            raise MessageError(f"{what} unknown key {key_id!r}")
        if entry.revoked_at is not None:
            raise MessageError(f"{what} revoked key {key_id!r} ({entry.role} {entry.principal!r})")
        return entry

    def _pair_key(self, writer: Enrollment, to_key_id: str) -> bytes:
        receiver = self._live(to_key_id, "addressed to")
        if receiver.role != "service":
            raise MessageError(f"addressed to {receiver.role} key {to_key_id!r}, not a service")
        if to_key_id in self._own:
            return self._pairwise.key(self._own[to_key_id], writer)
        if writer.key_id in self._own:
            return self._pairwise.key(self._own[writer.key_id], receiver)
        raise MessageError(f"this reader holds neither key of the pair ({writer.key_id!r})")


_PROOF_HEADERS = frozenset({KEY_HEADER, SIG_HEADER, TO_HEADER})
