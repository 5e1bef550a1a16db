"""Who created each DR cap submitted through the API: only they, or an admin, may change or
cancel it.

A cap in force that no API caller created (an OpenADR event, one from before a restart) is
nobody's here: only an admin may change it. The map lives in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from idlefleet.queries.errors import NotAllowedError


class DrOwners:
    """The principal behind each DR event id; `in_force(event_id)` says whether a cap is."""

    def __init__(self, in_force: Callable[[str], bool]) -> None:
        self._in_force = in_force
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def claim(self, event_id: str, principal: str, *, override: bool = False) -> bool:
        """Let `principal` change the event; True if it was nobody's and is now theirs.

        NotAllowedError, naming the event, when another principal created it (or no API
        caller did and it is in force) and not `override` (an admin's)."""
        with self._lock:
            owner = self._owners.get(event_id)
            if owner is None and not self._in_force(event_id):
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
