"""One module per `idlefleet` command; each exposes `register(commands)`."""
