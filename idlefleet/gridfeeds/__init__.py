"""Live carbon-intensity feeds (WattTime, Electricity Maps) polled by `idlefleet serve`.

`clients`: the HTTP clients and their authentication; `poller`: polls on an interval with
backoff and publishes `GridSignal`s; `runner`: which feeds `serve` polls, from
IDLEFLEET_WATTTIME_* and IDLEFLEET_ELECTRICITYMAPS_* settings.
"""
