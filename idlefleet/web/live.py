"""A page's live part on its own: what htmx fetches again when a new plan is published.

Every open page asks at once right after a plan, so a live part is built and rendered once
per plan, address and audience and then served to every page that asks within
`FRAGMENT_TTL_S`: a hundred open Fleet pages cost one render, not a hundred.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request

#: The header htmx sends with the requests it makes.
LIVE_HEADER = "HX-Request"
#: How long a rendered live part is served again [s]: its ages and counts are that old.
FRAGMENT_TTL_S = 10.0
#: Rendered live parts kept [count] (the oldest is dropped first).
MAX_FRAGMENTS = 256

#: (plan revision, path, query, role, vehicle): who sees the same live part.
FragmentKey = tuple[int | None, str, str, int, str | None]


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
        self._lock = threading.Lock()

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
