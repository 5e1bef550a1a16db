"""The Grid page's rows: demand-response caps with their decisions, and the flexibility of
a site, a region or the fleet slot by slot, read from a `FleetBackend` on every request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from idlefleet.queries.dr_decisions import DrDecision
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.views import FLEET, PlanViews, Scope
from idlefleet.web.charts import Chart, Series
from streams.messages import DemandResponseEvent

#: The form parameter that picks the flexibility's scope: `fleet`, `site:ID` or `region:ID`.
SCOPE_PARAM = "scope"
#: What a cap in force that no API caller decided says instead of a reason.
UNRECORDED_REASON = {
    True: "a utility's cap (OpenADR VEN): its reason is in the VEN's log",
    False: "decided before this service started: the reason was not kept",
}

Decided = Literal["accepted", "refused", "withdrawn"]


class ScopeError(ValueError):
    """The `scope` parameter is malformed (status 400) or names no site or region (404)."""

    def __init__(self, problem: str, status: int) -> None:
        super().__init__(f"{SCOPE_PARAM}: {problem}")
        self.status = status


@dataclass(frozen=True)
class ScopeChoice:
    """A scope the form offers: its parameter value and its label."""

    value: str
    label: str


@dataclass(frozen=True)
class DrEventRow:
    """A DR cap on a site's or a region's import [kW] over `[start, end)` [UTC]: what was
    decided and why, who asked, and how it stands at `now` (`standing`)."""

    event_id: str
    target: str
    start: datetime
    end: datetime
    max_import_kw: float
    decided: Decided
    reason: str
    requested_by: str | None
    binding: bool
    now: datetime

    @property
    def standing(self) -> str:
        """`in force now`, `in force from the start`, `ended`, or `not in force`."""
        if not self.binding:
            return "not in force"
        if self.end <= self.now:
            return "ended"
        return "in force now" if self.start <= self.now else "in force from its start"

    @property
    def in_force_now(self) -> bool:
        return self.standing == "in force now"


@dataclass(frozen=True)
class Flexibility:
    """A scope's flexibility per slot [kW] as the current plan gives it."""

    scope: ScopeChoice
    slot_starts: tuple[datetime, ...]
    baseline_import_kw: Sequence[float]
    import_cap_kw: Sequence[float]
    add_power_kw: Sequence[float]
    shed_power_kw: Sequence[float]

    @property
    def chart(self) -> Chart:
        return Chart(
            id="flexibility",
            title=f"{self.scope.label}: import and how far it can move, per slot",
            unit="kW",
            slot_starts=self.slot_starts,
            series=[
                Series("Planned import [kW]", self.baseline_import_kw, "area"),
                Series("Import cap [kW]", self.import_cap_kw, "limit"),
                Series("Up: can add [kW]", self.add_power_kw),
                Series("Down: can shed [kW]", self.shed_power_kw),
            ],
        )


@dataclass(frozen=True)
class GridPage:
    """DR caps, the scopes on offer, the chosen one's flexibility (None: no plan yet or a
    bad scope, said in `scope_error`), and the plan's start and revision."""

    now: datetime
    region_by_site: Mapping[str, str]
    dr_events: tuple[DrEventRow, ...]
    scopes: tuple[ScopeChoice, ...]
    scope: str
    flexibility: Flexibility | None
    scope_error: ScopeError | None
    plan_start: datetime | None
    plan_revision: int | None


def grid_page(backend: FleetBackend, scope: str | None = None) -> GridPage:
    """The Grid page; `scope` is the form's parameter (None: the fleet)."""
    status = backend.fleet_status()
    now = backend.now()
    views = backend.board.views
    sites = {site.site.site_id: site.site.region for site in status.sites}
    choices = scope_choices(sites)
    chosen = scope or "fleet"
    flexibility, error = None, None
    try:
        parsed = parse_scope(chosen, sites)
        if views is not None:
            flexibility = flexibility_of(views, parsed, _label(chosen, choices))
    except ScopeError as exc:
        error = exc
    return GridPage(
        now=now,
        region_by_site=sites,
        dr_events=dr_event_rows(backend.dr_events(), backend.dr_decisions.latest_by_event(), now),
        scopes=choices,
        scope=chosen,
        flexibility=flexibility,
        scope_error=error,
        plan_start=None if views is None else views.snapshot.scenario.horizon.start,
        plan_revision=None if views is None else views.revision,
    )


def scope_choices(region_by_site: Mapping[str, str]) -> tuple[ScopeChoice, ...]:
    """The fleet, then each site (with its region), then each region."""
    sites = tuple(
        ScopeChoice(f"site:{site_id}", f"Site {site_id} ({region})")
        for site_id, region in sorted(region_by_site.items())
    )
    regions = tuple(
        ScopeChoice(f"region:{region}", f"Region {region}")
        for region in sorted(set(region_by_site.values()))
    )
    return (ScopeChoice("fleet", "The fleet"), *sites, *regions)


def parse_scope(value: str, region_by_site: Mapping[str, str]) -> Scope:
    """`fleet`, `site:ID` or `region:ID` as a scope of the fleet's sites and regions."""
    if value == "fleet":
        return FLEET
    kind, _, identifier = value.partition(":")
    if kind not in ("site", "region") or not identifier:
        raise ScopeError(f"{value[:60]!r} is not fleet, site:ID or region:ID", 400)
    if kind == "site" and identifier in region_by_site:
        return Scope("site", identifier)
    if kind == "region" and identifier in region_by_site.values():
        return Scope("region", identifier)
    raise ScopeError(f"no {kind} is called {identifier[:60]!r}", 404)


def _label(value: str, choices: Sequence[ScopeChoice]) -> ScopeChoice:
    return next(choice for choice in choices if choice.value == value)


def flexibility_of(views: PlanViews, scope: Scope, choice: ScopeChoice) -> Flexibility | None:
    """The scope's flexibility in the plan (None: the plan does not cover the scope)."""
    series = views.flexibility.get(scope)
    if series is None:
        return None
    return Flexibility(
        scope=choice,
        slot_starts=tuple(datetime.fromtimestamp(s, UTC) for s in views.slot_start_s),
        baseline_import_kw=series.baseline_import_kw,
        import_cap_kw=series.import_cap_kw,
        add_power_kw=series.add_power_kw,
        shed_power_kw=series.shed_power_kw,
    )


def dr_event_rows(
    binding: Sequence[DemandResponseEvent],
    decisions: Mapping[str, DrDecision],
    now: datetime,
) -> tuple[DrEventRow, ...]:
    """A row per cap the fleet holds binding, and one per API decision that left no cap of
    its own in force (a refusal, a withdrawal, a refused change of a cap), newest start first.

    A binding cap takes its reason from its decision when the log holds the one that made it;
    otherwise the reason says why none is known (`UNRECORDED_REASON`)."""
    rows = []
    for event in binding:
        decision = decisions.get(event.event_id)
        made_it = decision is not None and decision.honour and _same_cap(decision.event, event)
        reason = (
            decision.reason
            if made_it and decision is not None
            else UNRECORDED_REASON[event.created_by is None]
        )
        rows.append(_row(event, "accepted", reason, event.created_by, True, now))
    held = {event.event_id: event for event in binding}
    for event_id, decision in decisions.items():
        in_force = held.get(event_id)
        if in_force is not None and _same_cap(decision.event, in_force) and decision.honour:
            continue
        decided: Decided = "accepted" if decision.honour else "refused"
        if decision.event.cancelled:
            decided = "withdrawn"
        rows.append(_row(decision.event, decided, decision.reason, decision.principal, False, now))
    return tuple(sorted(rows, key=lambda row: (-row.start.timestamp(), row.event_id)))


def _same_cap(a: DemandResponseEvent, b: DemandResponseEvent) -> bool:
    """The same target, window and cap (the record read back from the topic may differ in
    fields the decision does not depend on)."""
    fields = ("site_id", "region", "start", "end", "max_import_kw")
    return all(getattr(a, name) == getattr(b, name) for name in fields)


def _row(
    event: DemandResponseEvent,
    decided: Decided,
    reason: str,
    requested_by: str | None,
    binding: bool,
    now: datetime,
) -> DrEventRow:
    target = f"site {event.site_id}" if event.site_id is not None else f"region {event.region}"
    return DrEventRow(
        event_id=event.event_id,
        target=target,
        start=event.start,
        end=event.end,
        max_import_kw=event.max_import_kw,
        decided=decided,
        reason=reason,
        requested_by=requested_by,
        binding=binding,
        now=now,
    )
