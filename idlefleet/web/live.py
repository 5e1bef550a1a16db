"""A page's live part on its own: what htmx fetches again when a new plan is published.

Every open page asks at once right after a plan, so live parts are rendered as part of
publishing the plan (`prerender`, a `PlanBoard` listener): each address and audience a page
has shown lately, once, before the pages are told of the plan. Their requests then find it
ready, and a hundred open Fleet pages cost one render in the publishing thread, not a
hundred between plans. A part asked for later, or for another address, is rendered on
request and kept for `FRAGMENT_TTL_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request

log = logging.getLogger(__name__)

#: The header htmx sends with the requests it makes.
LIVE_HEADER = "HX-Request"
#: How long a rendered live part is served again [s]: its ages and counts are that old.
FRAGMENT_TTL_S = 10.0
#: Rendered live parts kept [count] (the oldest is dropped first).
MAX_FRAGMENTS = 256

#: Addresses and audiences rendered ahead of the pages' requests [count].
MAX_WATCHED = 64

#: (path, query, role, vehicle): who sees the same live part.
Audience = tuple[str, str, int, str | None]
#: (plan revision, audience).
FragmentKey = tuple[int | None, Audience]
#: Renders one live part: the request htmx would send, answered with the part's HTML.
Renderer = Callable[[Request], str | None]


def wants_live_part(request: Request) -> bool:
    """The request is htmx's, fetching a page's live part."""
    return request.headers.get(LIVE_HEADER) == "true"


class LiveParts:
    """Renders pages' live parts (the `live` block inside base.html's `live_region`) and
    keeps them for `FRAGMENT_TTL_S`."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env
        self._region = env.get_template("live.html").module.live_region  # type: ignore[attr-defined]
        self._chart = env.get_template("charts.html").module.chart  # type: ignore[attr-defined]
        self._kept: OrderedDict[FragmentKey, tuple[float, str]] = OrderedDict()
        self._watched: OrderedDict[Audience, tuple[Request, Renderer]] = OrderedDict()
        self._lock = threading.Lock()
        #: The newest plan whose live parts are ready: pages hear of no newer one.
        self.ready_revision: int | None = None

    def render(self, request: Request, name: str, context: Mapping[str, Any]) -> str:
        """The live part of template `name` with `context`, inside its region."""
        template = self._env.get_template(name)
        values = {"chart": self._chart, "request": request, **context}
        body = "".join(template.blocks["live"](template.new_context(values)))
        return str(self._region(request, Markup(body)))

    def kept(self, key: FragmentKey) -> str | None:
        """The live part rendered for `key` less than `FRAGMENT_TTL_S` ago, if any."""
        with self._lock:
            entry = self._kept.get(key)
        if entry is None or time.monotonic() - entry[0] > FRAGMENT_TTL_S:
            return None
        return entry[1]

    def keep(self, key: FragmentKey, html: str) -> None:
        with self._lock:
            self._kept[key] = (time.monotonic(), html)
            self._kept.move_to_end(key)
            while len(self._kept) > MAX_FRAGMENTS:
                self._kept.popitem(last=False)

    def watch(self, audience: Audience, request: Request, renderer: Renderer) -> None:
        """Render `audience`'s live part with each new plan (the newest `MAX_WATCHED`)."""
        live_request = Request(
            {**request.scope, "headers": [*request.scope["headers"], (b"hx-request", b"true")]}
        )
        with self._lock:
            self._watched[audience] = (live_request, renderer)
            self._watched.move_to_end(audience)
            while len(self._watched) > MAX_WATCHED:
                self._watched.popitem(last=False)

    def prerender(self, revision: int) -> None:
        """Render every watched live part of plan `revision`, then let pages hear of it."""
        with self._lock:
            watched = list(self._watched.items())
        try:
            for audience, (request, renderer) in watched:
                try:
                    html = renderer(request)
                except Exception:  # that page renders on request (and fails there)
                    log.exception("live part of %s not rendered ahead", audience[0])
                    continue
                if html is not None:
                    self.keep((revision, audience), html)
        finally:
            self.ready_revision = revision
