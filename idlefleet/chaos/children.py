"""A chaos worker process (`idlefleet.chaos.workers`) driven over JSON lines on its pipes."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any


class Child:
    """A worker process driven by JSON lines."""

    def __init__(self, role: str, config: dict[str, Any], directory: Path, env: dict[str, str]):
        self.role = role
        path = directory / f"{role}.json"
        path.write_text(json.dumps(config))
        self._log = (directory / f"{role}.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "idlefleet.chaos.workers", role, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []  # lines that are not replies (agents' reports)
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,))
        self._reader.daemon = True
        self._reader.start()
        self.ready = self.reply(timeout_s=120)

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            document = json.loads(line)
            if "charge" in document or "computed" in document:
                self.events.append(document)
            else:
                self.lines.put(document)

    def reply(self, timeout_s: float = 120) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=timeout_s)
        except queue.Empty:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGUSR1)  # its threads' stacks, to its log
                time.sleep(1.0)
            raise RuntimeError(
                f"{self.role} worker silent for {timeout_s:.0f} s; see {self._log.name}"
            ) from None

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def ask(self, command: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
        self.send(command)
        return self.reply(timeout_s)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush."""
        self.process.kill()
        self._reap()

    def close(self) -> None:
        """Close stdin (the worker's cue to stop) and wait; kill it if it lingers."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def _reap(self) -> None:
        self.process.wait()
        self._reader.join(10)  # reads to the end of the dead process's output
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(BrokenPipeError):  # unsent commands to a dead worker
                    pipe.close()
        self._log.close()
