"""The executor: runs inference shards on parked cars and tracks them for the dispatcher.

Modules (import what you need; the dispatcher side does not need onnxruntime):

- `errors`: `ExecutionError` and its kinds, each with a one-line `reason`.
- `demo_model`: a tiny deterministic ONNX MLP for demos and tests.
- `storage`: local/`file://` URIs, verified model reads, `.npy` inputs and outputs.
- `runtime`: provider choice and the cached onnxruntime session runner.
- `agent`: the car's agent (`VehicleAgent`) and an in-process fleet (`AgentPool`).
- `sandbox`: the work processes an agent runs its items in (killable, memory-bounded).
- `service`: car agents on Kafka (`AgentService`).
- `dispatch`: the ledger of shard executions and the slot dispatcher (pure, no I/O).
"""
