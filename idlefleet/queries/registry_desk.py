"""The fleet registry as the API shows and changes it (admins enroll and revoke keys)."""

from __future__ import annotations

from datetime import UTC, datetime

from idlefleet.queries.errors import InvalidFieldError, PreconditionError, UnknownIdError
from streams.errors import MessageError
from streams.identity import Authority
from streams.messages import Enrollment
from streams.trust import Trust, enrollment_from_request, publish_enrollments, revocation_of

#: How long a change may take to come back from the registry topic [s].
READ_BACK_TIMEOUT_S = 30.0


class RegistryDesk:
    """Reads the registry the service's `trust` keeps; changes it with `authority`'s key."""

    def __init__(self, trust: Trust | None, authority: Authority | None) -> None:
        self._trust = trust
        self._authority = authority

    def entries(self) -> list[Enrollment]:
        return self._checked_trust().registry.entries()

    def enroll(self, request_json: str) -> Enrollment:
        """Sign and publish an enrollment request; returned once the service has read it."""
        trust, authority = self._checked_trust(), self._checked_authority()
        try:
            enrollment = enrollment_from_request(request_json.encode(), datetime.now(UTC))
        except MessageError as exc:
            raise InvalidFieldError("enrollment_json", exc.reason) from exc
        return self._publish(trust, authority, enrollment)

    def revoke(self, key_id: str) -> Enrollment:
        trust, authority = self._checked_trust(), self._checked_authority()
        try:
            revocation = revocation_of(trust.registry, key_id, datetime.now(UTC))
        except KeyError as exc:
            raise UnknownIdError("key id", key_id) from exc
        return self._publish(trust, authority, revocation)

    def _publish(self, trust: Trust, authority: Authority, enrollment: Enrollment) -> Enrollment:
        publish_enrollments(trust.kafka, authority, [enrollment])
        trust.wait_caught_up(READ_BACK_TIMEOUT_S)
        return trust.registry.get(enrollment.key_id) or enrollment

    def _checked_trust(self) -> Trust:
        if self._trust is None:
            raise PreconditionError("this service checks no records: it keeps no registry")
        return self._trust

    def _checked_authority(self) -> Authority:
        if self._authority is None:
            raise PreconditionError(
                "this service does not hold the fleet authority's key: enroll with "
                "`idlefleet keys enroll` where it is kept"
            )
        return self._authority
