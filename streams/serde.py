"""Encode and decode payloads: one codec for every topic, one error type."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from streams.errors import MessageError
from streams.messages import Message
from streams.topics import STREAM_SPECS, Stream

M = TypeVar("M", bound=Message)

MAX_MESSAGE_BYTES = 1_000_000


def encode(message: Message) -> bytes:
    """JSON bytes of a message (already validated when it was built)."""
    return message.model_dump_json().encode()


def key_of(stream: Stream, message: Message) -> bytes | None:
    """The Kafka key a message is published under on `stream`."""
    field = STREAM_SPECS[stream].key_field
    return None if field is None else str(getattr(message, field)).encode()


def decode(stream: Stream, payload: bytes | None) -> Message:
    """Parse and validate a payload of `stream`; raise MessageError naming the cause."""
    message_type = STREAM_SPECS[stream].message_type
    if message_type is None:
        raise MessageError(f"stream {stream.value} carries no typed messages")
    return decode_as(message_type, payload)


def decode_as(message_type: type[M], payload: bytes | None) -> M:
    """Parse and validate a payload as `message_type`; raise MessageError naming the cause."""
    if payload is None:
        raise MessageError("empty payload (tombstone)")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(f"payload of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:  # the validator itself, without model_validate_json's wrapper: this is the hot path
        message: M = message_type.__pydantic_validator__.validate_json(payload)
    except ValidationError as exc:
        raise MessageError(_describe(message_type, exc)) from exc
    return message


def _describe(message_type: type[Message], exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:3]:
        location = ".".join(str(part) for part in error["loc"]) or "<payload>"
        parts.append(f"{location}: {error['msg']}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"invalid {message_type.__name__}: " + "; ".join(parts) + more
