"""What every adapter (gRPC, OpenADR, a web console) asks of the fleet and how it is answered.

`ports` is the `FleetBackend` protocol and its records; `service_backend` implements it over a
running planner service, `local_backend` over in-process state (tests, benchmarks). `views`,
`board`, `fleet_status`, `job_records` and `what_if` build the answers; `errors` are the
domain errors each adapter maps to its own protocol's status.
"""
