"""Signed records: who wrote each record, checked before anything believes it.

A record carries its proof in one Kafka header, `idf-proof` = `KEY_ID SP TO SP PROOF`, over
the bytes `idlefleet/1 NUL stream NUL key NUL value` (the stream's logical name, so a record
cannot be replayed onto another topic):

- KEY_ID: the writer's key id (streams.identity), or the authority's for enrollments;
- TO empty: PROOF is an Ed25519 signature (64 bytes) anyone can check against the registry;
- TO a service's key id: PROOF is a keyed BLAKE2b-256 MAC (RFC 7693; 32 bytes) under the key
  the writer and that service key agree (X25519, then HKDF-SHA256). Cars send their
  high-volume records (telemetry, heartbeats, results) that way: checking a MAC costs a
  microsecond against an Ed25519 verification's hundred, and only the car and the service
  can make it.

One header, not three: kafka-python parses headers record by record, in Python.

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
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from streams.errors import MessageError, PublishError
from streams.identity import Authority, Identity, verify_signature
from streams.messages import Enrollment, Message
from streams.registry import Registry, authority_key_id
from streams.topics import Stream

PROOF_HEADER = "idf-proof"
Headers = list[tuple[str, bytes]]

#: For each stream, the roles that may write it and the field that must name the writer
#: (None: any record of the stream).
WRITERS: dict[Stream, dict[str, str | None]] = {
    Stream.TELEMETRY: {"car": "vehicle_id", "adapter": None},
    Stream.MEASURED_STATE: {"car": "vehicle_id", "adapter": None},
    Stream.OWNER_PREFERENCES: {"car": "vehicle_id", "service": None},
    Stream.FLEET_REGISTRY: {"service": None},
    Stream.HEARTBEATS: {"car": "vehicle_id"},
    Stream.RESULTS: {"car": "vehicle_id"},
    Stream.ASSIGNMENTS: {"service": None},
    Stream.JOBS: {"service": None, "adapter": None},
    Stream.JOB_CANCELLATIONS: {"service": None},
    Stream.SOLAR_FORECASTS: {"service": None, "adapter": None},
    Stream.GRID_SIGNALS: {"service": None, "adapter": None},
    Stream.DR_EVENTS: {"service": None, "adapter": None},
}
#: Streams whose records are authenticated pairwise with the service (a MAC).
PAIRWISE: frozenset[Stream] = frozenset({Stream.TELEMETRY, Stream.HEARTBEATS, Stream.RESULTS})
#: What signed bytes start with, by stream: a version and the stream's name.
_PREFIXES = {stream: b"idlefleet/1\0" + stream.value.encode() + b"\0" for stream in Stream}


def signed_bytes(stream: Stream, key: bytes | None, value: bytes) -> bytes:
    return b"".join((_PREFIXES[stream], key or b"", b"\0", value))


def proof_header(key_id: str, proof: bytes, to_key_id: str = "") -> tuple[str, bytes]:
    """The header proving a record: by `key_id`, for `to_key_id` (a MAC) or anyone."""
    return PROOF_HEADER, b"%s %s %s" % (key_id.encode(), to_key_id.encode(), proof)


def mac_of(key: bytes) -> Any:
    """A keyed BLAKE2b-256 with nothing hashed yet (hashlib's; copy it for each record)."""
    return hashlib.blake2b(key=key, digest_size=32)


class _PairwiseKeys:
    """Pairwise MAC keys by (own key id, peer key id), agreed once and kept."""

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
        """The header that proves this process wrote the record; PublishError if it may not."""
        identity = self._identity_for(stream, message)
        data = signed_bytes(stream, key, value)
        if stream not in PAIRWISE:
            return [proof_header(identity.key_id, identity.sign(data))]
        peer = None if self._registry is None else self._registry.service_key()
        if peer is None:
            raise PublishError(f"cannot sign {stream.value}: no service key is enrolled yet")
        mac = mac_of(self._pairwise.key(identity, peer)).copy()
        mac.update(data)
        return [proof_header(identity.key_id, mac.digest(), peer.key_id)]

    def _identity_for(self, stream: Stream, message: Message) -> Identity:
        """The identity the record names (a car's own record), else one whose role may write
        any record of the stream."""
        allowed = WRITERS.get(stream, {})
        for role, naming in allowed.items():
            named = None if naming is None else self._by_principal.get(getattr(message, naming))
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
        self._key_id = authority_key_id(authority.public_key)

    def headers(self, stream: Stream, message: Message, key: bytes | None, value: bytes) -> Headers:
        if stream is not Stream.IDENTITIES:
            raise PublishError(f"the fleet authority writes only enrollments, not {stream.value}")
        return [proof_header(self._key_id, self._authority.sign(signed_bytes(stream, key, value)))]


@dataclass(frozen=True)
class _Pair:
    """A writer and the service key its records are authenticated to, with their MAC (keyed,
    nothing hashed yet: copied for each record)."""

    writer: Enrollment
    receiver: Enrollment
    mac: Any = field(repr=False)


class Authenticator:
    """Checks records against the registry; `identities` are the reader's own keys (for MACs)."""

    def __init__(self, registry: Registry, identities: Sequence[Identity] = ()) -> None:
        self.registry = registry
        self._own = {identity.key_id: identity for identity in identities}
        self._pairwise = _PairwiseKeys()
        self._pairs: dict[tuple[bytes, bytes], _Pair] = {}  # by (writer, receiver) key ids

    def verify(
        self,
        stream: Stream,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> Enrollment | None:
        """The writer's enrollment (None for the authority); MessageError when not proven."""
        proof = None
        for name, header_value in headers or ():
            if name == PROOF_HEADER:
                proof = header_value
        if proof is None:
            raise MessageError("unsigned record (no idf-proof header)")
        parts = proof.split(b" ", 2)
        if len(parts) != 3:
            raise MessageError("malformed idf-proof header")
        key_id_bytes, to_bytes, signature = parts
        data = signed_bytes(stream, key, value or b"")
        if to_bytes:
            return self._verify_pairwise(stream, data, key_id_bytes, to_bytes, signature)
        key_id = key_id_bytes.decode(errors="replace")
        if stream is Stream.IDENTITIES:
            if key_id != self.registry.authority_key_id:
                raise MessageError(f"enrollment signed by {key_id!r}, not the fleet authority")
            if not verify_signature(self.registry.authority_public_key, signature, data):
                raise MessageError("enrollment signature does not match the fleet authority's")
            return None
        writer = self._writer(stream, key_id)
        if stream in PAIRWISE:
            raise MessageError(f"{stream.value} records must be authenticated to the service")
        if not verify_signature(bytes.fromhex(writer.signing_public_key), signature, data):
            raise MessageError(f"signature does not match key {key_id!r}")
        return writer

    def check_writer(self, stream: Stream, message: Message, writer: Enrollment | None) -> None:
        """MessageError unless the record names its writer where the stream requires it."""
        if writer is None:
            return
        naming = WRITERS.get(stream, {}).get(writer.role)
        if naming is not None and getattr(message, naming) != writer.principal:
            raise MessageError(
                f"{naming} {getattr(message, naming)!r} is not the writer {writer.principal!r}"
            )

    def _verify_pairwise(
        self, stream: Stream, data: bytes, writer_id: bytes, to_id: bytes, mac: bytes
    ) -> Enrollment:
        """The hot path (cars' records): the pair is agreed once, and used while the registry
        holds both entries unchanged (a revocation replaces an entry)."""
        pair = self._pairs.get((writer_id, to_id))
        get = self.registry.get
        if (
            pair is None
            or get(pair.writer.key_id) is not pair.writer
            or get(pair.receiver.key_id) is not pair.receiver
        ):
            pair = self._pair_of(stream, writer_id, to_id)
        elif pair.writer.role not in WRITERS.get(stream, {}):
            self._writer(stream, pair.writer.key_id)  # raises, naming the role
        expected = pair.mac.copy()
        expected.update(data)
        if not hmac.compare_digest(expected.digest(), mac):
            raise MessageError(f"authenticator does not match key {pair.writer.key_id!r}")
        return pair.writer

    def _pair_of(self, stream: Stream, writer_id: bytes, to_id: bytes) -> _Pair:
        writer = self._writer(stream, writer_id.decode(errors="replace"))
        to_key_id = to_id.decode(errors="replace")
        receiver = self._live(to_key_id, "addressed to")
        if receiver.role != "service":
            raise MessageError(f"addressed to {receiver.role} key {to_key_id!r}, not a service")
        if to_key_id in self._own:
            mac_key = self._pairwise.key(self._own[to_key_id], writer)
        elif writer.key_id in self._own:
            mac_key = self._pairwise.key(self._own[writer.key_id], receiver)
        else:
            raise MessageError(f"this reader holds neither key of the pair ({writer.key_id!r})")
        pair = _Pair(writer, receiver, mac_of(mac_key))
        self._pairs[(writer_id, to_id)] = pair
        return pair

    def _writer(self, stream: Stream, key_id: str) -> Enrollment:
        """The enrolled, unrevoked writer of `key_id`, if its role may write `stream`."""
        writer = self._live(key_id, "signed by")
        if writer.role not in WRITERS.get(stream, {}):
            raise MessageError(
                f"{writer.role} {writer.principal!r} may not write {stream.value} records"
            )
        return writer

    def _live(self, key_id: str, what: str) -> Enrollment:
        entry = self.registry.get(key_id)
        if entry is None:
            raise MessageError(f"{what} unknown key {key_id!r}")
        if entry.revoked_at is not None:
            raise MessageError(f"{what} revoked key {key_id!r} ({entry.role} {entry.principal!r})")
        return entry
