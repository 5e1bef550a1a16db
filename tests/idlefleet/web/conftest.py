"""The console over the live planner service (tests.idlefleet.live) after its first plan."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from idlefleet.queries.health import health_source
from idlefleet.web.runner import WebConfig, serving_web
from streams.catalog import T0
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)


@pytest.fixture
def console(live: LiveFleet) -> Iterator[str]:  # noqa: F811
    """The console over the live service after its first plan; its base URL."""
    assert live.tick(T0) is not None, "the service made no plan"
    health = health_source(
        live.service.health_notes, lambda: live.service.dead_letters, service=live.service
    )
    config = WebConfig("127.0.0.1", 0)
    with serving_web(
        config, live.backend, live.tokens.table, health, api_target=live.target
    ) as port:
        assert port is not None
        yield config.url(port)
