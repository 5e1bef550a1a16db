"""Errors raised by the streams package."""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every streams error."""


class MessageError(StreamsError):
    """A payload that cannot be decoded or does not fit its topic's schema.

    `reason` is a one-line, human-readable cause that names the offending field.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerError(StreamsError):
    """The embedded broker could not be started or did not answer."""


class PublishError(StreamsError):
    """A record could not be delivered: a non-retriable error, or retries ran out of time."""
