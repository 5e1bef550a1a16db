"""Forecast inputs for the planner, one module per topic.

* ``timegrid``: ``SlotGrid``, the shared UTC slot axis.
* ``solar``: clear-sky (and later weather-driven) PV power per slot from pvlib.
* ``carbon``: average (location-based) grid carbon intensity per slot, DE/GB/FR 2020.
"""
