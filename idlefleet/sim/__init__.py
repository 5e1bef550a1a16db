"""The simulated world: a fleet drawn from real sessions, demo sites and jobs, one clock, and
generated scenarios. Used by the demo, reports, chaos runs and benchmarks; never by the service.
"""
