"""The current plan's views, published once per plan, and the watchers waiting for the next."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from idlefleet.queries.errors import BusyError, UnavailableError
from idlefleet.queries.views import PlanViews, build_views
from optimizer.plan import PlanSnapshot
from streams.sources import DataNote

DEFAULT_MAX_WATCHERS = 16

log = logging.getLogger(__name__)


class PlanBoard:
    """Holds the views of the newest plan; `publish` computes them once for every reader.

    Watchers are bounded (each holds a server thread while it waits): one more is BusyError.
    """

    def __init__(self, max_watchers: int = DEFAULT_MAX_WATCHERS) -> None:
        self.max_watchers = max_watchers
        self._changed = threading.Condition()
        self._publishing = threading.Lock()
        self._views: PlanViews | None = None
        self._watchers = 0
        self._closed = False
        self._listeners: list[Callable[[PlanViews], object]] = []

    @property
    def views(self) -> PlanViews | None:
        """The newest plan's views, or None before the first plan."""
        return self._views

    def publish(self, snapshot: PlanSnapshot, data_notes: tuple[DataNote, ...] = ()) -> PlanViews:
        """Compute the views of a new plan (with what its cars' data lacked when it was
        made), make them current and wake the watchers."""
        with self._publishing:
            revision = 1 if self._views is None else self._views.revision + 1
            views = build_views(snapshot, revision, data_notes)
            with self._changed:
                self._views = views
                self._changed.notify_all()
            for listener in self._listeners:
                try:
                    listener(views)
                except Exception:  # a listener's fault is its own: the plan stays published
                    log.exception("a listener failed on plan revision %d", views.revision)
        return views

    def on_publish(self, listener: Callable[[PlanViews], object]) -> None:
        """Call `listener` with every plan's views once they are current, in the publishing
        thread: work done there is part of publishing (once per plan), not of requests."""
        self._listeners.append(listener)

    def close(self) -> None:
        """End every watch (the server is shutting down)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @contextmanager
    def watch(self) -> Iterator[Watch]:
        with self._changed:
            if self._closed:
                raise UnavailableError("the server is shutting down")
            if self._watchers >= self.max_watchers:
                raise BusyError(f"{self.max_watchers} plan watchers already connected")
            self._watchers += 1
        try:
            yield Watch(self)
        finally:
            with self._changed:
                self._watchers -= 1

    def next_after(self, revision: int, timeout_s: float) -> PlanViews | None:
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self._closed or (self._views is not None and self._views.revision > revision)
                ),
                timeout_s,
            )
            if self._closed:
                raise UnavailableError("the server is shutting down")
            views = self._views
            return views if views is not None and views.revision > revision else None


class Watch:
    """One reader's place on the board: each plan once, the newest when it fell behind."""

    def __init__(self, board: PlanBoard) -> None:
        self._board = board
        self._seen = 0

    def next(self, timeout_s: float) -> PlanViews | None:
        """The next plan not yet seen, or None after `timeout_s`; UnavailableError on close."""
        views = self._board.next_after(self._seen, timeout_s)
        if views is not None:
            self._seen = views.revision
        return views
