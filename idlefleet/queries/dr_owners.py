"""Who created each DR cap submitted through the API: only they, or an admin, may change or
cancel it.

A cap an API caller created carries its creator in the record (`created_by`), so the rule
survives a restart; a cap in force that no API caller created (an OpenADR event) is nobody's:
only an admin may change it. Claims not yet recorded (a decision under way) live in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from idlefleet.queries.errors import NotAllowedError
from streams.messages import DemandResponseEvent


class DrOwners:
    """The principal behind each DR event id; `in_force(event_id)` gives the cap in force."""

    def __init__(self, in_force: Callable[[str], DemandResponseEvent | None]) -> None:
        self._in_force = in_force
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def creator(self, event_id: str) -> str | None:
        """Who made the event: a claim under way, else the record in force."""
        with self._lock:
            return self._creator(event_id)

    def _creator(self, event_id: str) -> str | None:
        claimed = self._owners.get(event_id)
        if claimed is not None:
            return claimed
        recorded = self._in_force(event_id)
        return None if recorded is None else recorded.created_by

    def claim(self, event_id: str, principal: str, *, override: bool = False) -> bool:
        """Let `principal` change the event; True if it was nobody's and is now theirs.

        NotAllowedError, naming the event, when another principal created it (or no API
        caller did and it is in force) and not `override` (an admin's)."""
        with self._lock:
            owner = self._creator(event_id)
            if owner is None and self._in_force(event_id) is None:
                self._owners[event_id] = principal
                return True
            if owner == principal or override:
                return False
        raise NotAllowedError(
            f"DR event {event_id!r} was created by another principal: "
            "only its creator or an admin may change or cancel it"
        )

    def release(self, event_id: str) -> None:
        """Forget the event's creator (it was withdrawn, or never became binding)."""
        with self._lock:
            self._owners.pop(event_id, None)
