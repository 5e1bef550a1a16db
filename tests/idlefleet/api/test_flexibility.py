"""GetFlexibility over a real channel: a site, a region and the fleet, as the plan's views say."""

from __future__ import annotations

import grpc

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.views import FLEET
from tests.idlefleet.conftest import Tokens, rpc_error


def test_get_flexibility_for_a_site_a_region_and_the_fleet(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    site = stub.GetFlexibility(pb.GetFlexibilityRequest(site_id="berlin-depot"), metadata=viewer)
    region = stub.GetFlexibility(pb.GetFlexibilityRequest(region="DE"), metadata=viewer)
    everything = stub.GetFlexibility(pb.GetFlexibilityRequest(), metadata=viewer)
    assert site.plan.revision == 1 and len(site.slots) == 16
    assert list(site.slots) == list(region.slots)  # Berlin is the only DE site
    views = backend.board.views
    assert views is not None
    expected = views.flexibility_series(FLEET)
    assert [s.shed_power_kw for s in everything.slots] == expected.shed_power_kw
    assert [s.add_power_kw for s in everything.slots] == expected.add_power_kw
    assert any(s.shed_power_kw > 0 for s in everything.slots)
    assert everything.slots[0].compute_capacity_shards == 3  # car-d does not consent
    assert sum(s.planned_shards for s in everything.slots) == 4
    for s in everything.slots:
        assert 0 <= s.baseline_import_kw <= s.import_cap_kw
        assert s.baseline_import_kw + s.add_power_kw <= s.import_cap_kw + 1e-9
        assert s.shed_power_kw <= s.baseline_import_kw + 1e-9
    unknown = pb.GetFlexibilityRequest(region="FR")
    error = rpc_error(lambda: stub.GetFlexibility(unknown, metadata=viewer))
    assert error.code() is grpc.StatusCode.NOT_FOUND
