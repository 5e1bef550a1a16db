"""Generated code of vendored makers' .proto files (`python -m idlefleet.bridges.codegen`)."""
