"""The central system's connected stations, as the console's health reads them
(`RunningOcpp.connections`): configured stations count, connected ones once they connect."""

from __future__ import annotations

import asyncio

from idlefleet.queries.health import ChargerConnections
from streams.clients import KafkaSettings
from tests.idlefleet.ocpp.depot import Depot, running_depot, station
from tests.idlefleet.ocpp.harness import connected


def test_connections_count_the_stations_connected_of_those_configured(
    kafka_settings: KafkaSettings,
) -> None:
    async def scenario(depot: Depot) -> None:
        assert await asyncio.to_thread(depot.ocpp.connections) == ChargerConnections(0, 2)
        async with connected(depot.port, "CS-1", "ocpp2.0.1") as cs:
            await cs.boot()
            assert await asyncio.to_thread(depot.ocpp.connections) == ChargerConnections(1, 2)

    with running_depot(kafka_settings, {"CS-1": station(), "CS-2": station()}) as depot:
        asyncio.run(scenario(depot))
