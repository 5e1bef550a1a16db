"""Baseline strategies, under the same rules and measured by the same objective as the MILP.

``immediate``: every vehicle charges at full power from arrival until it holds its owner's
target, shared under site and region caps: vehicles that must charge now to make their
departure target go first, most urgent first (least laxity), the rest share what is left
equally; a car that cannot be served in time leaves short (reported); shards run as early as
possible on vehicles whose energy path still meets the floor and the departure target.

``greedy`` (carbon-aware, like the Carbon Aware SDK): each job's shards go to the lowest-intensity
slots of its window; then each vehicle charges in the lowest-intensity slots (free PV first) of
its parked window, just enough to keep its floor, meet its departure target and replace the
energy its compute drew.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from optimizer.assemble import assemble_plan
from optimizer.plan import Assignment, Plan, SolveStatus
from optimizer.problem import Job, Scenario, Vehicle, VehicleWindow
from optimizer.strategy import Strategy

EPS = 1e-9


class Capacity:
    """Charging load per site and slot [kW] against site caps, region DR caps and PV."""

    def __init__(self, scenario: Scenario) -> None:
        n = scenario.horizon.slots
        self.scenario = scenario
        self.load_kw = {site.id: [0.0] * n for site in scenario.sites}
        self.pv_kw = {site.id: site.pv_kw for site in scenario.sites}
        self.site_cap_kw = {site.id: scenario.site_cap_kw(site) for site in scenario.sites}
        # region cap in force per region and slot (min over events), and the member sites
        self.region_cap_kw: dict[str, list[float | None]] = {}
        self.members: dict[str, tuple[str, ...]] = {}
        for event, slots in scenario.region_caps():
            region = event.region or ""
            caps = self.region_cap_kw.setdefault(region, [None] * n)
            self.members[region] = tuple(s.id for s in scenario.sites_in_region(region))
            for s in slots:
                current = caps[s]
                caps[s] = (
                    event.max_import_kw if current is None else min(current, event.max_import_kw)
                )
        self.region_of_site = {site.id: site.region for site in scenario.sites}

    def import_kw(self, site: str, s: int) -> float:
        return max(0.0, self.load_kw[site][s] - self.pv_kw[site][s])

    def pv_free_kw(self, site: str, s: int) -> float:
        return max(0.0, self.pv_kw[site][s] - self.load_kw[site][s])

    def region_cap(self, site: str, s: int) -> float | None:
        caps = self.region_cap_kw.get(self.region_of_site[site])
        return None if caps is None else caps[s]

    def headroom_kw(self, site: str, s: int) -> float:
        """Most extra charging load the site can take in slot ``s`` [kW]."""
        room = self.site_cap_kw[site][s] + self.pv_kw[site][s] - self.load_kw[site][s]
        cap = self.region_cap(site, s)
        if cap is not None:
            region = self.region_of_site[site]
            used = sum(self.import_kw(m, s) for m in self.members[region])
            room = min(room, cap - used + self.pv_free_kw(site, s))
        return max(0.0, room)

    def add(self, site: str, s: int, power_kw: float) -> None:
        self.load_kw[site][s] += power_kw


class OpenSlots:
    """Vehicles that may still take shards in a slot, in lists keyed by (slot, group) in a fixed
    order. A vehicle is closed in a slot (full, or unable to run there) in every list it is
    in; iteration skips closed entries through next-open pointers with path compression, so a
    baseline never rescans the work it has already given out."""

    def __init__(self) -> None:
        self.lists: dict[tuple[int, str], list[str]] = defaultdict(list)
        self.places: dict[tuple[int, str], list[tuple[tuple[int, str], int]]] = defaultdict(list)
        self.after: dict[tuple[int, str], list[int]] = {}

    def add(self, slot: int, vid: str, groups: Iterable[str]) -> None:
        """Append ``vid`` to the slot's lists of ``groups`` (call in the lists' order)."""
        for group in groups:
            key = (slot, group)
            self.places[(slot, vid)].append((key, len(self.lists[key])))
            self.lists[key].append(vid)

    def _pointers(self, key: tuple[int, str]) -> list[int]:
        """``after[i]``: an entry at or after ``i`` that may be open (``i`` itself if open)."""
        after = self.after.get(key)
        if after is None:
            after = self.after[key] = list(range(len(self.lists[key]) + 1))
        return after

    def _next_open(self, key: tuple[int, str], i: int) -> int:
        after = self._pointers(key)
        root = i
        while after[root] != root:
            root = after[root]
        while after[i] != root:
            after[i], i = root, after[i]
        return root

    def open(self, slot: int, group: str) -> Iterator[str]:
        key = (slot, group)
        entries = self.lists.get(key, [])
        i = self._next_open(key, 0) if entries else 0
        while i < len(entries):
            yield entries[i]
            i = self._next_open(key, i + 1)

    def close(self, slot: int, vid: str) -> None:
        for key, i in self.places.get((slot, vid), []):
            self._pointers(key)[i] = i + 1


@dataclass
class VehiclePlan:
    """A vehicle's schedule under construction."""

    vehicle: Vehicle
    window: VehicleWindow
    required_kwh: float | None
    charge_kw: list[float]
    running: list[int]
    shards_at: dict[int, int] = field(default_factory=dict)

    def levels_kwh(self, dt_h: float) -> list[float]:
        """soc at boundaries ``first..last`` (index 0 is the first boundary) [kWh]."""
        v = self.vehicle
        level = v.soc_kwh
        out = [level]
        for s in self.window.slots:
            level += (
                v.charge_efficiency_frac * self.charge_kw[s] * dt_h
                - v.compute_kw * self.running[s] * dt_h
            )
            out.append(level)
        return out


def _vehicle_plans(scenario: Scenario) -> dict[str, VehiclePlan]:
    n = scenario.horizon.slots
    return {
        v.id: VehiclePlan(
            vehicle=v,
            window=scenario.window(v),
            required_kwh=scenario.required_departure_kwh(v),
            charge_kw=[0.0] * n,
            running=[0] * n,
        )
        for v in scenario.vehicles
    }


def _fair_share(
    wants: dict[str, float], musts: dict[str, float], laxity: dict[str, float], cap: float
) -> dict[str, float]:
    """Musts first, most urgent first (least ``laxity`` [kWh]: energy the vehicle could still
    take at full power beyond what it owes) when they alone exceed ``cap``; then the rest of
    ``cap`` water-filled equally over the remaining wants [kW]."""
    cap = max(0.0, cap)
    must_total = sum(musts.values())
    if must_total >= cap:
        alloc = dict.fromkeys(wants, 0.0)
        left = cap
        for k in sorted(musts, key=lambda k: (laxity[k], k)):
            alloc[k] = min(musts[k], left)
            left -= alloc[k]
        return alloc
    alloc = dict(musts)
    spare = cap - must_total
    open_ = {k: wants[k] - musts[k] for k in wants if wants[k] - musts[k] > EPS}
    while open_ and spare > EPS:
        share = spare / len(open_)
        done = [k for k, rest in open_.items() if rest <= share]
        if not done:
            for k in open_:
                alloc[k] += share
            break
        for k in done:
            alloc[k] += open_.pop(k)
            spare -= wants[k] - musts[k]
    return alloc


def _reach_after_kwh(scenario: Scenario, vp: VehiclePlan, capacity: Capacity) -> list[float]:
    """``out[s]``: energy the vehicle could still add on its own in slots after ``s`` [kWh]."""
    v = vp.vehicle
    dt_h = scenario.horizon.dt_h
    site = v.site
    out = [0.0] * (scenario.horizon.slots + 1)
    total = 0.0
    for s in range(vp.window.last - 1, vp.window.first - 1, -1):
        out[s] = total
        power = min(v.charger_kw, capacity.site_cap_kw[site][s] + capacity.pv_kw[site][s])
        cap = capacity.region_cap(site, s)
        if cap is not None:
            power = min(power, cap + capacity.pv_kw[site][s])
        total += v.charge_efficiency_frac * power * dt_h
    return out


def _finish(
    scenario: Scenario,
    strategy: str,
    plans: dict[str, VehiclePlan],
    assignments: list[Assignment],
    started: float,
) -> Plan:
    """The plan of the schedule built; `plan_scenario` checks it against every rule."""
    return assemble_plan(
        scenario,
        strategy,
        SolveStatus.feasible,
        {vid: vp.charge_kw for vid, vp in plans.items()},
        {vid: vp.running for vid, vp in plans.items()},
        assignments,
        solve_s=time.perf_counter() - started,
    )


# -- immediate -------------------------------------------------------------------------------
def _allocate_slot(
    scenario: Scenario,
    s: int,
    plans: dict[str, VehiclePlan],
    levels: dict[str, float],
    capacity: Capacity,
    reach: dict[str, list[float]],
) -> None:
    """Charge power of every plugged-in vehicle in slot ``s``, shared fairly under caps."""
    dt_h = scenario.horizon.dt_h
    by_site: dict[str, tuple[dict[str, float], dict[str, float]]] = defaultdict(lambda: ({}, {}))
    laxity: dict[str, float] = {}
    for vid, vp in plans.items():
        v = vp.vehicle
        if s not in vp.window or v.charger_kw <= 0:
            continue
        goal = min(v.wished_kwh, v.battery_kwh)
        step = v.charge_efficiency_frac * dt_h
        want = min(v.charger_kw, max(0.0, (goal - levels[vid]) / step))
        must = 0.0
        laxity[vid] = float("inf")
        if vp.required_kwh is not None:
            gap = vp.required_kwh - levels[vid] - reach[vid][s]
            must = min(want, max(0.0, gap / step))
            laxity[vid] = v.charger_kw * step - gap
        if want > EPS:
            wants, musts = by_site[v.site]
            wants[vid], musts[vid] = want, must

    def share(site: str, allowance_kw: float) -> dict[str, float]:
        wants, musts = by_site[site]
        cap = min(capacity.site_cap_kw[site][s], allowance_kw) + capacity.pv_kw[site][s]
        return _fair_share(wants, musts, laxity, cap)

    alloc: dict[str, dict[str, float]] = {}
    regions: dict[str | None, list[str]] = defaultdict(list)
    for site in by_site:
        has_cap = capacity.region_cap(site, s) is not None
        regions[capacity.region_of_site[site] if has_cap else None].append(site)
    for region, sites in regions.items():
        if region is None:
            for site in sites:
                alloc[site] = share(site, float("inf"))
            continue
        cap = capacity.region_cap(sites[0], s)
        assert cap is not None

        def region_import(allowance: float, sites: list[str] = sites) -> float:
            return sum(
                max(0.0, sum(share(site, allowance).values()) - capacity.pv_kw[site][s])
                for site in sites
            )

        lo, hi = 0.0, cap
        if region_import(hi) <= cap + EPS:
            lo = hi
        else:
            for _ in range(50):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if region_import(mid) <= cap else (lo, mid)
        for site in sites:
            alloc[site] = share(site, lo)
    for site, powers in alloc.items():
        for vid, power_kw in powers.items():
            vp = plans[vid]
            vp.charge_kw[s] = power_kw
            levels[vid] += vp.vehicle.charge_efficiency_frac * power_kw * dt_h
            capacity.add(site, s, power_kw)


def immediate(scenario: Scenario) -> Plan:
    """Charge on arrival at full power; run shards as early as energy allows."""
    started = time.perf_counter()
    no_compute: set[str] = set()
    for _attempt in range(len(scenario.vehicles) + 1):
        plans, assignments = _simulate_immediate(scenario, no_compute)
        missed = [
            vid
            for vid, vp in plans.items()
            if vp.required_kwh is not None
            and vp.levels_kwh(scenario.horizon.dt_h)[-1] < vp.required_kwh - 1e-6
        ]
        retry = [vid for vid in missed if vid not in no_compute and any(plans[vid].running)]
        if not retry:
            break
        no_compute.update(retry)
    return _finish(scenario, "immediate", plans, assignments, started)


def _simulate_immediate(
    scenario: Scenario, no_compute: set[str]
) -> tuple[dict[str, VehiclePlan], list[Assignment]]:
    dt_h = scenario.horizon.dt_h
    plans = _vehicle_plans(scenario)
    capacity = Capacity(scenario)
    levels = {vid: vp.vehicle.soc_kwh for vid, vp in plans.items()}
    reach = {vid: _reach_after_kwh(scenario, vp, capacity) for vid, vp in plans.items()}
    jobs = sorted(scenario.jobs, key=lambda j: (scenario.job_slots(j).stop, j.id))
    remaining = {j.id: j.executions_required for j in jobs}
    per_jv: dict[tuple[str, str], int] = defaultdict(int)
    assignments: list[Assignment] = []
    order = {v.id: k for k, v in enumerate(scenario.vehicles)}
    open_slots = OpenSlots()
    for vid, vp in plans.items():
        if vid not in no_compute and scenario.can_compute(vp.vehicle):
            for s in vp.window.slots:
                open_slots.add(s, vid, ("", vp.vehicle.site))
    active = _jobs_by_slot(scenario, jobs)
    for s in range(scenario.horizon.slots):
        _allocate_slot(scenario, s, plans, levels, capacity, reach)
        for job in active[s]:
            for vid in _candidates(open_slots, s, job, order.__getitem__):
                if remaining[job.id] <= 0:
                    break
                vp = plans[vid]
                v = vp.vehicle
                free = v.shards_per_slot - vp.shards_at.get(s, 0)
                room = min(free, job.shards - per_jv[(job.id, vid)], remaining[job.id])
                if room <= 0:
                    continue
                if not vp.running[s]:
                    after = levels[vid] - v.compute_kw * dt_h
                    owed = vp.required_kwh
                    if after < v.floor_kwh - EPS or (
                        owed is not None and after + reach[vid][s] < owed - EPS
                    ):
                        open_slots.close(s, vid)
                        continue
                    vp.running[s] = 1
                    levels[vid] = after
                vp.shards_at[s] = vp.shards_at.get(s, 0) + room
                if room == free:
                    open_slots.close(s, vid)
                per_jv[(job.id, vid)] += room
                remaining[job.id] -= room
                assignments.append(Assignment(job=job.id, vehicle=vid, slot=s, shards=room))
    return plans, assignments


def _jobs_by_slot(scenario: Scenario, jobs: list[Job]) -> list[list[Job]]:
    """The jobs (in the given order) whose window holds each slot."""
    active: list[list[Job]] = [[] for _ in range(scenario.horizon.slots)]
    for job in jobs:
        if job.executions_required > 0:
            for s in scenario.job_slots(job):
                active[s].append(job)
    return active


def _candidates(
    open_slots: OpenSlots, s: int, job: Job, rank: Callable[[str], int]
) -> Iterator[str]:
    """Open vehicles in slot ``s`` at the job's allowed sites, in list order (by ``rank``)."""
    if job.sites is None:
        return open_slots.open(s, "")
    sites = dict.fromkeys(job.sites)
    return heapq.merge(*(open_slots.open(s, site) for site in sites), key=rank)


# -- greedy ----------------------------------------------------------------------------------
def _max_path_ok(scenario: Scenario, vp: VehiclePlan, capacity: Capacity) -> bool:
    """Whether charging as early and as hard as the vehicle's own limits allow keeps its floor
    and reaches its departure target, given its running flags (the max-soc path dominates)."""
    v = vp.vehicle
    dt_h = scenario.horizon.dt_h
    level = v.soc_kwh
    for s in vp.window.slots:
        power = min(v.charger_kw, capacity.site_cap_kw[v.site][s] + capacity.pv_kw[v.site][s])
        draw = v.compute_kw * vp.running[s] * dt_h
        level = min(v.battery_kwh, level + v.charge_efficiency_frac * power * dt_h - draw)
        if level < v.floor_kwh - EPS:
            return False
    return vp.required_kwh is None or level >= vp.required_kwh - EPS


def _greedy_charge(
    scenario: Scenario, vp: VehiclePlan, capacity: Capacity, *, soft_goal: bool
) -> bool:
    """Fill charge into the lowest-intensity slots (free PV first) until the floor holds at
    every boundary and the departure target is met; with ``soft_goal`` also (as far as
    capacity allows) until a vehicle staying past the horizon is back at ``soc_kwh``."""
    v = vp.vehicle
    if len(vp.window) == 0:
        return True
    dt_h = scenario.horizon.dt_h
    step = v.charge_efficiency_frac * dt_h
    intensity = scenario.region_of(v).intensity_g_per_kwh
    first = vp.window.first
    hard_goal = vp.required_kwh
    soft_kwh = v.soc_kwh if soft_goal and hard_goal is None else float("-inf")
    for _ in range(50 * (len(vp.window) + 1)):
        levels = vp.levels_kwh(dt_h)
        need, boundary, soft = 0.0, 0, False
        for k in range(1, len(levels)):
            if levels[k] < v.floor_kwh - EPS:
                need, boundary = v.floor_kwh - levels[k], k
                break
        else:
            if hard_goal is not None and levels[-1] < hard_goal - EPS:
                need, boundary = hard_goal - levels[-1], len(levels) - 1
            elif levels[-1] < soft_kwh - 1e-7:
                need, boundary, soft = soft_kwh - levels[-1], len(levels) - 1, True
        if need <= 0:
            return True
        best: tuple[float, int] | None = None
        best_room = 0.0
        peak = [0.0] * (len(levels) + 1)
        for k in range(len(levels) - 1, -1, -1):
            peak[k] = max(levels[k], peak[k + 1] if k + 1 < len(levels) else levels[k])
        for k in range(boundary):
            s = first + k
            room_kw = min(v.charger_kw - vp.charge_kw[s], capacity.headroom_kw(v.site, s))
            pv_free = capacity.pv_free_kw(v.site, s)
            key = (0.0, s) if pv_free > EPS else (intensity[s], s)
            if pv_free > EPS:
                room_kw = min(room_kw, pv_free)
            room_kwh = min(room_kw * step, v.battery_kwh - peak[k + 1])
            if room_kwh > EPS and (best is None or key < best):
                best, best_room = key, room_kwh
        if best is None:
            return soft
        s = best[1]
        power_kw = min(best_room, need) / step
        vp.charge_kw[s] += power_kw
        capacity.add(v.site, s, power_kw)
    return False


def _charge_in_order(
    scenario: Scenario, order: list[VehiclePlan], assignments: list[Assignment]
) -> list[VehiclePlan]:
    """Charge every vehicle from scratch in ``order``: floors and departure targets first,
    then the soft goals. A vehicle that cannot meet its needs loses its compute and tries
    again; those that still fail are returned."""
    capacity = Capacity(scenario)
    failed = []
    for vp in order:
        vp.charge_kw = [0.0] * len(vp.charge_kw)
    for vp in order:
        if _greedy_charge(scenario, vp, capacity, soft_goal=False):
            continue
        for s, power_kw in enumerate(vp.charge_kw):
            capacity.add(vp.vehicle.site, s, -power_kw)
        vp.charge_kw = [0.0] * len(vp.charge_kw)
        vp.running = [0] * len(vp.running)
        vp.shards_at.clear()
        if not _greedy_charge(scenario, vp, capacity, soft_goal=False):
            failed.append(vp)
    for vp in order:
        _greedy_charge(scenario, vp, capacity, soft_goal=True)
    return failed


def _cleanest_first(scenario: Scenario, job: Job) -> list[tuple[int, list[str]]]:
    """The job's slots with the lists to search in each (regions, or allowed sites), by
    intensity then slot; lists of equal intensity in a slot are searched together."""
    if job.executions_required <= 0:
        return []
    if job.sites is None:
        places = [(r.id, r.intensity_g_per_kwh) for r in scenario.regions]
    else:
        places = [
            (site, scenario.region_by_id[scenario.site_by_id[site].region].intensity_g_per_kwh)
            for site in dict.fromkeys(job.sites)
        ]
    keyed: dict[tuple[float, int], list[str]] = defaultdict(list)
    for s in scenario.job_slots(job):
        for group, intensity in places:
            keyed[(intensity[s], s)].append(group)
    return [(s, keyed[(i, s)]) for i, s in sorted(keyed)]


def greedy(scenario: Scenario) -> Plan:
    """Carbon-aware greedy: shards to the cleanest slots, charging in the cleanest slots."""
    started = time.perf_counter()
    plans = _vehicle_plans(scenario)
    capacity = Capacity(scenario)
    assignments: list[Assignment] = []
    per_jv: dict[tuple[str, str], int] = defaultdict(int)
    jobs = sorted(scenario.jobs, key=lambda j: (scenario.job_slots(j).stop, j.id))
    open_slots = OpenSlots()
    for vid in sorted(plans):
        vp = plans[vid]
        if scenario.can_compute(vp.vehicle):
            region = scenario.site_by_id[vp.vehicle.site].region
            for s in vp.window.slots:
                open_slots.add(s, vid, (region, vp.vehicle.site))
    for job in jobs:
        remaining = job.executions_required
        for s, groups in _cleanest_first(scenario, job):
            for vid in heapq.merge(*(open_slots.open(s, g) for g in groups)):
                if remaining <= 0:
                    break
                vp = plans[vid]
                free = vp.vehicle.shards_per_slot - vp.shards_at.get(s, 0)
                room = min(free, job.shards - per_jv[(job.id, vid)], remaining)
                if room <= 0:
                    continue
                if not vp.running[s]:
                    vp.running[s] = 1
                    if not _max_path_ok(scenario, vp, capacity):
                        vp.running[s] = 0
                        open_slots.close(s, vid)
                        continue
                vp.shards_at[s] = vp.shards_at.get(s, 0) + room
                if room == free:
                    open_slots.close(s, vid)
                per_jv[(job.id, vid)] += room
                remaining -= room
                assignments.append(Assignment(job=job.id, vehicle=vid, slot=s, shards=room))
            if remaining <= 0:
                break
    order = sorted(plans.values(), key=lambda vp: (vp.vehicle.departure, vp.vehicle.id))
    for _attempt in range(len(order) + 1):
        failed = _charge_in_order(scenario, order, assignments)
        assignments = [a for a in assignments if plans[a.vehicle].running[a.slot]]
        if not failed:
            break
        # vehicles that missed their needs go first next time
        order = failed + [vp for vp in order if vp not in failed]
    return _finish(scenario, "greedy", plans, assignments, started)


def run_baseline(scenario: Scenario, strategy: Strategy) -> Plan:
    """Plan with a baseline: ``immediate`` or ``greedy``."""
    if strategy is Strategy.IMMEDIATE:
        return immediate(scenario)
    if strategy is Strategy.GREEDY:
        return greedy(scenario)
    raise ValueError(f"{strategy.value!r} is not a baseline")
