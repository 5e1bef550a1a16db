"""The DR decision log keeps each event's newest decision, and only the newest decisions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from idlefleet.queries.dr_decisions import DrDecision, DrDecisionLog
from streams.catalog import T0
from tests.streams.factories import dr_event


def decision(event_id: str, honour: bool, reason: str = "") -> DrDecision:
    return DrDecision(dr_event(event_id), "utility", T0, honour, reason)


def test_the_newest_decision_on_an_event_wins() -> None:
    log = DrDecisionLog()
    log.record(decision("evening", False, "too tight"))
    log.record(decision("evening", True, "adds no shortfall"))
    log.record(decision("morning", False, "too tight"))
    latest = log.latest_by_event()
    assert latest["evening"].honour and latest["evening"].reason == "adds no shortfall"
    assert not latest["morning"].honour


@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.integers(1, 8))
def test_only_the_newest_decisions_are_kept(event_ids: list[str], max_decisions: int) -> None:
    log = DrDecisionLog(max_decisions)
    for event_id in event_ids:
        log.record(decision(event_id, True))
    assert set(log.latest_by_event()) == set(event_ids[-max_decisions:] if event_ids else [])
