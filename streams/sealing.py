"""Job data sealed end to end: AES-256-GCM objects, and data keys wrapped to one reader's key.

A job has one random 32-byte key, made by whoever submits it. Each part of the job is sealed
under its own key derived from it (HKDF-SHA256): the model under `model_key`, shard i's input
and output under `shard_key(i)`. The submitter wraps the job key to the service's X25519 key;
the service wraps only a shard's key (and the model's, when sealed) to the car it leases that
shard to, so a car can open the shards it was given and no other.

A sealed object is `MAGIC + nonce (12 bytes) + ciphertext + tag (16 bytes)`, with a random
nonce per object. The associated data names what the object is (`part_context`), so a
ciphertext moved to another job, shard or part fails its tag check like a tampered or
truncated one. `open_sealed` opens a whole object; `SealedReader` opens one as its bytes
arrive (decrypting while it downloads) and hands out the plaintext only once the tag checks.

A wrapped key is sealed under a key agreed between a fresh X25519 key pair and the reader's
enrolled agreement key (ECIES: X25519, HKDF-SHA256, AES-256-GCM); only the holder of that
enrolled private key can unwrap it, and the context it was wrapped for must match.
"""

from __future__ import annotations

import os
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import (
    AEADDecryptionContext,
    Cipher,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from streams.identity import Identity
from streams.messages import WrappedKey

#: Bytes every sealed object starts with (not the `.npy` magic: a sealed shard never parses).
MAGIC = b"IDFSEAL1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: Bytes a sealed object has beyond its plaintext.
OVERHEAD_BYTES = len(MAGIC) + NONCE_BYTES + TAG_BYTES
_HEAD_BYTES = len(MAGIC) + NONCE_BYTES

Part = Literal["model", "input", "output"]


class SealError(ValueError):
    """A sealed object or wrapped key that cannot be opened: tampered, truncated, for another
    part or reader, or not sealed at all. `reason` is one line, naming no key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_job_key() -> bytes:
    """A fresh random job key [32 bytes]."""
    return os.urandom(KEY_BYTES)


def _derive(secret: bytes, info: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info.encode())
    return hkdf.derive(secret)


def model_key(job_key: bytes, job_id: str) -> bytes:
    """The key the job's model is sealed under."""
    return _derive(job_key, f"idlefleet/1 model {job_id}")


def shard_key(job_key: bytes, job_id: str, shard_index: int) -> bytes:
    """The key shard `shard_index`'s input and its outputs are sealed under."""
    return _derive(job_key, f"idlefleet/1 shard {job_id} {shard_index}")


def part_context(job_id: str, part: Part, shard_index: int | None = None) -> str:
    """What a sealed object is, bound to its ciphertext (AES-GCM associated data)."""
    if part == "model":
        return f"idlefleet/1 {job_id} model"
    if shard_index is None:
        raise ValueError(f"a shard's {part} needs its shard index")
    return f"idlefleet/1 {job_id} {part} {shard_index}"


def job_key_context(job_id: str) -> str:
    """What a job key is wrapped for (to a service key)."""
    return f"idlefleet/1 job key {job_id}"


def item_key_context(
    job_id: str, part: Literal["model", "shard"], vehicle_id: str, shard_index: int
) -> str:
    """What a model or shard key is wrapped for: one shard's work on one car."""
    return f"idlefleet/1 {part} key {job_id} {shard_index} for {vehicle_id}"


def seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    """`plaintext` sealed under `key` for `context`, with a fresh random nonce."""
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def is_sealed(data: bytes) -> bool:
    """Whether `data` starts like a sealed object."""
    return data[: len(MAGIC)] == MAGIC


def open_sealed(key: bytes, sealed: bytes, context: str, what: str = "object") -> bytes:
    """The plaintext of `sealed`; SealError when it is not a sealed object, or its tag fails
    (tampered, truncated, another part's or another key's)."""
    _check_shape(sealed[: len(MAGIC)], len(sealed), what)
    nonce = sealed[len(MAGIC) : _HEAD_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, sealed[_HEAD_BYTES:], context.encode())
    except InvalidTag:
        raise _integrity_error(what, context) from None


def _check_shape(start: bytes, size: int, what: str) -> None:
    """SealError unless an object of `size` [bytes] starting with `start` can be sealed."""
    if start != MAGIC:
        raise SealError(f"{what} is not sealed (it does not start with {MAGIC!r})")
    if size < OVERHEAD_BYTES:
        raise SealError(f"{what} is truncated: {size} bytes, a sealed object has more")


def _integrity_error(what: str, context: str) -> SealError:
    return SealError(
        f"{what} fails its integrity check: tampered, truncated, or not sealed for "
        f"{context!r} under this key"
    )


class SealedReader:
    """Opens a sealed object as its bytes arrive, to `open_sealed`'s plaintext and errors.

    `reset(total_bytes)` starts an object (again, when a transfer starts over), `update`
    takes its next bytes and decrypts them into a private buffer (all but the last 16, which
    may be the tag), and `finish()` checks the tag and only then returns the plaintext. On a
    failure the buffer is zeroed and dropped, and the SealError is `open_sealed`'s. `update`
    never raises for bad data: `finish()` reports it, so a transfer can first check the
    stored bytes' sha256. One object at a time; not thread-safe.
    """

    def __init__(self, key: bytes, context: str, what: str = "object") -> None:
        self._key = key
        self._context = context
        self._what = what
        self._plain = bytearray()
        self.reset()

    def reset(self, total_bytes: int | None = None) -> None:
        """Start a sealed object of `total_bytes` [bytes] (None: unknown; the plaintext buffer
        then grows as it comes). The caller bounds `total_bytes`."""
        _wipe(self._plain)
        self._head = bytearray()  # MAGIC and nonce, as they come
        self._size = 0  # bytes of the object taken so far [bytes]
        self._held = b""  # the last bytes past the head, at most TAG_BYTES: maybe the tag
        self._decryptor: AEADDecryptionContext | None = None
        self._plain = bytearray(max(0, (total_bytes or 0) - OVERHEAD_BYTES))
        self._plain_bytes = 0  # plaintext decrypted so far [bytes]

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Take the object's next bytes."""
        view = memoryview(chunk).cast("B")
        self._size += len(view)
        if len(self._head) < _HEAD_BYTES:
            taken = _HEAD_BYTES - len(self._head)
            self._head += view[:taken]
            view = view[taken:]
            if len(self._head) == _HEAD_BYTES and self._head.startswith(MAGIC):
                mode = modes.GCM(bytes(self._head[len(MAGIC) :]))
                self._decryptor = Cipher(algorithms.AES(self._key), mode).decryptor()
                self._decryptor.authenticate_additional_data(self._context.encode())
        decryptor = self._decryptor
        if decryptor is None or not view:
            return  # not sealed (`finish` says so), or nothing past the head yet
        if len(view) >= TAG_BYTES:
            self._decrypt(decryptor, self._held)
            self._decrypt(decryptor, view[:-TAG_BYTES])
            self._held = bytes(view[-TAG_BYTES:])
        else:
            held = self._held + bytes(view)
            self._decrypt(decryptor, held[:-TAG_BYTES])
            self._held = held[-TAG_BYTES:]

    def _decrypt(self, decryptor: AEADDecryptionContext, data: bytes | memoryview) -> None:
        if not data:
            return
        end = self._plain_bytes + len(data)
        if end > len(self._plain):  # no (or a short) size was given: grow, doubling
            grown = bytearray(max(end, 2 * len(self._plain)))
            grown[: self._plain_bytes] = memoryview(self._plain)[: self._plain_bytes]
            _wipe(self._plain)
            self._plain = grown
        with memoryview(self._plain) as out:
            self._plain_bytes += decryptor.update_into(data, out[self._plain_bytes :])

    def finish(self) -> bytearray:
        """The plaintext (a buffer no one else holds) once the whole object is taken and its
        tag checks; SealError (`open_sealed`'s) otherwise, leaving no plaintext behind.
        The reader is then reset."""
        plain, size, decryptor = self._plain, self._plain_bytes, self._decryptor
        self._plain = bytearray()
        try:
            _check_shape(bytes(self._head[: len(MAGIC)]), self._size, self._what)
            try:
                if decryptor is None:  # cannot be: a whole head starting with MAGIC made one
                    raise InvalidTag
                decryptor.finalize_with_tag(self._held)
            except InvalidTag:
                raise _integrity_error(self._what, self._context) from None
        except SealError:
            _wipe(plain)
            raise
        finally:
            self.reset()
        del plain[size:]
        return plain


def _wipe(buffer: bytearray) -> None:
    """Zero `buffer` in place (unverified plaintext must not linger)."""
    if buffer:
        buffer[:] = bytes(len(buffer))


def _wrapping_key(shared: bytes, ephemeral: bytes, recipient: bytes, context: str) -> bytes:
    return _derive(shared + ephemeral + recipient, f"idlefleet/1 wrap {context}")


def wrap_key(
    key: bytes, recipient_key_id: str, recipient_agreement_key: bytes, context: str
) -> WrappedKey:
    """`key` wrapped so that only the holder of `recipient_agreement_key` (raw X25519, the
    enrolled key `recipient_key_id`) can unwrap it, for `context`."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_agreement_key))
    wrapping = _wrapping_key(shared, ephemeral_public, recipient_agreement_key, context)
    sealed = seal(wrapping, key, context)
    return WrappedKey(
        key_id=recipient_key_id,
        ephemeral_public_key=ephemeral_public.hex(),
        sealed_key=sealed[len(MAGIC) :].hex(),
    )


def unwrap_key(wrapped: WrappedKey, identities: tuple[Identity, ...], context: str) -> bytes:
    """The key `wrapped` holds, unwrapped with whichever of `identities` it was wrapped to;
    SealError when none is, or it was wrapped for another context."""
    holder = next((i for i in identities if i.key_id == wrapped.key_id), None)
    if holder is None:
        raise SealError(f"key wrapped to {wrapped.key_id}, which this participant does not hold")
    ephemeral = bytes.fromhex(wrapped.ephemeral_public_key)
    try:
        shared = holder.exchange(ephemeral)
    except ValueError as exc:
        raise SealError(f"wrapped key has an unusable ephemeral key: {exc}") from None
    wrapping = _wrapping_key(shared, ephemeral, holder.agreement_public_key, context)
    key = open_sealed(wrapping, MAGIC + bytes.fromhex(wrapped.sealed_key), context, "wrapped key")
    if len(key) != KEY_BYTES:
        raise SealError(f"wrapped key holds {len(key)} bytes, not {KEY_BYTES}")
    return key
