"""Sustainability reports: every strategy on the same inputs, planned on the forecast and
accounted on the actual intensity, written as KPIs, CSVs and a self-contained HTML page.

`batch` runs the days, `days` reduces each plan to what the report needs, `kpis` sums the
days into kpis.json, `charts` and `html` draw the page, `write` writes the directory.
"""
