"""The planner service: streams -> fleet state -> rolling scenario -> plan -> assignments.

`planner` ingests the streams and ticks slot by slot, `results` brings results to the ledger,
`inputs` turns fleet state into the scenario to plan, `sharing` cuts region caps and jobs to a
worker's sites, `dispatches` turns a plan's slot into set-points and work (with the owner-first
fallback), `planner_process` runs the solver in a child process, `dr` decides demand-response
requests. It imports no adapter.
"""
