"""Who may change a DR cap survives a restart: the record names its creator."""

from __future__ import annotations

import pytest

from idlefleet.queries.dr_owners import DrOwners
from idlefleet.queries.errors import NotAllowedError
from streams.messages import DemandResponseEvent
from tests.streams.factories import dr_event


def test_a_restarted_service_knows_who_made_each_cap_from_its_record() -> None:
    in_force: dict[str, DemandResponseEvent] = {
        "evening": dr_event("evening", created_by="utility-1"),
        "openadr": dr_event("openadr"),  # a utility feed's: nobody's here
    }
    owners = DrOwners(in_force.get)  # a fresh process: nothing claimed in memory
    assert owners.creator("evening") == "utility-1"
    with pytest.raises(NotAllowedError, match="'evening'"):
        owners.claim("evening", "operator-1")
    assert owners.claim("evening", "utility-1") is False  # theirs already
    with pytest.raises(NotAllowedError, match="'openadr'"):
        owners.claim("openadr", "utility-1")
    assert owners.claim("openadr", "admin-1", override=True) is False
    assert owners.claim("fresh", "operator-1") is True
    assert owners.creator("fresh") == "operator-1"
