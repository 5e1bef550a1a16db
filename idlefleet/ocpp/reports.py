"""What the central system tells its listener about each EVSE, one report per thing it heard.

A report carries what the station said (a connector status, a session starting or ending, a
meter sample, a message it could not read) together with what the central system knows of the
EVSE at that moment: its running transaction and the car's id token, the energy register at
the session's start, and whether the EVSE follows its profiles. A BootNotification makes no
report: it says nothing about a car (the station gets its default profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from idlefleet.ocpp.meters import MeterSample


class ReportKind(StrEnum):
    STATUS = "status"
    SESSION_STARTED = "session-started"
    SESSION_ENDED = "session-ended"
    METER = "meter"
    #: The EVSE stopped following its profiles without a meter sample saying so (it, or its
    #: station, rejected a profile).
    CONTROL = "control"
    #: A station's message about the EVSE that could not be read (`detail` says why).
    UNREADABLE = "unreadable"


#: Connector statuses (2.0.1 ConnectorStatus and 1.6 ChargePointStatus) with a car plugged
#: in, and the one without; the others (Reserved, Unavailable, Faulted) do not say.
PLUGGED_STATUSES = frozenset(
    {"Occupied", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}
)
UNPLUGGED_STATUSES = frozenset({"Available"})


def plugged_in_of(status: str) -> bool | None:
    """Whether a connector status says a car is plugged in; None when it does not say."""
    if status in PLUGGED_STATUSES:
        return True
    if status in UNPLUGGED_STATUSES:
        return False
    return None


@dataclass(frozen=True)
class EvseReport:
    """One thing heard about one EVSE (0: the whole station), at `time` (UTC).

    `plugged_in` is what the report says of the connector (None: it does not say); `sample`
    the meter sample it carries; `transaction_id`, `id_token` and `session_start_wh` [Wh]
    describe the session running on the EVSE when the report was made (for a session that
    ended: the one that ended); `controllable` whether the EVSE follows its profiles then;
    `detail` the status name, or why a message could not be read.
    """

    station_id: str
    evse_id: int
    kind: ReportKind
    time: datetime
    controllable: bool
    plugged_in: bool | None = None
    sample: MeterSample | None = None
    transaction_id: str | None = None
    id_token: str | None = None
    session_start_wh: float | None = None
    detail: str | None = None

    @property
    def where(self) -> str:
        """`<station id>/<evse id>`, as the fleet registry names an EVSE."""
        return f"{self.station_id}/{self.evse_id}"
