"""SubmitDemandResponse: a cap decided in the API's solver child, changed only by its creator.

The decision is `idlefleet.service.dr.decide_caps` on the current scenario: accepted only if
it adds no departure shortfall, then made binding through the backend. Every decision, a
withdrawal included, goes to the backend's `dr_decisions` log with its reason.
"""

from __future__ import annotations

from idlefleet.queries.dr_decisions import DrDecision
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.solver import ApiSolver
from idlefleet.service.dr import Decision, decide_caps
from streams.messages import DemandResponseEvent


class DemandResponseDesk:
    """Decides, applies and withdraws the DR caps API callers submit."""

    def __init__(self, backend: FleetBackend, solver: ApiSolver, deadline_s: float) -> None:
        self._backend = backend
        self._solver = solver
        self._deadline_s = deadline_s

    def submit(
        self,
        event: DemandResponseEvent,
        principal: str,
        time_left_s: float | None,
        *,
        override: bool = False,
    ) -> Decision:
        """Decide on `event` for `principal` (or withdraw it when cancelled).

        NotAllowedError when another principal created the event and not `override`;
        BusyError or OutOfTimeError from the solver's queue."""
        owners = self._backend.dr_owners
        fresh = owners.claim(event.event_id, principal, override=override)
        # the record names its creator (an admin's change keeps the creator's)
        event = event.model_copy(update={"created_by": owners.creator(event.event_id) or principal})
        try:
            if event.cancelled:
                self._backend.apply_dr_event(event)
                owners.release(event.event_id)
                return self._logged(event, principal, Decision(True, "withdrawn", 0.0))
            decision = self._decide(event, time_left_s)
            if decision.honour:
                self._backend.apply_dr_event(event)
            self._logged(event, principal, decision)
        except BaseException:
            if fresh:
                owners.release(event.event_id)
            raise
        if fresh and not decision.honour:
            owners.release(event.event_id)
        return decision

    def _logged(self, event: DemandResponseEvent, principal: str, decision: Decision) -> Decision:
        """`decision`, once recorded in the backend's log."""
        self._backend.dr_decisions.record(
            DrDecision(event, principal, self._backend.now(), decision.honour, decision.reason)
        )
        return decision

    def _decide(self, event: DemandResponseEvent, time_left_s: float | None) -> Decision:
        scenario = self._backend.current_scenario()
        accept_later = self._backend.settings.dr_accept_beyond_horizon
        with self._solver.turn(time_left_s) as turn:
            return turn.call(decide_caps, (scenario, [event], accept_later), self._deadline_s)
