"""The gRPC API for grid and fleet planners (proto package idlefleet.v1, service FleetPlanner).

`server.create_server` serves it over a `ports.FleetBackend`; `cli` adds it to `idlefleet serve`.
"""
