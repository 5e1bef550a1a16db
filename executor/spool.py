"""Results kept on the car's disk until the broker has them, so none is lost while it is away.

A `ResultSpool` is a directory with one JSON file per `Result`, in the message's own schema
(streams.serde). `add` writes a result before it is published: a temporary file, fsync,
rename, fsync of the directory, so a crash leaves the whole file or none. `settle` deletes
it once the broker acknowledged the send, or hands it back to be sent again. `unsent`
gives the results no send is waiting on, oldest first, those an earlier run of the agent
left included.

Spooled files are data, never executable input: each is read as a `Result` (at most
MAX_MESSAGE_BYTES) and anything else in the directory is moved to `corrupt/` with a log
line. The spool holds at most `max_bytes`; a result that does not fit is not spooled
(logged) and is lost if its one send fails.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.errors import MessageError
from streams.messages import Result
from streams.serde import MAX_MESSAGE_BYTES, decode_as, encode

logger = logging.getLogger(__name__)

#: What a spool holds by default [bytes]: some 30,000 results.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Where files that are not results are moved, inside the spool directory.
CORRUPT_DIR = "corrupt"
_SUFFIX = ".json"
_PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class Spooled:
    """A result and its spool file's name (None: not on disk, the spool was full)."""

    result: Result
    name: str | None


class ResultSpool:
    """A directory of results not yet acknowledged by the broker; thread-safe."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # guards _sizes and _claimed
        self._sizes: dict[str, int] = {}  # file name -> size [bytes] of every spooled result
        self._claimed: set[str] = set()  # names a send is waiting on
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in os.scandir(directory):
            if entry.name == CORRUPT_DIR:
                continue
            if entry.name.endswith(_PARTIAL_SUFFIX) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)  # a write a crash interrupted: never renamed, never sent
            elif entry.name.endswith(_SUFFIX) and entry.is_file(follow_symlinks=False):
                self._sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
            else:
                self._set_aside(entry.name, "not a spooled result file")
        if self._sizes:
            logger.info("%d unsent result(s) in spool %s", len(self._sizes), directory)

    def __len__(self) -> int:
        """Results in the spool [count]."""
        with self._lock:
            return len(self._sizes)

    def add(self, result: Result) -> Spooled:
        """Write `result` to disk, claimed by the caller's send (`settle` it).

        A spool that is full or cannot be written logs why and returns the result unspooled.
        """
        data = encode(result)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{_SUFFIX}"
        with self._lock:
            used_bytes = sum(self._sizes.values())
            if used_bytes + len(data) > self.max_bytes:
                logger.error(
                    "result spool %s is full (%d results, %d of %d bytes): result of work %s "
                    "is not spooled and is lost if the broker does not take it now",
                    self.directory,
                    len(self._sizes),
                    used_bytes,
                    self.max_bytes,
                    result.work_id,
                )
                return Spooled(result, None)
            try:
                self._write(name, data)
            except OSError:
                logger.exception(
                    "result of work %s could not be spooled in %s", result.work_id, self.directory
                )
                return Spooled(result, None)
            self._sizes[name] = len(data)
            self._claimed.add(name)
        return Spooled(result, name)

    def unsent(self) -> list[Spooled]:
        """Spooled results no send is waiting on, oldest first, claimed by the caller's send
        (`settle` each). A file that is not a result is moved to `corrupt/`."""
        with self._lock:
            names = sorted(name for name in self._sizes if name not in self._claimed)
            self._claimed.update(names)
        spooled = []
        for name in names:
            result = self._read(name)
            if result is not None:
                spooled.append(Spooled(result, name))
        return spooled

    def settle(self, spooled: Spooled, delivered: bool) -> None:
        """Delete a delivered result's file; an undelivered one waits for `unsent`."""
        if spooled.name is None:
            return
        with self._lock:
            self._claimed.discard(spooled.name)
            if delivered:
                self._sizes.pop(spooled.name, None)
                (self.directory / spooled.name).unlink(missing_ok=True)

    def _write(self, name: str, data: bytes) -> None:
        """Write `data` as `name` atomically and durably."""
        partial = self.directory / f"{name}{_PARTIAL_SUFFIX}"
        try:
            with open(partial, "xb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, self.directory / name)
        except OSError:
            partial.unlink(missing_ok=True)
            raise
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _read(self, name: str) -> Result | None:
        """The result in file `name`, or None when it is not one (then set aside)."""
        try:
            file = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW)
            with open(file, "rb") as stream:
                return decode_as(Result, stream.read(MAX_MESSAGE_BYTES + 1))
        except (OSError, MessageError) as exc:
            self._set_aside(name, str(exc))
            return None

    def _set_aside(self, name: str, reason: str) -> None:
        """Move `name` to `corrupt/`, where it is never read again, and forget it."""
        corrupt = self.directory / CORRUPT_DIR
        logger.error("spool file %s is not a result (%s); moved to %s", name, reason, corrupt)
        with self._lock:
            self._sizes.pop(name, None)
            self._claimed.discard(name)
        try:
            corrupt.mkdir(mode=0o700, exist_ok=True)
            os.replace(self.directory / name, corrupt / name)
        except OSError:
            logger.exception("spool file %s could not be moved to %s", name, corrupt)
