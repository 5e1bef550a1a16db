"""Forecast inputs for the planner, one module per topic.

* ``timegrid``: ``SlotGrid``, the shared UTC slot axis, and UTC parsing.
* ``resample``: step series (values holding from their timestamp) as slot means.
* ``solar``: PV power per slot from pvlib (PVWatts chain), clear sky or any irradiance.
* ``cloud``: irradiance from a cloud-cover forecast (Larson scaling, Erbs split).
* ``weather``: weather CSVs and TMY3 files in our glossary, and the PV they give.
* ``carbon``: average (location-based) grid carbon intensity per slot, DE/GB/FR 2020.
* ``carbon_forecast``: day-ahead intensity forecasters and their backtest.
* ``feeds``: WattTime- and Electricity-Maps-shaped JSON, average vs marginal intensity.
* ``skill``: forecast error (MAE, RMSE) and skill against a baseline.

Methods, sources and measured skill: ``docs/forecasting.md``.
"""
