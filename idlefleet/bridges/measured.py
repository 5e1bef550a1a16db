"""What a bridge makes of one maker's record: a measured-state update, or a dead letter.

The update is the stream message `streams.messages.MeasuredState`. Makers' streams send only
the signals that changed, so every measured field may be None: "this record does not say",
never "zero"; the planner keeps the newest value of each field (streams.sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.messages import MeasuredState


@dataclass(frozen=True)
class Measured:
    """A record that maps to measured state, ready for the measured-state topic."""

    state: MeasuredState


@dataclass(frozen=True)
class DeadLetter:
    """A record for the dead-letter topic; `reason` is one line, naming what is wrong."""

    reason: str


BridgeResult = Measured | DeadLetter
