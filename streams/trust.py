"""What a process needs to sign its records and check everyone else's, in one place.

`Trust` holds the process's own identities (one per car for a car agent; the service's
current and previous key while it rotates) and the fleet authority's public key, and keeps
the registry current by reading the `identities` topic from the start on a thread of its
own. Readers check records with `rules()`; publishers sign with `publisher()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.identity import Authority, Identity
from streams.messages import Enrollment, Message
from streams.producer import Publisher
from streams.registry import Registry, check_key_id
from streams.serde import decode_as
from streams.signing import Authenticator, AuthoritySigner, RecordSigner
from streams.topics import Stream
from streams.validation import RecordRules

log = logging.getLogger(__name__)


class Trust:
    """Identities, registry and the reader that keeps it current."""

    def __init__(
        self,
        kafka: KafkaSettings,
        authority_public_key: bytes,
        identities: Sequence[Identity] = (),
    ) -> None:
        self.kafka = kafka
        self.identities = tuple(identities)
        self.registry = Registry(authority_public_key)
        self.authenticator = Authenticator(self.registry, self.identities)
        self.signer = RecordSigner(self.identities, self.registry) if self.identities else None
        self._reader = StreamReader(
            kafka,
            None,
            [Stream.IDENTITIES],
            self._on_enrollment,
            None,
            rules=RecordRules(authenticator=self.authenticator),
        )
        self._started = False

    def start(self, catch_up_timeout_s: float = 30.0) -> Trust:
        """Read the registry (once); return when every enrollment published so far is known."""
        if not self._started:
            self._started = True
            self._reader.start()
        if not self._reader.wait_caught_up(catch_up_timeout_s):
            raise TimeoutError(f"the registry was not read within {catch_up_timeout_s:g} s")
        return self

    def stop(self) -> None:
        self._reader.stop()

    def wait_caught_up(self, timeout_s: float = 30.0) -> bool:
        """Every enrollment published before this call is known."""
        return self._reader.wait_caught_up(timeout_s)

    def rules(
        self,
        site_ids: Collection[str] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_skew: timedelta = timedelta(minutes=5),
    ) -> RecordRules:
        """Record rules that also demand a proven writer."""
        return RecordRules(site_ids, clock, max_skew, authenticator=self.authenticator)

    def publisher(self) -> Publisher:
        """A publisher signing with this process's identities."""
        return Publisher(self.kafka, self.signer)

    def _on_enrollment(self, stream: Stream, message: Message) -> None:
        if isinstance(message, Enrollment):
            self.registry.apply(message)
            log.info(
                "registry: %s %s %s%s",
                message.role,
                message.principal,
                message.key_id,
                " revoked" if message.revoked_at else "",
            )


def publish_enrollments(
    kafka: KafkaSettings, authority: Authority, enrollments: Sequence[Enrollment]
) -> None:
    """Sign `enrollments` with the authority's key and publish them (enroll or revoke)."""
    publisher = Publisher(kafka, AuthoritySigner(authority))
    try:
        for enrollment in enrollments:
            publisher.publish(Stream.IDENTITIES, enrollment)
        publisher.flush()
    finally:
        publisher.close()


def enrollment_from_request(request: bytes, now: datetime) -> Enrollment:
    """The enrollment an `idlefleet keys new` request asks for, dated `now`; MessageError
    when it does not parse or its key id is not the id of its keys."""
    enrollment = decode_as(Enrollment, request)
    check_key_id(enrollment)
    return enrollment.model_copy(update={"enrolled_at": now, "revoked_at": None})


def revocation_of(registry: Registry, key_id: str, now: datetime) -> Enrollment:
    """The record that revokes `key_id` as of `now`; KeyError when it is not enrolled."""
    entry = registry.get(key_id)
    if entry is None:
        raise KeyError(key_id)
    return entry.model_copy(update={"revoked_at": entry.revoked_at or now})
