"""The console's FastAPI app: login, logout, and the Fleet, Site, Jobs, Grid, My car and
Health pages.

Pages need a signed session of at least the viewer role; a login exchanges a token from the
same token file as the gRPC API (`idlefleet.tokens`) for one. Every form carries a CSRF
token; every response forbids loading anything but the console's own files (CSP).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Annotated, Any

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idlefleet.queries.errors import InvalidFieldError, UnknownIdError
from idlefleet.queries.health import HealthSource
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.what_if import WhatIfRunner
from idlefleet.tokens import Role, TokenTable
from idlefleet.web.fleet_page import fleet_page
from idlefleet.web.formatting import FILTERS
from idlefleet.web.grid_page import SCOPE_PARAM, GridPage, grid_page
from idlefleet.web.grid_what_if import (
    MAX_FIELD_CHARS,
    WHAT_IF_ROLE,
    FormError,
    WhatIfForm,
    WhatIfResult,
    run_what_if,
)
from idlefleet.web.health_page import health_page
from idlefleet.web.jobs_page import job_detail, jobs_page, submit_command
from idlefleet.web.live import LiveParts, wants_live_part
from idlefleet.web.my_car_page import Access, PreferencesForm, access, car_page
from idlefleet.web.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, SessionSigner
from idlefleet.web.site_page import site_page

log = logging.getLogger(__name__)

#: Sent with every response: only the console's own scripts, styles and images.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The least role that may open the console's pages.
PAGE_ROLE = Role.VIEWER
#: How often an open page's event stream looks for a new plan [s].
EVENT_POLL_S = 1.0
#: Pages hear of a new plan spread over this long [s], each at a random moment, so that
#: their requests for it do not all land at once beside the gRPC API's.
REFRESH_SPREAD_S = 5.0
#: Longest silence on an event stream before a keepalive comment [s].
KEEPALIVE_S = 15.0
#: Longest token a login form may post [characters]: bounds the work of a bad request.
MAX_TOKEN_CHARS = 512
#: The least role that may submit jobs (as the gRPC API's SubmitJob).
SUBMIT_ROLE = Role.OPERATOR
#: Longest job id a Jobs page query may carry [characters] (`streams.messages.Identifier`).
MAX_ID_CHARS = 200
#: A form's text field, bounded like a token.
FormText = Annotated[str, Form(max_length=MAX_TOKEN_CHARS)]


class _SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response (plain ASGI: no task per request, and event
    streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    backend: FleetBackend,
    tokens: TokenTable,
    health: HealthSource,
    signer: SessionSigner | None = None,
    *,
    secure_cookies: bool = False,
    api_target: str | None = None,
    what_if: WhatIfRunner | None = None,
) -> FastAPI:
    """The console over `backend`, signing in callers with `tokens`; `secure_cookies` marks
    the session cookie Secure (set it when serving over TLS); `api_target` is the gRPC API's
    HOST:PORT that the Jobs page's submit command names (None: a placeholder); `what_if`
    plans the Grid page's what-ifs (None: the page offers none)."""
    signer = signer or SessionSigner()
    package = resources.files("idlefleet.web")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(package / "templates")), autoescape=True
    )
    env.filters.update(FILTERS)
    templates = Jinja2Templates(env=env)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(package / "static")), name="static")

    live = LiveParts(env)
    views = backend.board.views
    live.ready_revision = None if views is None else views.revision
    backend.board.on_publish(lambda views: live.prerender(views.revision))

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """The page `name` (only its live part when htmx asks for that)."""
        if status == 200 and wants_live_part(request) and "live" in env.get_template(name).blocks:
            return HTMLResponse(live.render(request, name, context))
        # the plan the page shows: its event stream tells of any newer one, even one ready
        # before the stream connects
        context = {"plan_revision": live.ready_revision, **context}
        return templates.TemplateResponse(request, name, context, status_code=status)

    def signed_in(request: Request) -> Session | None:
        return signer.session(request.cookies.get(SESSION_COOKIE))

    def page(
        handler: Callable[[Request, Session], Response], least: Role = PAGE_ROLE
    ) -> Callable[[Request], Response]:
        """`handler` for a signed-in caller of role `least` or above."""

        def guarded(request: Request) -> Response:
            session = signed_in(request)
            if session is None:
                return RedirectResponse("/login", status_code=303)
            if session.role < least:
                return render(
                    request, "refused.html", 403, session=session, needed=least.name.lower()
                )
            audience = (request.url.path, request.url.query, int(session.role), session.vehicle_id)

            def live_part(live_request: Request) -> str | None:
                response = handler(live_request, session)
                if response.status_code != 200 or not isinstance(response.body, bytes):
                    return None
                html = response.body.decode()
                return html if html.startswith('<div id="live"') else None  # a page has one

            if request.method != "GET":
                return handler(request, session)
            live.watch(audience, request, live_part)
            if not wants_live_part(request):
                return handler(request, session)
            views = backend.board.views
            key = (None if views is None else views.revision, audience)
            html = live.kept(key)
            if html is None:
                html = live_part(request)
                if html is None:
                    return handler(request, session)
                live.keep(key, html)
            return HTMLResponse(html)

        return guarded

    def login_form(request: Request, error: str | None = None, status: int = 200) -> Response:
        token, cookie = signer.login_csrf()
        response = render(request, "login.html", status, csrf=token, error=error, session=None)
        _set_cookie(response, LOGIN_CSRF_COOKIE, cookie, 600, secure_cookies)
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        return login_form(request)

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)] = "",
        csrf: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)] = "",
    ) -> Response:
        if not signer.login_csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
            return login_form(request, "The form expired: sign in again.", 400)
        principal = tokens.principal_of(token.strip()) if token.strip() else None
        if principal is None:
            log.warning("web console: refused a sign-in: unknown token")
            return login_form(request, "Unknown token.", 401)
        _, cookie = signer.new_session(principal)
        response = RedirectResponse(_home(principal.role), status_code=303)
        _set_cookie(response, SESSION_COOKIE, cookie, signer.max_age_s, secure_cookies)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        log.info("web console: %s signed in (%s)", principal.name, principal.role.name.lower())
        return response

    @app.post("/logout")
    def logout(
        request: Request, csrf: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)] = ""
    ) -> Response:
        session = signed_in(request)
        if session is not None and not session.csrf_matches(csrf):
            return Response("CSRF token missing or wrong", status_code=400, media_type="text/plain")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/")
    def home(request: Request) -> Response:
        session = signed_in(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(_home(session.role), status_code=303)

    @app.get("/events")
    async def events(request: Request) -> Response:
        """Server-sent events: `plan` (data: its revision) whenever a plan newer than the
        page's (`?since=REVISION`; default: the newest now) is published, and a comment
        every `KEEPALIVE_S` so proxies keep the stream open."""
        if signed_in(request) is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        shown = _count(request, "since", -1)
        since = live.ready_revision if shown < 0 else shown
        return StreamingResponse(_plan_events(request, live, since), media_type="text/event-stream")

    def fleet(request: Request, session: Session) -> Response:
        view = fleet_page(backend, health(), _count(request, "sites", 1))
        return render(request, "fleet.html", session=session, page=view)

    def health_status(request: Request, session: Session) -> Response:
        return render(request, "health.html", session=session, page=health_page(backend, health()))

    def site(request: Request, session: Session) -> Response:
        site_id = request.path_params["site_id"]
        try:
            view = site_page(
                backend, site_id, _count(request, "page", 1), request.query_params.get("car")
            )
        except UnknownIdError:
            return render(request, "site_unknown.html", 404, session=session, site_id=site_id)
        return render(request, "site.html", session=session, site=view)

    def jobs(request: Request, session: Session) -> Response:
        after = request.query_params.get("after", "")[:MAX_ID_CHARS]
        command = submit_command(api_target) if session.role >= SUBMIT_ROLE else None
        return render(
            request, "jobs.html", session=session, page=jobs_page(backend, after), command=command
        )

    def job(request: Request, session: Session) -> Response:
        job_id = request.path_params["job_id"]
        shard = _count(request, "first", 0)
        try:
            detail = job_detail(backend, job_id, shard)
        except UnknownIdError:
            return render(request, "job_unknown.html", 404, session=session, job_id=job_id)
        return render(request, "job.html", session=session, detail=detail)

    def car(
        request: Request,
        session: Session,
        vehicle_id: str,
        form: PreferencesForm | None = None,
    ) -> Response:
        """A car's page (the owner's own, or any for viewers and above); with `form`, the
        preferences posted: saved and redirected to the page, or shown again, refused."""
        grant = access(session, vehicle_id)
        if grant is Access.REFUSED:
            return render(request, "not_your_car.html", 403, session=session, asked=vehicle_id)
        if form is not None and grant is Access.READ:  # as SetOwnerPreferences refuses it
            return render(request, "refused.html", 403, session=session, needed="operator")
        status = 200
        if form is not None:
            try:
                preferences = form.preferences(vehicle_id, backend.now(), session.name)
                backend.set_preferences(preferences)
                return RedirectResponse(f"{request.url.path}?saved=1", status_code=303)
            except InvalidFieldError as error:
                form, status = form.refused(error), 400
        try:
            view = car_page(backend, vehicle_id, grant, form, "saved" in request.query_params)
        except UnknownIdError:
            return render(
                request, "not_your_car.html", 404, session=session, asked=vehicle_id, unknown=True
            )
        return render(request, "my_car.html", status, session=session, page=view)

    def my_car(request: Request, session: Session) -> Response:
        if session.vehicle_id is None:  # no car of one's own: the fleet
            return RedirectResponse(_home(session.role), status_code=303)
        return car(request, session, session.vehicle_id)

    def any_car(request: Request, session: Session) -> Response:
        return car(request, session, request.path_params["vehicle_id"])

    def set_preferences(
        request: Request,
        csrf: FormText = "",
        participating: FormText = "",
        reserve_kwh: FormText = "",
        target_kwh: FormText = "",
        expected_departure: FormText = "",
        only_at_sites: Annotated[list[str] | None, Form()] = None,
        min_soc_frac: FormText = "",
        solar_surplus_only: FormText = "",
    ) -> Response:
        session = signed_in(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if not session.csrf_matches(csrf):
            return Response("CSRF token missing or wrong", status_code=400, media_type="text/plain")
        vehicle_id = request.path_params.get("vehicle_id", session.vehicle_id or "")
        form = PreferencesForm(
            participating=bool(participating),
            reserve_kwh=reserve_kwh,
            target_kwh=target_kwh,
            expected_departure=expected_departure,
            only_at_sites=tuple(only_at_sites or ()),
            min_soc_frac=min_soc_frac,
            solar_surplus_only=bool(solar_surplus_only),
        )
        return car(request, session, vehicle_id, form)

    app.add_api_route("/my-car", page(my_car, least=Role.OWNER), methods=["GET"])
    app.add_api_route("/my-car", set_preferences, methods=["POST"])
    app.add_api_route("/cars/{vehicle_id}", page(any_car, least=Role.OWNER), methods=["GET"])
    app.add_api_route("/cars/{vehicle_id}", set_preferences, methods=["POST"])
    app.add_api_route("/fleet", page(fleet), methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/sites/{site_id}", page(site), methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/jobs", page(jobs), methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/jobs/{job_id}", page(job), methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/health", page(health_status), methods=["GET"], response_class=HTMLResponse)

    def grid_view(
        request: Request,
        session: Session,
        form: WhatIfForm | None = None,
        result: WhatIfResult | None = None,
        error: FormError | None = None,
    ) -> Response:
        view: GridPage = grid_page(backend, request.query_params.get(SCOPE_PARAM))
        status = 400 if error is not None else 200
        if view.scope_error is not None:
            status = view.scope_error.status
        if form is None:
            first_site = next((c.value for c in view.scopes if c.value.startswith("site:")), "")
            form = WhatIfForm.default(view.now, backend.settings.slot_minutes, first_site)
        return render(
            request,
            "grid.html",
            status,
            session=session,
            page=view,
            form=form,
            result=result,
            error=error,
            what_if_role=WHAT_IF_ROLE.name.lower(),
            may_try=session.role >= WHAT_IF_ROLE and what_if is not None,
            what_if_served=what_if is not None,
        )

    def grid(request: Request, session: Session) -> Response:
        return grid_view(request, session)

    @app.post("/grid", response_class=HTMLResponse)
    def grid_what_if(
        request: Request,
        csrf: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)] = "",
        change: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        target: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        start: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        end: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        cap_kw: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        shards: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
        value_per_shard: Annotated[str, Form(max_length=MAX_FIELD_CHARS)] = "",
    ) -> Response:
        """A what-if from the Grid page's form, answered on the page (nothing is changed)."""
        form = WhatIfForm(change, target, start, end, cap_kw, shards, value_per_shard)

        def answer(request: Request, session: Session) -> Response:
            if not session.csrf_matches(csrf):
                return Response(
                    "CSRF token missing or wrong", status_code=400, media_type="text/plain"
                )
            if what_if is None:
                return grid_view(request, session, form, error=FormError("change", "not served"))
            sites = {s.site.site_id: s.site.region for s in backend.fleet_status().sites}
            try:
                result = run_what_if(form, backend, what_if, sites)
            except FormError as exc:
                return grid_view(request, session, form, error=exc)
            log.info("web console: %s tried a what-if: %s", session.name, result.description)
            return grid_view(request, session, form, result)

        return page(answer, least=WHAT_IF_ROLE)(request)

    app.add_api_route("/grid", page(grid), methods=["GET"], response_class=HTMLResponse)
    return app


def _count(request: Request, name: str, default: int) -> int:
    """Query parameter `name` as a count (a page, a first row), or `default` when it is
    missing or is not a whole number of at most nine digits."""
    text = request.query_params.get(name, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else default


def _home(role: Role) -> str:
    """Where a caller lands after signing in: an owner on their car, everyone else on Fleet."""
    return "/my-car" if role is Role.OWNER else "/fleet"


async def _plan_events(
    request: Request, live: LiveParts, revision: int | None
) -> AsyncIterator[str]:
    """The `/events` stream of a page showing plan `revision`: polls the newest plan whose
    live parts are ready (a field read, no lock) every `EVENT_POLL_S`, so an open page costs
    the service no thread while it waits."""
    quiet_s = 0.0
    while not await request.is_disconnected():
        if live.ready_revision != revision:
            await asyncio.sleep(random.uniform(0.0, REFRESH_SPREAD_S))
            revision = live.ready_revision
            quiet_s = 0.0
            yield f"event: plan\ndata: {revision}\n\n"
        elif quiet_s >= KEEPALIVE_S:
            quiet_s = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(EVENT_POLL_S)
        quiet_s += EVENT_POLL_S


def _set_cookie(response: Response, name: str, value: str, max_age_s: int, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=max_age_s, path="/", httponly=True, samesite="strict", secure=secure
    )
