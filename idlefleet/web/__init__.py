"""The web console: server-rendered pages over the queries layer's `FleetBackend` (docs/web.md)."""
