"""Using the fleet from outside: how a client reaches the gRPC API (`connection`), the Python
SDK over it (`fleet.FleetClient`), and plain-text tables of what it returns (`tables`).

An adapter-level package: it talks to the API only over gRPC and imports no other adapter.
"""
