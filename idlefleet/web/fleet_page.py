"""The Fleet page's rows: each site's cars and its plan slot by slot (PV included), each
region's carbon intensity forecast, and how fresh each data source is, read from a
`FleetBackend` and the service's `HealthView` on every request (the console keeps nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from idlefleet.queries.freshness import SourceFreshness, freshness
from idlefleet.queries.health import HealthView
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.views import PlanViews, Scope
from idlefleet.web.charts import Chart, Series


@dataclass(frozen=True)
class SlotRow:
    """One plan slot of a site: its start [UTC] and powers [kW], cars computing [count]."""

    start: datetime
    import_kw: float
    cap_kw: float
    charge_kw: float
    compute_kw: float
    pv_kw: float
    computing: int

    @property
    def over_cap(self) -> bool:
        """The import is above the cap by more than rounding [kW]."""
        return self.import_kw > self.cap_kw + 1e-6


@dataclass(frozen=True)
class SiteRow:
    """A site: region, grid limit [kW], cars parked and taking part now [count], cars
    computing in the current slot [count] (None: no plan covers now), what its cars will
    lack at departure in the plan [kWh] (None: no plan covers it), and its plan."""

    site_id: str
    region: str
    grid_limit_kw: float
    parked: int
    participating: int
    computing_now: int | None
    shortfall_kwh: float | None
    slots: tuple[SlotRow, ...]

    @property
    def chart(self) -> Chart | None:
        """The site's import against its cap, charging and compute per slot [kW]."""
        if not self.slots:
            return None
        return Chart(
            id=f"import-{self.site_id}",
            title=f"{self.site_id}: planned import, cap, charging, compute and PV",
            unit="kW",
            slot_starts=[row.start for row in self.slots],
            series=[
                Series("Import [kW]", [row.import_kw for row in self.slots], "area"),
                Series("Cap [kW]", [row.cap_kw for row in self.slots], "limit"),
                Series("Charging [kW]", [row.charge_kw for row in self.slots]),
                Series("Compute [kW]", [row.compute_kw for row in self.slots]),
                Series("PV [kW]", [row.pv_kw for row in self.slots]),
            ],
        )


@dataclass(frozen=True)
class FleetPage:
    """Every site, and how fresh the data is: the status's time, the newest telemetry, and
    the slot the current plan starts at with its revision (None before the first plan)."""

    as_of: datetime
    latest_telemetry: datetime | None
    plan_start: datetime | None
    plan_revision: int | None
    plan_status: str | None
    vehicles_known: int
    sites: tuple[SiteRow, ...]
    #: Each region's carbon intensity over the plan's horizon (None before the first plan).
    intensity: Chart | None
    sources: tuple[SourceFreshness, ...]


def fleet_page(backend: FleetBackend, health: HealthView) -> FleetPage:
    """The Fleet page from the backend's status, its newest plan's views and the service's
    health (for the freshness of the sources)."""
    status = backend.fleet_status()
    views = backend.board.views
    now = backend.now()
    rows = tuple(
        _site_row(
            site.site.site_id,
            site.site.region,
            site.site.grid_limit_kw,
            site.vehicles_parked,
            site.vehicles_participating,
            views,
            now,
        )
        for site in status.sites
    )
    return FleetPage(
        as_of=status.as_of,
        latest_telemetry=status.latest_telemetry,
        plan_start=None if views is None else views.snapshot.scenario.horizon.start,
        plan_revision=None if views is None else views.revision,
        plan_status=None if views is None else str(views.plan.status),
        vehicles_known=status.vehicles_known,
        sites=rows,
        intensity=None if views is None else _intensity_chart(views),
        sources=freshness(
            health, status.latest_telemetry, views, now, backend.settings.slot_minutes
        ),
    )


def _intensity_chart(views: PlanViews) -> Chart:
    """Each region's carbon intensity per slot as the plan's scenario holds it [g/kWh]."""
    scenario = views.snapshot.scenario
    return Chart(
        id="intensity",
        title="Carbon intensity forecast per region",
        unit="g/kWh",
        slot_starts=[datetime.fromtimestamp(start_s, UTC) for start_s in views.slot_start_s],
        series=[
            Series(f"{region.id} [g/kWh]", list(region.intensity_g_per_kwh))
            for region in scenario.regions
        ],
        decimals=0,
    )


def _site_row(
    site_id: str,
    region: str,
    grid_limit_kw: float,
    parked: int,
    participating: int,
    views: PlanViews | None,
    now: datetime,
) -> SiteRow:
    slots = () if views is None else _slots(views, site_id)
    current = [row for row in slots if row.start <= now] if views is not None else []
    slot_delta = None if views is None else views.snapshot.scenario.horizon.slot_delta
    computing_now = (
        current[-1].computing
        if current and slot_delta is not None and now < current[-1].start + slot_delta
        else None
    )
    shortfall_kwh = None if views is None else views.site_shortfall_kwh.get(site_id)
    return SiteRow(
        site_id, region, grid_limit_kw, parked, participating, computing_now, shortfall_kwh, slots
    )


def _slots(views: PlanViews, site_id: str) -> tuple[SlotRow, ...]:
    scope = Scope("site", site_id)
    if scope not in views.series:
        return ()
    series = views.series[scope]
    caps = views.flexibility[scope].import_cap_kw
    imports = series.grid_import_kw or [0.0] * len(views.slot_start_s)
    pv_kw = views.snapshot.scenario.site_by_id[site_id].pv_kw
    return tuple(
        SlotRow(
            start=datetime.fromtimestamp(start_s, UTC),
            import_kw=imports[s],
            cap_kw=caps[s],
            charge_kw=series.charge_power_kw[s],
            compute_kw=series.compute_power_kw[s],
            pv_kw=pv_kw[s],
            computing=series.running_vehicles[s],
        )
        for s, start_s in enumerate(views.slot_start_s)
    )
