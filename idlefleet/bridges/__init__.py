"""Bridges from car makers' own telemetry streams to idlefleet's measured vehicle state.

One module per maker's format decodes its records and holds its ``VARIABLE_MAP`` (the one
place where that maker's field names and units map to ours, `variables.py`); `geofence.py`
places a car at a site; `vins.py` finds the car of a VIN in the fleet registry;
`measured.py` is what every bridge produces; `runner.py` runs a bridge on Kafka (the
`idlefleet bridge` command wires it).
"""
