"""Sealed job data: objects open only under their key and for their part; wrapped keys only for
the identity they were wrapped to and the context they were wrapped for."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.identity import Identity
from streams.sealing import (
    MAGIC,
    OVERHEAD_BYTES,
    SealedReader,
    SealError,
    is_sealed,
    job_key_context,
    model_key,
    new_job_key,
    open_sealed,
    part_context,
    seal,
    shard_key,
    unwrap_key,
    wrap_key,
)

KEY = bytes(range(32))


@given(st.binary(max_size=4096), st.integers(0, 10_000))
def test_a_sealed_shard_opens_to_its_plaintext(plaintext: bytes, index: int) -> None:
    context = part_context("job-1", "input", index)
    sealed = seal(KEY, plaintext, context)
    assert is_sealed(sealed)
    assert len(sealed) == len(plaintext) + OVERHEAD_BYTES
    assert open_sealed(KEY, sealed, context) == plaintext


@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_flipped_bit_fails_the_tag(plaintext: bytes, data: st.DataObject) -> None:
    context = part_context("job-1", "output", 3)
    sealed = bytearray(seal(KEY, plaintext, context))
    position = data.draw(st.integers(len(MAGIC), len(sealed) - 1))
    sealed[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(SealError, match="integrity check"):
        open_sealed(KEY, bytes(sealed), context)


def test_truncated_moved_or_plain_objects_do_not_open() -> None:
    sealed = seal(KEY, b"rows of shard 3", part_context("job-1", "input", 3))
    with pytest.raises(SealError, match="integrity check"):
        open_sealed(KEY, sealed[:-1], part_context("job-1", "input", 3))
    with pytest.raises(SealError, match="truncated"):
        open_sealed(KEY, sealed[: OVERHEAD_BYTES - 1], part_context("job-1", "input", 3))
    for other in (
        part_context("job-1", "input", 4),  # another shard
        part_context("job-2", "input", 3),  # another job
        part_context("job-1", "output", 3),  # the input passed off as an output
    ):
        with pytest.raises(SealError, match="integrity check"):
            open_sealed(KEY, sealed, other)
    with pytest.raises(SealError, match="not sealed"):
        open_sealed(KEY, b"\x93NUMPY plain", part_context("job-1", "input", 3))


def test_derived_keys_differ_per_shard_and_job_and_from_the_job_key() -> None:
    job_key = new_job_key()
    keys = {
        job_key,
        model_key(job_key, "job-1"),
        shard_key(job_key, "job-1", 0),
        shard_key(job_key, "job-1", 1),
        shard_key(job_key, "job-2", 0),
    }
    assert len(keys) == 5
    assert all(len(key) == 32 for key in keys)
    assert shard_key(job_key, "job-1", 7) == shard_key(job_key, "job-1", 7)


def test_a_wrapped_key_opens_only_for_its_identity_and_context() -> None:
    service = Identity.generate("planner", "service")
    car = Identity.generate("car-1", "car")
    job_key = new_job_key()
    wrapped = wrap_key(
        job_key, service.key_id, service.agreement_public_key, job_key_context("job-1")
    )
    assert unwrap_key(wrapped, (car, service), job_key_context("job-1")) == job_key
    with pytest.raises(SealError, match="does not hold"):
        unwrap_key(wrapped, (car,), job_key_context("job-1"))
    with pytest.raises(SealError, match="integrity check"):
        unwrap_key(wrapped, (service,), job_key_context("job-2"))
    # the same key wrapped twice looks different (a fresh ephemeral key each time)
    again = wrap_key(job_key, service.key_id, service.agreement_public_key, "c")
    assert again.sealed_key != wrapped.sealed_key
    # a wrapped key claiming another recipient's id does not open with that recipient
    forged = wrapped.model_copy(update={"key_id": car.key_id})
    with pytest.raises(SealError, match="integrity check"):
        unwrap_key(forged, (car,), job_key_context("job-1"))


def _read_in_chunks(reader: SealedReader, sealed: bytes, cuts: list[int]) -> None:
    """Feed `sealed` to `reader` cut at the offsets `cuts` (any order, any repeats)."""
    edges = sorted({0, len(sealed), *(c % (len(sealed) + 1) for c in cuts)})
    for start, end in itertools.pairwise(edges):
        reader.update(sealed[start:end])


@given(
    st.binary(max_size=4096),
    st.lists(st.integers(0, 5000), max_size=12),
    st.one_of(st.none(), st.integers(0, 6000)),
)
def test_a_sealed_object_read_in_any_chunks_opens_as_open_sealed(
    plaintext: bytes, cuts: list[int], size_hint: int | None
) -> None:
    context = part_context("job-1", "input", 3)
    sealed = seal(KEY, plaintext, context)
    reader = SealedReader(KEY, context)
    reader.reset(size_hint)  # right, wrong or no size: the buffer grows when short
    _read_in_chunks(reader, sealed, cuts)
    plain = reader.finish()
    assert isinstance(plain, bytearray)
    assert plain == open_sealed(KEY, sealed, context) == plaintext


@given(st.binary(min_size=1, max_size=512), st.data())
def test_a_read_object_with_any_flipped_bit_fails_as_open_sealed_and_yields_nothing(
    plaintext: bytes, data: st.DataObject
) -> None:
    context = part_context("job-1", "output", 3)
    sealed = bytearray(seal(KEY, plaintext, context))
    position = data.draw(st.integers(0, len(sealed) - 1))
    sealed[position] ^= 1 << data.draw(st.integers(0, 7))
    reader = SealedReader(KEY, context)
    _read_in_chunks(reader, bytes(sealed), data.draw(st.lists(st.integers(0, 600), max_size=6)))
    with pytest.raises(SealError) as caught:
        open_sealed(KEY, bytes(sealed), context)
    with pytest.raises(SealError) as streamed:
        reader.finish()
    assert streamed.value.reason == caught.value.reason


def test_a_failed_read_zeroes_what_it_decrypted() -> None:
    context = part_context("job-1", "input", 3)
    plaintext = b"secret rows " * 100
    sealed = seal(KEY, plaintext, context)
    reader = SealedReader(KEY, context, "input")
    reader.update(sealed[:-1])  # the tag cut short
    decrypted = reader._plain  # the buffer the plaintext went into
    assert bytes(decrypted[: len(plaintext) - 15]) == plaintext[: len(plaintext) - 15]
    with pytest.raises(SealError, match="input fails its integrity check"):
        reader.finish()
    assert not any(decrypted)


def test_truncated_moved_plain_or_restarted_reads() -> None:
    context = part_context("job-1", "input", 3)
    sealed = seal(KEY, b"rows of shard 3", context)
    cases: list[tuple[bytes, str, str]] = [
        (sealed[:-1], context, "integrity check"),
        (sealed[: OVERHEAD_BYTES - 1], context, "truncated"),
        (sealed[:5], context, "not sealed"),
        (b"", context, "not sealed"),
        (sealed, part_context("job-1", "input", 4), "integrity check"),
        (sealed, part_context("job-1", "output", 3), "integrity check"),
        (b"\x93NUMPY plain", context, "not sealed"),
    ]
    for data, opened_for, reason in cases:
        reader = SealedReader(KEY, opened_for)
        reader.update(data)
        with pytest.raises(SealError, match=reason):
            reader.finish()
    # a transfer that starts over: what came before the reset does not count
    reader = SealedReader(KEY, context)
    reader.update(sealed[:30])
    reader.update(b"garbage from a broken answer")
    reader.reset(len(sealed))
    reader.update(sealed)
    assert reader.finish() == b"rows of shard 3"
    # a finished reader starts afresh: finishing again opens nothing
    with pytest.raises(SealError, match="not sealed"):
        reader.finish()
