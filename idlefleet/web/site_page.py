"""The Site page for depot operators: one site's plan, read from a `FleetBackend` on every
request. Its import against the grid limit and DR caps, a heat map of each car's charging
and compute slot by slot, each car's planned energy against its floor and target, and what
each car's data lacked or estimated. Cars come `CARS_PER_PAGE` at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from idlefleet.queries.errors import UnknownIdError
from idlefleet.queries.ports import FleetBackend, SiteStatusView
from idlefleet.queries.site_plan import (
    CarPath,
    car_path,
    data_note_of,
    region_dr_caps_kw,
    site_dr_caps_kw,
    site_vehicle_rows,
)
from idlefleet.queries.views import PlanViews, Scope
from idlefleet.web.charts import Chart, Series
from streams.sources import DataNote

#: Cars shown on one page of the heat map and the energy table [count].
CARS_PER_PAGE = 50
#: Heat levels above "not charging": level k holds powers up to k fifths of the charger's.
HEAT_LEVELS = 5
#: Charging below this is taken as none (solver rounding) [kW].
POWER_TOLERANCE_KW = 1e-3
#: An energy reading taken longer than this before the plan started is marked stale [s].
STALE_AFTER_S = 3600.0


def heat_level(power_kw: float, charger_kw: float) -> int:
    """0 for no charging, else 1..`HEAT_LEVELS`: the fifth of the charger's power [kW] the
    planned power [kW] reaches (all of it, or more, is the top level)."""
    if power_kw <= POWER_TOLERANCE_KW:
        return 0
    if charger_kw <= 0:
        return HEAT_LEVELS
    return min(HEAT_LEVELS, max(1, math.ceil(HEAT_LEVELS * power_kw / charger_kw - 1e-9)))


@dataclass(frozen=True)
class HeatCell:
    """One car in one slot: parked or not, planned charging [kW] and shards run [count]."""

    parked: bool
    charge_kw: float
    level: int
    shards: int

    @property
    def css_class(self) -> str:
        """`away` when not parked, else `h0`..`h5`, with `run` when it computes."""
        if not self.parked:
            return "away"
        return f"h{self.level} run" if self.shards else f"h{self.level}"

    @property
    def text(self) -> str:
        """The charging power as the cell prints it [kW]; empty when not parked."""
        if not self.parked:
            return ""
        return "0" if self.level == 0 else f"{self.charge_kw:.1f}"


@dataclass(frozen=True)
class DataMarks:
    """How a car's data was known when the plan was made: its energy `source` (reading,
    estimated or unknown), grid energy metered since the reading [kWh], the reading's age at
    the plan's start [min] (None: never read), and what the data lacked."""

    source: str
    metered_since_kwh: float
    reading_age_min: float | None
    lacks: tuple[str, ...]
    controllable: bool

    @classmethod
    def of(cls, note: DataNote, plan_start: datetime) -> DataMarks:
        age_s = note.age_s(note.energy_read_at, plan_start)
        return cls(
            source=note.energy_source,
            metered_since_kwh=note.metered_since_kwh,
            reading_age_min=None if age_s is None else age_s / 60.0,
            lacks=note.lacks,
            controllable=note.controllable,
        )

    @property
    def estimated(self) -> bool:
        return self.source != "reading"

    @property
    def stale(self) -> bool:
        """No reading, or one older than `STALE_AFTER_S` at the plan's start."""
        return self.reading_age_min is None or self.reading_age_min * 60.0 > STALE_AFTER_S


@dataclass(frozen=True)
class CarRow:
    """A car of the page: its energy path in brief, its slots, and its data's marks (None:
    the plan kept no note for it)."""

    path: CarPath
    cells: tuple[HeatCell, ...]
    marks: DataMarks | None

    @property
    def vehicle_id(self) -> str:
        return self.path.vehicle_id


@dataclass(frozen=True)
class SitePage:
    """One site: its configuration and parked cars now, and (None or empty before a plan
    covers it) the plan's import chart, the page `page` of `pages` of its `cars_total`
    planned cars, and the energy chart of the car `chosen`."""

    site_id: str
    region: str
    grid_limit_kw: float
    plan_grid_limit_kw: float | None
    parked: int
    participating: int
    dr_event_ids: tuple[str, ...]
    plan_start: datetime | None
    plan_revision: int | None
    import_chart: Chart | None
    slot_starts: tuple[datetime, ...]
    cars_total: int
    page: int
    pages: int
    first_car: int  # the 1-based number of the page's first car
    cars: tuple[CarRow, ...]
    chosen: CarRow | None
    car_chart: Chart | None

    @property
    def heat_bands(self) -> tuple[tuple[int, int], ...]:
        """Each charging heat level and the share of the charger it reaches up to [%]."""
        return tuple((k, round(100 * k / HEAT_LEVELS)) for k in range(1, HEAT_LEVELS + 1))


def site_page(
    backend: FleetBackend,
    site_id: str,
    page: int = 1,
    car: str | None = None,
    per_page: int = CARS_PER_PAGE,
) -> SitePage:
    """The Site page for `site_id`: page `page` of its cars, `per_page` a page (clamped to
    the pages there are), and the energy chart of `car` (the page's first car when it is
    not one of the site's). UnknownIdError when no site has this id."""
    status = _site_status(backend, site_id)
    config = status.site
    views = backend.board.views
    rows = [] if views is None else site_vehicle_rows(views, site_id)
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(page, 1), pages)
    page_rows = rows[(page - 1) * per_page : page * per_page]
    cars = () if views is None else _car_rows(views, page_rows)
    chosen = None if views is None else _chosen(views, site_id, car, cars)
    plan_site = None if views is None else views.snapshot.scenario.site_by_id.get(site_id)
    return SitePage(
        site_id=site_id,
        region=config.region,
        grid_limit_kw=config.grid_limit_kw,
        plan_grid_limit_kw=None if plan_site is None else plan_site.grid_limit_kw,
        parked=status.vehicles_parked,
        participating=status.vehicles_participating,
        dr_event_ids=status.dr_event_ids,
        plan_start=None if views is None else views.snapshot.scenario.horizon.start,
        plan_revision=None if views is None else views.revision,
        import_chart=None if views is None else _import_chart(views, site_id, config.region),
        slot_starts=() if views is None else _slot_starts(views),
        cars_total=len(rows),
        page=page,
        pages=pages,
        first_car=(page - 1) * per_page + 1,
        cars=cars,
        chosen=chosen,
        car_chart=None if views is None or chosen is None else _car_chart(views, chosen),
    )


def _site_status(backend: FleetBackend, site_id: str) -> SiteStatusView:
    for status in backend.fleet_status().sites:
        if status.site.site_id == site_id:
            return status
    raise UnknownIdError("site", site_id)


def _slot_starts(views: PlanViews) -> tuple[datetime, ...]:
    return tuple(datetime.fromtimestamp(start_s, UTC) for start_s in views.slot_start_s)


def _import_chart(views: PlanViews, site_id: str, region: str) -> Chart | None:
    """Import against the grid limit and the DR caps in force, with charging, compute and
    PV [kW]; None when the plan does not cover the site."""
    scope = Scope("site", site_id)
    if scope not in views.series:
        return None
    scenario = views.snapshot.scenario
    series = views.series[scope]
    slots = len(views.slot_start_s)
    grid_limit_kw = scenario.site_by_id[site_id].grid_limit_kw
    lines = [
        Series("Import [kW]", series.grid_import_kw or [0.0] * slots, "area"),
        Series("Grid limit [kW]", [grid_limit_kw] * slots, "limit"),
        Series("Site DR cap [kW]", site_dr_caps_kw(scenario, site_id), "limit"),
    ]
    region_caps = region_dr_caps_kw(views, region)
    if any(cap is not None for cap in region_caps):
        lines.append(Series(f"Region {region} DR cap, all its sites [kW]", region_caps, "limit"))
    lines += [
        Series("Charging [kW]", series.charge_power_kw),
        Series("Compute [kW]", series.compute_power_kw),
    ]
    pv_kw = scenario.site_by_id[site_id].pv_kw
    if any(pv_kw):
        lines.append(Series("PV [kW]", list(pv_kw)))
    return Chart(
        id="site-import",
        title=f"{site_id}: planned import against the grid limit and DR caps",
        unit="kW",
        slot_starts=_slot_starts(views),
        series=lines,
    )


def _car_rows(views: PlanViews, rows: list[int]) -> tuple[CarRow, ...]:
    a = views.arrays
    plan_start = views.snapshot.scenario.horizon.start
    charge = a.charge_kw[rows].tolist()
    shards = a.shards[rows].tolist()
    usable = a.usable[rows].tolist()
    out = []
    for i, row in enumerate(rows):
        vehicle_id = a.vehicle_ids[row]
        charger_kw = float(a.charger_kw[row])
        cells = tuple(
            HeatCell(parked, power_kw, heat_level(power_kw, charger_kw), round(count))
            for parked, power_kw, count in zip(usable[i], charge[i], shards[i], strict=True)
        )
        note = data_note_of(views, vehicle_id)
        marks = None if note is None else DataMarks.of(note, plan_start)
        out.append(CarRow(car_path(views, vehicle_id), cells, marks))
    return tuple(out)


def _chosen(
    views: PlanViews, site_id: str, car: str | None, cars: tuple[CarRow, ...]
) -> CarRow | None:
    """The car asked for when it is planned at the site, else the page's first."""
    for shown in cars:
        if shown.vehicle_id == car:
            return shown
    a = views.arrays
    row = None if car is None else a.vehicle_row.get(car)
    if row is not None and a.site_ids[a.site_of_vehicle[row]] == site_id:
        return _car_rows(views, [row])[0]
    return cars[0] if cars else None


def _car_chart(views: PlanViews, car: CarRow) -> Chart:
    """The car's planned energy at each slot's start against its floor and target [kWh]
    (None where it is not parked)."""
    series = views.slot_series(Scope("vehicle", car.vehicle_id))
    energy = series.energy_start_kwh
    path = car.path

    def while_parked(value: float | None) -> list[float | None]:
        return [None if e is None else value for e in energy]

    lines = [
        Series("Energy [kWh]", energy, "line"),
        Series("Floor [kWh]", while_parked(path.floor_kwh), "limit"),
    ]
    if path.target_kwh is not None:
        lines.append(Series("Target [kWh]", while_parked(path.target_kwh)))
    return Chart(
        id="car-energy",
        title=f"{car.vehicle_id}: planned energy against its floor and target",
        unit="kWh",
        slot_starts=_slot_starts(views),
        series=lines,
    )
