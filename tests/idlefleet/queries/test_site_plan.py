"""A site's DR caps slot by slot: the lowest of its own caps where one is in force, None
elsewhere; a cap on the region or another site is not the site's."""

from __future__ import annotations

from idlefleet.queries.site_plan import site_dr_caps_kw
from optimizer import load_scenario
from tests.optimizer.factories import tiny, ts


def _cap(event_id: str, start: float, end: float, kw: float, **target: str) -> dict[str, object]:
    return {"id": event_id, "start": ts(start), "end": ts(end), "max_import_kw": kw, **target}


def test_the_lowest_site_cap_in_force_per_slot() -> None:
    other = {"id": "T", "region": "R", "grid_limit_kw": 10.0}
    scenario = load_scenario(
        tiny(
            [100.0] * 5,
            extra_sites=[other],
            dr_events=[
                _cap("a", 1, 3, 20.0, site="S"),
                _cap("b", 2.5, 4, 8.0, site="S"),  # covers part of slot 2: binds all of it
                _cap("c", 0, 5, 1.0, site="T"),
                _cap("d", 0, 5, 2.0, region="R"),
            ],
        )
    )
    assert site_dr_caps_kw(scenario, "S") == [None, 20.0, 8.0, 8.0, None]
    assert site_dr_caps_kw(scenario, "T") == [1.0] * 5
