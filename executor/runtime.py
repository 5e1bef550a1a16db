"""Run ONNX models with onnxruntime: provider choice, a session cache, input contracts.

A model whose tensors keep their data in other files is refused before any session is made
(`executor.external_data`): onnxruntime would read whatever files they name.

Providers are checked before a session is created (only those this onnxruntime build offers
are requested, best first, CPU last) and confirmed afterwards: the provider a session reports
first is the one that attached, and that is what a `Result` names. The input contract (dtype,
rank, static dimensions) is read from the session and checked before running, so a bad shard
fails with "expected ..., got ..." rather than an onnxruntime stack trace.

A run can be stopped from another thread (`Interrupt.fire`): the shard is fed in chunks of
rows when its first dimension is dynamic, the stop is checked between chunks, and a chunk
already running is ended by onnxruntime's `RunOptions.terminate` (checked between graph
nodes and between a `Loop`'s iterations; a single node runs to its end).

A runner pickles as its configuration, without sessions: the agent's work processes
(`executor.sandbox`) build their own copy of it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from executor.errors import InferenceError, InputError, ModelError, StoppedError
from executor.external_data import refuse_external_data

logger = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"

# Best first. Providers that do not run the graph locally (e.g. AzureExecutionProvider) are
# deliberately absent, so they are never requested.
PREFERRED_PROVIDERS: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "MIGraphXExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "QNNExecutionProvider",
    "CANNExecutionProvider",
    "XnnpackExecutionProvider",
    CPU_PROVIDER,
)

# ONNX tensor element types the executor feeds, as onnxruntime names them.
_ONNX_TO_NUMPY: dict[str, np.dtype] = {
    f"tensor({name})": np.dtype(dtype)
    for name, dtype in {
        "float": np.float32,
        "double": np.float64,
        "float16": np.float16,
        "int8": np.int8,
        "int16": np.int16,
        "int32": np.int32,
        "int64": np.int64,
        "uint8": np.uint8,
        "uint16": np.uint16,
        "uint32": np.uint32,
        "uint64": np.uint64,
        "bool": np.bool_,
    }.items()
}

Dim = int | str | None
#: Told (rows_done, rows_total) [count] as a run proceeds.
Progress = Callable[[int, int], None]


def choose_providers(available: Sequence[str]) -> list[str]:
    """The providers to request, best first: `PREFERRED_PROVIDERS` ∩ `available`, CPU last.

    CPU is always included: it is built into every onnxruntime and is the fallback when an
    accelerator cannot take the model.
    """
    offered = set(available)
    chosen = [name for name in PREFERRED_PROVIDERS if name in offered and name != CPU_PROVIDER]
    return [*chosen, CPU_PROVIDER]


@dataclass(frozen=True)
class ModelContract:
    """A loaded model's single input and first output, as its session reports them."""

    input_name: str
    input_dtype: np.dtype
    input_shape: tuple[Dim, ...]
    output_name: str
    provider: str

    @property
    def batch_dynamic(self) -> bool:
        """The first input dimension is not fixed, so rows can be fed in chunks."""
        return bool(self.input_shape) and not (
            isinstance(self.input_shape[0], int) and self.input_shape[0] >= 0
        )

    def check(self, array: np.ndarray) -> None:
        """Raise InputError unless `array` has the input's dtype, rank and static dims."""
        expected = "[" + ", ".join("?" if d is None else str(d) for d in self.input_shape) + "]"
        if array.dtype != self.input_dtype:
            raise InputError(
                f"input {self.input_name!r} expects dtype {self.input_dtype}, got {array.dtype}"
            )
        if array.ndim != len(self.input_shape):
            raise InputError(
                f"input {self.input_name!r} expects rank {len(self.input_shape)} {expected}, "
                f"got rank {array.ndim} {list(array.shape)}"
            )
        for axis, (want, got) in enumerate(zip(self.input_shape, array.shape, strict=True)):
            if isinstance(want, int) and want >= 0 and want != got:
                raise InputError(
                    f"input {self.input_name!r} expects shape {expected}, got "
                    f"{list(array.shape)} (dimension {axis} must be {want})"
                )


class Interrupt:
    """A stop request shared between the thread running inference and the one stopping it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._options: list[ort.RunOptions] = []
        self.reason: str | None = None

    @property
    def fired(self) -> bool:
        return self.reason is not None

    def fire(self, reason: str) -> None:
        """Stop the current and every later run (the first reason is kept)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            for options in self._options:
                options.terminate = True

    def run_options(self) -> ort.RunOptions:
        """Options for one `session.run`, terminated when the interrupt fires."""
        options = ort.RunOptions()
        with self._lock:
            options.terminate = self.reason is not None
            self._options.append(options)
        return options

    def release(self, options: ort.RunOptions) -> None:
        with self._lock:
            self._options.remove(options)


@dataclass(frozen=True)
class RunOutcome:
    """One inference: the first output, the provider that ran it, the time it took [s]."""

    outputs: np.ndarray
    provider: str
    runtime_s: float


@dataclass(frozen=True)
class _Loaded:
    session: ort.InferenceSession
    contract: ModelContract


class OnnxRunner:
    """Creates, caches (least recently used, by model sha256) and runs inference sessions.

    `providers` defaults to `choose_providers(onnxruntime.get_available_providers())`; an
    explicit list must name only providers this build offers. `intra_op_threads` 0 lets
    onnxruntime decide. Safe to share between agents and threads.
    """

    def __init__(
        self,
        providers: Sequence[str] | None = None,
        *,
        max_sessions: int = 8,
        intra_op_threads: int = 0,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        available = ort.get_available_providers()
        if providers is None:
            providers = choose_providers(available)
        missing = [name for name in providers if name not in available]
        if missing or not providers:
            raise ValueError(
                f"providers {missing or list(providers)} are not available here "
                f"(onnxruntime offers {available})"
            )
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.providers: tuple[str, ...] = tuple(providers)
        self.max_sessions = max_sessions
        self.intra_op_threads = intra_op_threads
        self._timer = timer
        self._sessions: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:
        """The configuration only: a copy starts with no sessions (and its own lock)."""
        return {
            "providers": self.providers,
            "max_sessions": self.max_sessions,
            "intra_op_threads": self.intra_op_threads,
            "_timer": self._timer,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._sessions = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached_models(self) -> list[str]:
        """The sha256 of every model with a live session, least recently used first."""
        with self._lock:
            return list(self._sessions)

    def contract(self, model_bytes: bytes, sha256: str) -> ModelContract:
        """The model's input/output contract and attached provider (loads it if needed)."""
        return self._load(model_bytes, sha256).contract

    def run(
        self,
        model_bytes: bytes,
        sha256: str,
        array: np.ndarray,
        *,
        interrupt: Interrupt | None = None,
        chunk_rows: int = 0,
        progress: Progress | None = None,
    ) -> RunOutcome:
        """Run the model on `array` and return its first output.

        `sha256` keys the session cache; on a cache miss the bytes are hashed and must match.
        With `chunk_rows` > 0 and a dynamic first input dimension, rows are fed `chunk_rows`
        at a time and the outputs joined (for models whose output is one row per input row).
        `progress(rows_done, rows_total)` is told before the first chunk and after each one.
        Raises ModelError (model cannot load or does not have one input), InputError (array
        does not fit the input contract), InferenceError (onnxruntime failed while running)
        or StoppedError (`interrupt` fired).
        """
        loaded = self._load(model_bytes, sha256)
        contract = loaded.contract
        contract.check(array)
        rows = int(array.shape[0]) if array.ndim else 1
        started_s = self._timer()
        if progress is not None:
            progress(0, rows)
        if chunk_rows > 0 and contract.batch_dynamic and rows > chunk_rows:
            output = self._run_chunked(loaded, array, chunk_rows, interrupt, progress)
        else:
            output = self._run_once(loaded, array, interrupt, rows_before=0, rows_total=rows)
            if progress is not None:
                progress(rows, rows)
        runtime_s = max(self._timer() - started_s, 0.0)
        return RunOutcome(outputs=output, provider=contract.provider, runtime_s=runtime_s)

    def _run_chunked(
        self,
        loaded: _Loaded,
        array: np.ndarray,
        chunk_rows: int,
        interrupt: Interrupt | None,
        progress: Progress | None,
    ) -> np.ndarray:
        rows = int(array.shape[0])
        parts = []
        for first in range(0, rows, chunk_rows):
            chunk = array[first : first + chunk_rows]
            part = self._run_once(loaded, chunk, interrupt, rows_before=first, rows_total=rows)
            if part.ndim == 0 or part.shape[0] != chunk.shape[0]:
                # not one output row per input row: the shard must run whole
                return self._run_once(loaded, array, interrupt, rows_before=0, rows_total=rows)
            parts.append(part)
            if progress is not None:
                progress(first + int(chunk.shape[0]), rows)
        return np.concatenate(parts, axis=0)

    @staticmethod
    def _run_once(
        loaded: _Loaded,
        array: np.ndarray,
        interrupt: Interrupt | None,
        *,
        rows_before: int,
        rows_total: int,
    ) -> np.ndarray:
        contract = loaded.contract
        options = None if interrupt is None else interrupt.run_options()
        try:
            if interrupt is not None and interrupt.fired:
                raise StoppedError(interrupt.reason or "stop requested", rows_before, rows_total)
            outputs = loaded.session.run(
                [contract.output_name], {contract.input_name: array}, options
            )
        except StoppedError:
            raise
        except Exception as exc:  # onnxruntime raises its own Exception subclasses
            if interrupt is not None and interrupt.fired:
                reason = interrupt.reason or "stop requested"
                raise StoppedError(reason, rows_before, rows_total) from exc
            raise InferenceError(f"inference failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if interrupt is not None and options is not None:
                interrupt.release(options)
        output = outputs[0]
        if not isinstance(output, np.ndarray):
            raise ModelError(
                f"output {contract.output_name!r} is a {type(output).__name__}, not a tensor"
            )
        return output

    def _load(self, model_bytes: bytes, sha256: str) -> _Loaded:
        with self._lock:
            loaded = self._sessions.get(sha256)
            if loaded is not None:
                self._sessions.move_to_end(sha256)
                return loaded
        actual = hashlib.sha256(model_bytes).hexdigest()
        if actual != sha256:
            raise ModelError(f"model bytes do not match sha256: expected {sha256}, got {actual}")
        loaded = self._create(model_bytes, sha256)
        with self._lock:
            self._sessions[sha256] = loaded
            self._sessions.move_to_end(sha256)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return loaded

    def _create(self, model_bytes: bytes, sha256: str) -> _Loaded:
        refuse_external_data(model_bytes)  # before onnxruntime could open the files it names
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; failures surface as exceptions
        options.intra_op_num_threads = self.intra_op_threads
        try:
            session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=list(self.providers)
            )
        except Exception as exc:  # onnxruntime raises its own Exception subclasses
            raise ModelError(
                f"onnxruntime cannot load model {sha256[:12]}: {type(exc).__name__}: {exc}"
            ) from exc
        attached = session.get_providers()[0]
        if attached != self.providers[0]:
            logger.info(
                "model %s runs on %s, not the preferred %s",
                sha256[:12],
                attached,
                self.providers[0],
            )
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ModelError(f"model has {len(inputs)} inputs ({names}); the executor feeds one")
        if not outputs:
            raise ModelError("model has no outputs")
        dtype = _ONNX_TO_NUMPY.get(inputs[0].type)
        if dtype is None:
            raise ModelError(
                f"model input {inputs[0].name!r} has unsupported type {inputs[0].type}"
            )
        contract = ModelContract(
            input_name=inputs[0].name,
            input_dtype=dtype,
            input_shape=tuple(_dim(d) for d in inputs[0].shape),
            output_name=outputs[0].name,
            provider=attached,
        )
        return _Loaded(session=session, contract=contract)


def _dim(value: object) -> Dim:
    """A dimension as onnxruntime reports it: int (static), str (symbolic) or None."""
    if isinstance(value, int) or value is None:
        return value
    return str(value)
