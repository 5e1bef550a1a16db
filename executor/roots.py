"""The directories a work item may read from and write into, and opening files only there.

A location is resolved (`realpath`: every symlink followed) and must then lie inside one of
its roots; the file is opened by walking from the root's directory one component at a time
without following symlinks (`O_NOFOLLOW`), so a link swapped in meanwhile fails the open
rather than leading outside. Files are opened non-blocking (a FIFO or device cannot hold the
open) and only regular files are read. Output directories are created one component at a
time below their root, never outside it.

A location outside every root fails with `OutsideRootsError`, whose reason says only that:
nothing about whether, or what, the file outside is.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from executor.errors import ExecutionError

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutsideRootsError(ExecutionError):
    """A location that does not resolve inside any allowed root."""


def _resolved_roots(roots: Sequence[Path | str], field: str) -> tuple[Path, ...]:
    resolved = tuple(Path(os.path.realpath(root)) for root in roots)
    if any(root == Path(root.anchor) for root in resolved):
        raise ValueError(f"{field} may not include the filesystem root: it confines nothing")
    return resolved


@dataclass(frozen=True)
class StorageRoots:
    """Where inputs and models are read from and outputs written to, resolved when made.

    `default()` keeps the demo, the chaos runs and the tests working: the working directory
    (unless it is `/`) and the system temporary directory for everything, and the installed
    packages' directory for models as well (pre-trained models shipped in wheels).
    """

    input_roots: tuple[Path, ...]
    model_roots: tuple[Path, ...]
    output_roots: tuple[Path, ...]

    def __post_init__(self) -> None:
        for field in ("input_roots", "model_roots", "output_roots"):
            object.__setattr__(self, field, _resolved_roots(getattr(self, field), field))

    @classmethod
    def default(cls) -> StorageRoots:
        places = [Path(tempfile.gettempdir())]
        working = Path.cwd()
        if working != Path(working.anchor):
            places.append(working)
        models = [*places, Path(sysconfig.get_paths()["purelib"])]
        return cls(tuple(places), tuple(models), tuple(places))


def _inside(path: Path, roots: Sequence[Path], what: str) -> tuple[Path, tuple[str, ...]]:
    """The root `path` resolves inside and the components below it; OutsideRootsError."""
    if not path.is_absolute():
        raise OutsideRootsError(f"{what} location {str(path)!r} is not an absolute path")
    real = Path(os.path.realpath(path))
    for root in roots:
        if real == root or real.is_relative_to(root):
            return root, real.relative_to(root).parts
    raise OutsideRootsError(f"{what} location {str(path)!r} is outside the allowed roots")


def _walk(root: Path, parts: Sequence[str], create: bool = False) -> int:
    """A descriptor of the directory `root/parts...`, each component opened without following
    symlinks and, with `create`, made when missing. The caller closes it."""
    fd = os.open(root, _DIRECTORY_FLAGS)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            inner = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: Path, roots: Sequence[Path], what: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file `path` inside `roots`, and its stat.

    Raises OutsideRootsError, ExecutionError (not a regular file) or OSError (e.g. missing).
    """
    root, parts = _inside(path, roots, what)
    if not parts:
        raise ExecutionError(f"{what} {str(path)!r} is a directory, not a regular file")
    directory = _walk(root, parts[:-1])
    try:
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
    finally:
        os.close(directory)
    return fd, _regular(fd, path, what)


def open_anywhere(path: Path, what: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file `path` (not a symlink) wherever it is."""
    fd = os.open(path, _FILE_FLAGS)
    return fd, _regular(fd, path, what)


def _regular(fd: int, path: Path, what: str) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ExecutionError(f"{what} {str(path)!r} is not a regular file")
    return info


def open_directory(path: Path, roots: Sequence[Path], what: str) -> tuple[int, Path]:
    """A descriptor of the directory `path` inside `roots` (made if missing, below its root
    only) and its resolved path. Raises OutsideRootsError or OSError."""
    root, parts = _inside(path, roots, what)
    return _walk(root, parts, create=True), root.joinpath(*parts)
