"""The event rate: a burst at once, then tokens back at the rate, never more than the burst."""

from __future__ import annotations

from idlefleet.openadr.ratelimit import EventRate


def test_a_burst_passes_then_one_event_per_interval() -> None:
    now_s = [0.0]
    rate = EventRate(per_minute=2.0, burst=3, clock=lambda: now_s[0])
    assert [rate.take() for _ in range(4)] == [True, True, True, False]
    now_s[0] = 29.0
    assert not rate.take()
    now_s[0] = 30.0  # one token back every 30 s
    assert rate.take() and not rate.take()
    now_s[0] = 3600.0  # an idle hour refills the burst, no more
    assert [rate.take() for _ in range(4)] == [True, True, True, False]
