"""Tesla fleet-telemetry's `vehicle_data.proto`, compiled (see proto/vendor/tesla/README.md)."""
