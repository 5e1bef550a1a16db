"""Work items run in child processes the agent can kill, so its bounds hold whatever a model does.

A `Sandbox` is one long-lived child process (a fresh interpreter, not a fork: it shares no
lock or thread with the agent, and does not import the agent's main module) holding a copy
of the agent's `OnnxRunner` (built from its configuration) and its own session cache. The
child reads the model and the input shard, runs onnxruntime and writes the output; the agent
sends it a `WorkRequest` and gets a `WorkReply` back, a few hundred bytes each way, plus a
progress message per chunk of rows (`idlefleet bench executor` measures the cost).

Bounds:
- Memory: the child's data segment (`RLIMIT_DATA`: every private writable mapping, which is
  what malloc, numpy and onnxruntime's arena take; reserved but unused address space does
  not count, so accelerator runtimes still start) is capped at `memory_bytes`. A tensor
  that would exhaust memory fails to allocate in the child and the item fails with a
  reason; a child that dies of it anyway is reported and replaced.
- Time: as soon as `stop_reason()` names a reason (the car left, the lease ended), the
  child terminates the run (`RunOptions.terminate`: between row chunks, graph nodes and a
  `Loop`'s iterations). A run that has not returned `kill_after_s` later (one node that
  computes for minutes does not look at the flag) is killed with its process; the next run
  starts a fresh one. Each run may also use at most `cpu_s` of CPU time (`RLIMIT_CPU`, all
  its threads together), a bound that holds even if the agent cannot watch it.
- Files: the child works in an empty directory of its own that it cannot write to (removed
  when it ends), so nothing a model names relative to it exists; it writes no core dumps;
  it reads and writes only inside the request's `roots` (`executor.roots`).

`SandboxPool` lends idle sandboxes (one per run going on at once) and starts one when none is
idle. `sandboxes_for` gives every agent of a process with the same runner configuration and
memory bound the same pool. A child exits as soon as its parent does, SIGKILL included:
its pipes reach EOF."""

from __future__ import annotations

import atexit
import json
import logging
import math
import multiprocessing
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

from executor.errors import ExecutionError, StoppedError, one_line
from executor.jobdata import ItemData, ItemKeys, ModelCacheConfig
from executor.roots import StorageRoots
from executor.runtime import Interrupt, OnnxRunner
from streams.messages import WorkItem

logger = logging.getLogger(__name__)

#: How often a waiting run looks at its stop reason [s]: the most a stop waits to be passed on.
POLL_S = 0.02
_MIB = 1024 * 1024

#: A run's stop condition: why it must stop now, or None while it may go on.
StopReason = Callable[[], str | None]


@dataclass(frozen=True)
class WorkRequest:
    """One work item for a sandbox: models and inputs of at most `max_model_bytes` and
    `max_input_bytes` [bytes] (local ones inside `roots`), rows fed `chunk_rows` at a time
    [count] (0: all), at most `cpu_s` [s] of CPU time (None: no bound). `keys` open the
    item's sealed data; fetched models are kept in `model_cache` (None: not kept)."""

    item: WorkItem
    vehicle_id: str
    max_model_bytes: int
    max_input_bytes: int
    chunk_rows: int
    roots: StorageRoots
    cpu_s: float | None = None
    keys: ItemKeys = field(default_factory=ItemKeys)
    model_cache: ModelCacheConfig | None = None


@dataclass(frozen=True)
class WorkReply:
    """How a work item ended: "done" with its output, or "failed" with a one-line reason and,
    when it stopped early, the share of its rows done [0..1]."""

    status: Literal["done", "failed"]
    reason: str | None = None
    provider: str | None = None
    output_uri: str | None = None
    output_sha256: str | None = None
    progress_frac: float | None = None


def execute(
    runner: OnnxRunner,
    data: ItemData,
    request: WorkRequest,
    interrupt: Interrupt,
    progress: Callable[[int, int], None] | None = None,
) -> WorkReply:
    """Fetch, verify, open, run and put one work item; never raises (a failure is a reply)."""
    item = request.item
    provider = None
    try:
        roots, keys = request.roots, request.keys
        model, model_sha256 = data.model(
            item, keys, request.max_model_bytes, roots.model_roots, request.model_cache
        )
        array = data.input(item, keys, request.max_input_bytes, roots.input_roots)
        outcome = runner.run(
            model,
            model_sha256,
            array,
            interrupt=interrupt,
            chunk_rows=request.chunk_rows,
            progress=progress,
        )
        provider = outcome.provider
        output_uri, output_sha256 = data.put_output(
            item, keys, request.vehicle_id, outcome.outputs, roots.output_roots
        )
    except StoppedError as exc:
        return WorkReply("failed", exc.reason, provider, progress_frac=exc.progress_frac)
    except ExecutionError as exc:
        return WorkReply("failed", exc.reason, provider)
    except MemoryError:
        return WorkReply("failed", "out of memory", provider)
    except Exception as exc:  # a bug or an unforeseen library error: still one reply
        logger.exception("work item %s failed unexpectedly", item.work_id)
        return WorkReply("failed", one_line(f"unexpected {type(exc).__name__}: {exc}"), provider)
    return WorkReply("done", None, provider, output_uri, output_sha256)


_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[3]); "
    "from executor.sandbox import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
)


def serve(requests_fd: int, control_fd: int) -> None:
    """The child process: build the runner it is sent, then run each request it is sent.

    Messages on the requests pipe: in, `(runner, memory_bytes)` once, then `(seq, request)`;
    out, `("progress", rows_done, rows_total)` as a run proceeds and `("reply", seq, reply)`.
    On the control pipe, `(seq, reason)` stops run `seq`. It exits when either pipe closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when its work ends
    requests, control = Connection(requests_fd), Connection(control_fd)
    runner, memory_bytes = requests.recv()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no model data left in core files
    if memory_bytes is not None:
        memory_bytes = _set_soft_limit(resource.RLIMIT_DATA, memory_bytes)
    lock = threading.Lock()
    running: dict[int, Interrupt] = {}  # the run going on now, by sequence number
    stops: dict[int, str] = {}  # a stop that came before its run began

    def listen() -> None:
        while True:
            try:
                seq, reason = control.recv()
            except (EOFError, OSError):
                os._exit(0)  # the agent is gone (or dropped this sandbox): so is its work
            with lock:
                interrupt = running.get(seq)
                if interrupt is None:
                    stops.clear()
                    stops[seq] = reason
            if interrupt is not None:
                interrupt.fire(reason)

    threading.Thread(target=listen, name="sandbox-control", daemon=True).start()

    def report(rows_done: int, rows_total: int) -> None:
        requests.send(("progress", rows_done, rows_total))

    data = ItemData()
    while True:
        try:
            seq, request = requests.recv()
        except (EOFError, OSError):
            os._exit(0)
        interrupt = Interrupt()
        with lock:
            running.clear()
            running[seq] = interrupt
            early = stops.pop(seq, None)
        if early is not None:
            interrupt.fire(early)
        if request.cpu_s is not None:  # the limit counts the process's life: add the run's
            used = resource.getrusage(resource.RUSAGE_SELF)
            _set_soft_limit(
                resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime + request.cpu_s)
            )
        reply = execute(runner, data, request, interrupt, report)
        if reply.status == "failed" and memory_bytes is not None:
            reply = _name_the_memory_bound(reply, memory_bytes)
        with lock:
            running.clear()
        requests.send(("reply", seq, reply))


def _set_soft_limit(limit: int, value: int) -> int:
    """Set the soft `limit` to `value` (at most its hard limit) and return what was set."""
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, hard))
    return value


def _name_the_memory_bound(reply: WorkReply, memory_bytes: int) -> WorkReply:
    reason = reply.reason or ""
    if "out of memory" not in reason and "Failed to allocate memory" not in reason:
        return reply
    bound = f"the run exceeded its memory bound of {memory_bytes / _MIB:.0f} MiB: {reason}"
    return WorkReply("failed", one_line(bound), reply.provider)


class Sandbox:
    """One child process running one work item at a time (its caller's thread waits).

    The child is a fresh interpreter (`sys.executable -c ...` with this process's
    `sys.path`), not a fork: it shares no lock or thread with the agent and does not import
    the agent's main module. Its working directory is a new empty one it cannot write to,
    removed when it is closed.
    """

    def __init__(self, runner: OnnxRunner, memory_bytes: int | None) -> None:
        self.workdir = tempfile.mkdtemp(prefix="idlefleet-sandbox-")
        os.chmod(self.workdir, 0o500)  # read and enter only: nothing is ever created in it
        self._requests, child_requests = multiprocessing.Pipe()
        self._control, child_control = multiprocessing.Pipe()
        fds = (child_requests.fileno(), child_control.fileno())
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, *map(str, fds), json.dumps(_import_path())],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # a parent's stdout may be a protocol
                cwd=self.workdir,
            )
        except BaseException:
            os.rmdir(self.workdir)
            raise
        finally:
            child_requests.close()
            child_control.close()
        self._seq = 0
        self._rows = (0, 0)  # rows done, rows total of the current run
        self.alive = True
        try:
            self._requests.send((runner, memory_bytes))
        except BaseException:  # the runner does not pickle: no child waits for it
            self.close(kill=True)
            raise
        logger.debug("sandbox process %d started", self._process.pid)

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_alive(self) -> bool:
        return self.alive and self._process.poll() is None

    def run(self, request: WorkRequest, stop_reason: StopReason, kill_after_s: float) -> WorkReply:
        """Run `request`; stop it when `stop_reason()` names a reason, and kill the process
        when the run has not returned `kill_after_s` [s] after that."""
        self._seq += 1
        seq = self._seq
        self._rows = (0, 0)
        stopping: tuple[str, float] | None = None
        try:
            self._requests.send((seq, request))
            while True:
                if self._requests.poll(POLL_S):
                    message = self._requests.recv()
                    if message[0] == "progress":
                        self._rows = (message[1], message[2])
                        continue
                    return self._reply(seq, message)
                if stopping is None:
                    reason = stop_reason()
                    if reason is not None:
                        self._control.send((seq, reason))
                        stopping = (reason, time.monotonic())
                elif time.monotonic() - stopping[1] >= kill_after_s:
                    self.close(kill=True)
                    return self._stopped(
                        stopping[0], f"killed: it ran {kill_after_s:g} s past the stop"
                    )
        except (EOFError, OSError) as exc:
            return self._died(exc)
        except BaseException:  # e.g. stop_reason raised: never leave a run behind
            self.close(kill=True)
            raise

    def close(self, kill: bool = False) -> None:
        """End the child: at once with `kill`, else by closing its pipes (it exits on EOF)."""
        self.alive = False
        if kill and self._process.poll() is None:
            self._process.kill()
        self._requests.close()
        self._control.close()
        try:
            self._process.wait(5.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _reply(self, seq: int, message: tuple[Any, ...]) -> WorkReply:
        _, got, reply = message
        if got != seq or not isinstance(reply, WorkReply):  # cannot happen: do not trust it
            self.close(kill=True)
            return WorkReply("failed", f"the work process answered run {got}, not {seq}")
        return reply

    def _progress_frac(self) -> float:
        done, total = self._rows
        return min(done / total, 1.0) if total else 0.0

    def _stopped(self, reason: str, how: str) -> WorkReply:
        done, total = self._rows
        text = f"stopped: {reason} (after {done} of {total} rows); {how}"
        return WorkReply("failed", one_line(text), progress_frac=self._progress_frac())

    def _died(self, exc: BaseException) -> WorkReply:
        try:
            code = self._process.wait(5.0)
        except subprocess.TimeoutExpired:
            code = None
        how = (
            f"signal {signal.Signals(-code).name}"
            if code is not None and code < 0
            else (f"exit code {code}")
        )
        self.close(kill=True)
        done, total = self._rows
        logger.warning("sandbox process %d died: %s", self.pid, how)
        cause = (
            "the run exceeded its CPU-time bound"
            if code == -signal.SIGXCPU
            else "the model may have exhausted memory or crashed onnxruntime"
        )
        text = (
            f"the work process died ({how}; {type(exc).__name__}) after {done} of {total} "
            f"rows: {cause}"
        )
        return WorkReply("failed", one_line(text), progress_frac=self._progress_frac())


def _import_path() -> list[str]:
    """This process's import path, with the working directory made explicit."""
    return [entry or os.getcwd() for entry in sys.path]


class SandboxPool:
    """Idle sandboxes of one runner configuration and memory bound, lent one run at a time."""

    def __init__(self, runner: OnnxRunner, memory_bytes: int | None) -> None:
        self._runner = runner
        self.memory_bytes = memory_bytes
        self._idle: list[Sandbox] = []
        self._busy: set[Sandbox] = set()
        self._lock = threading.Lock()

    def run(self, request: WorkRequest, stop_reason: StopReason, kill_after_s: float) -> WorkReply:
        """Run `request` in an idle sandbox (or a new one); see `Sandbox.run`."""
        sandbox = self._take_idle() or Sandbox(self._runner, self.memory_bytes)
        with self._lock:
            self._busy.add(sandbox)
        try:
            return sandbox.run(request, stop_reason, kill_after_s)
        finally:
            with self._lock:
                self._busy.discard(sandbox)
                if sandbox.alive:
                    self._idle.append(sandbox)

    def prestart(self, count: int) -> None:
        """Start sandboxes until the pool has `count` [count], so that the first runs do not
        wait for a process to start (about a second: the interpreter and onnxruntime)."""
        with self._lock:
            missing = count - len(self._idle) - len(self._busy)
        started = [Sandbox(self._runner, self.memory_bytes) for _ in range(max(missing, 0))]
        with self._lock:
            self._idle.extend(started)

    def _take_idle(self) -> Sandbox | None:
        """An idle sandbox whose process still lives (one killed meanwhile is dropped)."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sandbox = self._idle.pop()
            if sandbox.is_alive():
                return sandbox
            sandbox.close()

    @property
    def pids(self) -> dict[str, list[int]]:
        """The process ids of the sandboxes, "idle" and "busy" (running work now)."""
        with self._lock:
            return {
                "idle": [sandbox.pid for sandbox in self._idle],
                "busy": [sandbox.pid for sandbox in self._busy],
            }

    def close(self) -> None:
        """End every idle sandbox."""
        with self._lock:
            idle, self._idle = self._idle, []
        for sandbox in idle:
            sandbox.close()


_POOLS: dict[tuple[bytes, int | None], SandboxPool] = {}
_POOLS_LOCK = threading.Lock()


def sandboxes_for(runner: OnnxRunner, memory_bytes: int | None) -> SandboxPool:
    """The process's pool for this runner configuration and memory bound [bytes] (None: no
    bound). The runner must pickle (a class defined at module level)."""
    key = (pickle.dumps(runner), memory_bytes)
    with _POOLS_LOCK:
        if not _POOLS:
            atexit.register(close_sandboxes)
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = SandboxPool(runner, memory_bytes)
        return pool


def close_sandboxes() -> None:
    """End the idle sandboxes of every pool (at exit; they would end with the process)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.close()
