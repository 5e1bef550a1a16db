"""Errors raised while executing a work item.

Every error carries `reason`: one line, human-readable, naming what was expected and what
was found. The agent copies it into a failed `Result`, so it must make sense to someone
reading the results topic without the car's logs.
"""

from __future__ import annotations

MAX_REASON_CHARS = 500


def one_line(text: str, max_chars: int = MAX_REASON_CHARS) -> str:
    """`text` with whitespace runs collapsed to single spaces, cut to `max_chars` characters."""
    collapsed = " ".join(text.split())
    if len(collapsed) <= max_chars:
        return collapsed
    return collapsed[: max_chars - 3] + "..."


class ExecutionError(Exception):
    """Base of every executor error; `reason` is a one-line cause."""

    def __init__(self, reason: str) -> None:
        self.reason = one_line(reason) or type(self).__name__
        super().__init__(self.reason)


class UriError(ExecutionError):
    """A URI that does not name a local file (unsupported scheme, host or syntax)."""


class ModelError(ExecutionError):
    """A model that cannot be fetched, verified or loaded into a session."""


class InputError(ExecutionError):
    """An input shard that cannot be read or does not fit the model's input contract."""


class InferenceError(ExecutionError):
    """A session that loaded but failed while running."""


class OutputError(ExecutionError):
    """An output that cannot be written where the work item asks."""


class StoreError(ExecutionError):
    """An object store or a URL that cannot give or take an object: missing, too large,
    refused, or unreachable after retries. Reasons name the object, never a credential or
    the query of a presigned URL."""


class StoppedError(ExecutionError):
    """Work stopped on request (the car left, was unplugged, or the agent is stopping).

    `rows_done` of `rows_total` input rows [count] had been processed when it stopped.
    """

    def __init__(self, reason: str, rows_done: int, rows_total: int) -> None:
        super().__init__(f"stopped: {reason} (after {rows_done} of {rows_total} rows)")
        self.rows_done = rows_done
        self.rows_total = rows_total

    @property
    def progress_frac(self) -> float:
        """Share of the shard's rows done [0..1]."""
        return self.rows_done / self.rows_total if self.rows_total else 0.0
