"""The DR decisions this process made for API callers (`DemandResponseDesk`), newest kept.

A refused cap is never published, so the DR topic only holds the caps in force; this log
keeps every decision with its reason (refusals too) while the process runs, so the console
can show why. It lives in memory and is bounded: a restart forgets it, and the caps in
force are still read from the topic.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from streams.messages import DemandResponseEvent

#: Decisions kept [count]: the oldest is dropped beyond it.
MAX_DECISIONS = 500


@dataclass(frozen=True)
class DrDecision:
    """A decision on `event` [UTC times] for `principal`: honoured or not, and why."""

    event: DemandResponseEvent
    principal: str
    decided_at: datetime
    honour: bool
    reason: str


class DrDecisionLog:
    """The newest `max_decisions` decisions, safe to record and read from any thread."""

    def __init__(self, max_decisions: int = MAX_DECISIONS) -> None:
        self._decisions: deque[DrDecision] = deque(maxlen=max_decisions)
        self._lock = threading.Lock()

    def record(self, decision: DrDecision) -> None:
        with self._lock:
            self._decisions.append(decision)

    def latest_by_event(self) -> dict[str, DrDecision]:
        """Each event id's newest decision."""
        with self._lock:
            return {decision.event.event_id: decision for decision in self._decisions}
