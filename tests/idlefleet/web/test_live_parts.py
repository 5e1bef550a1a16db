"""What htmx fetches when a new plan is published: every page's live part alone (the region
it swaps in, no navigation and no forms), rendered once per plan for everyone who asks
within its lifetime, and rendered again for the next plan."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from idlefleet import web
from idlefleet.queries.health import health_source
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.tokens import Role
from idlefleet.web.runner import WebConfig, serving_web
from tests.idlefleet.conftest import OWNED_CAR, SITES, Tokens
from tests.idlefleet.web.http_client import signed_in

LIVE = {"HX-Request": "true"}


@pytest.fixture
def port(backend: LocalBackend, tokens: Tokens) -> Iterator[int]:
    health = health_source(lambda: (), lambda: 0)
    with serving_web(WebConfig("127.0.0.1", 0), backend, tokens.table, health) as bound:
        assert bound is not None
        yield bound


@pytest.mark.parametrize(
    "path",
    ["/fleet", f"/sites/{SITES[0].site_id}", "/jobs", "/grid", "/health", f"/cars/{OWNED_CAR}"],
)
def test_each_pages_live_part_alone(port: int, tokens: Tokens, path: str) -> None:
    client = signed_in(port, tokens, Role.OPERATOR)
    page = client.request("GET", path)
    part = client.request("GET", path, headers=LIVE)
    assert page.status == part.status == 200
    assert part.text.lstrip().startswith('<div id="live"') and part.text.rstrip().endswith("</div>")
    assert f'hx-get="{path}"' in part.text
    assert "<nav" not in part.text.split('<nav class="pager"')[0] and "<form" not in part.text
    start = page.text.index('<div id="live"')
    assert page.text[start : start + 200] == part.text.lstrip()[:200]


def test_the_owners_live_part(port: int, tokens: Tokens) -> None:
    client = signed_in(port, tokens, Role.OWNER)
    part = client.request("GET", "/my-car", headers=LIVE)
    assert part.status == 200 and 'id="tonight"' in part.text


def test_rendered_once_per_plan_for_everyone(
    port: int, tokens: Tokens, backend: LocalBackend
) -> None:
    first = signed_in(port, tokens, Role.VIEWER).request("GET", "/fleet", headers=LIVE)
    second = signed_in(port, tokens, Role.VIEWER).request("GET", "/fleet", headers=LIVE)
    assert first.text == second.text  # the same render, though ages move on
    views = backend.board.views
    assert views is not None
    backend.board.publish(views.snapshot)
    third = signed_in(port, tokens, Role.VIEWER).request("GET", "/fleet", headers=LIVE)
    assert f"revision {views.revision + 1}" in third.text


def test_pages_hear_of_a_plan_once_their_live_parts_are_ready(
    port: int, tokens: Tokens, backend: LocalBackend
) -> None:
    client = signed_in(port, tokens, Role.VIEWER)
    assert client.request("GET", "/fleet").status == 200  # the page is open: it is watched
    views = backend.board.views
    assert views is not None
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    shown = views.revision  # the page's plan: what it names in its stream's address
    connection.request("GET", f"/events?since={shown}", headers={"Cookie": cookies})
    stream = connection.getresponse()
    assert stream.status == 200 and stream.getheader("Content-Type", "").startswith(
        "text/event-stream"
    )
    published = backend.board.publish(views.snapshot)  # renders the open page's live part
    try:
        assert stream.readline() == b"event: plan\n"
        assert stream.readline() == f"data: {published.revision}\n".encode()
    finally:
        connection.close()
    part = client.request("GET", "/fleet", headers=LIVE)
    assert f"revision {published.revision}" in part.text


def test_every_template_keeps_what_its_live_part_needs_inside_it() -> None:
    """A live part is rendered alone (its block, not the page): whatever a template sets at
    its top level, its live block cannot see."""
    templates = Path(web.__file__).parent / "templates"
    for path in templates.glob("*.html"):
        text = path.read_text()
        if "{% block live %}" not in text:
            continue
        top = re.sub(r"{%-? *block (\w+).*?{%-? *endblock", "", text, flags=re.S)
        top_names = set(re.findall(r"{%-? *(?:set|macro) (\w+)", top)) - {"active"}
        live = text.split("{% block live %}", 1)[1].split("{% endblock %}", 1)[0]
        used = {name for name in top_names if re.search(rf"\b{name}\b", live)}
        assert not used, f"{path.name}: its live block uses {used}, set outside it"
