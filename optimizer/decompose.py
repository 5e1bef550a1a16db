"""Fleet-scale planning: a fleet-level job allocation, per-site MILPs and an honest bound.

The exact model (``optimizer.formulation``) has a variable per job, vehicle and slot and does
not reach 10^4 vehicles. Here jobs are aggregated into classes (``optimizer.jobclasses``) and
the problem is split where it is weakly coupled: sites share nothing but jobs, and region DR
caps (sites under one are solved together, as a group).

1. Each site group's charging-only LP gives state-of-charge duals ``nu``: the marginal value
   of energy in each battery at each boundary.
2. The fleet master (``optimizer.master``) prices running a car in a slot at its wear plus
   ``nu`` times the energy it draws and places every class's work on running capacity. It is
   the aggregated model (``optimizer.aggregate``, a relaxation of the exact one) with its
   state-of-charge rows dualised at ``nu``, so its optimum plus the closed-form energy part
   (``optimizer.energybound``) is ``L(nu)``, a valid lower bound of the full problem, for any
   ``nu``.
3. Every site group solves its own exact model (``optimizer.sitesolve``: LP, and MILP when
   running flags come out fractional) with its share of the work as per-slot demands, each
   priced at the value of the class's last job served. Its LP duals are the next ``nu``.
4. The work is turned into concrete shards on the running cars (``optimizer.placement``).

Steps 2-4 repeat while the gap to the best bound is above the target and the time limit
allows another round; the first round always completes. The plan's ``best_bound`` is the
best ``L(nu)`` and ``gap_frac`` is measured against it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context

import numpy as np

from optimizer.aggregate import Demand, RegionCap, running_pairs
from optimizer.assemble import assemble_plan
from optimizer.errors import SolveError
from optimizer.fleetdata import FleetArrays
from optimizer.jobclasses import JobClass, job_classes
from optimizer.master import Allocation, solve_master
from optimizer.placement import Placed, assign_shards, marginal_values, place_work
from optimizer.plan import Assignment, Plan, SolveStatus
from optimizer.problem import Scenario
from optimizer.sitesolve import SiteResult, SiteTask, solve_site

log = logging.getLogger(__name__)

#: the most rounds of allocation, site solves and bound
MAX_ROUNDS = 4
#: site groups run in worker processes when the fleet has more usable pairs than this
PARALLEL_ABOVE_PAIRS = 50_000
#: the share of the time left that one group's MILP may take, and its floor [s]
SITE_TIME_SHARE = 0.25
SITE_MIN_TIME_S = 5.0
#: site MILPs stop at this relative or absolute gap [currency]
SITE_MIP_GAP_FRAC = 1e-4
SITE_MIP_GAP_ABS = 1e-3

SiteRunner = Callable[[list[SiteTask]], list[SiteResult]]


@dataclass(frozen=True)
class Candidate:
    """A complete schedule: charge [kW] and running per pair, shards, estimated cost."""

    charge_kw: np.ndarray
    running: np.ndarray
    assignments: list[Assignment]
    cost: float


@dataclass(frozen=True)
class DecompositionStats:
    """Where the time went [s]; logged with the final record (attribute ``stats``)."""

    groups: int
    rounds: int
    build_s: float  # arrays, job classes, site groups
    solve_s: float  # charging LPs, masters, site models, placement
    assemble_s: float  # the plan, its state of charge, KPIs and objective
    dropped_flags: int  # fractional running flags set to 0 when a site MILP found nothing


def plan_decomposed(
    scenario: Scenario, time_limit_s: float, mip_gap_frac: float, mip_gap_abs: float
) -> Plan:
    """Plan ``scenario`` by decomposition. Stops when the gap to the best bound is within
    ``mip_gap_frac`` or ``mip_gap_abs`` [currency], after ``MAX_ROUNDS`` rounds, or when
    ``time_limit_s`` [s] leaves no time for another round. ``scenario``'s targets must be
    reachable (lowered by the least shortfall, `optimizer.shortfall.relaxed_targets`)."""
    started = time.perf_counter()
    deadline = started + time_limit_s
    fleet = FleetArrays.of(scenario)
    classes = job_classes(scenario)
    demands = [
        Demand(
            c.first,
            c.last,
            c.sites,
            np.array([j.executions_required for j in c.jobs], dtype=float),
            np.array([j.value_per_shard for j in c.jobs]),
        )
        for c in classes
    ]
    caps = region_caps(scenario)
    split = GroupSplit(fleet, site_groups(len(fleet.site_ids), caps), caps)
    built = time.perf_counter()
    parallel = len(fleet.pair_vehicle) > PARALLEL_ABOVE_PAIRS
    with site_runner(len(os.sched_getaffinity(0)) if parallel else 1) as run_sites:
        charging = run_sites(split.tasks({}, np.zeros(0), deadline))
        broken = [g for g, r in enumerate(charging) if r.status is SolveStatus.infeasible]
        if broken:
            # Targets are lowered by the least shortfall before planning, so this is a bug.
            raise SolveError(f"site groups {broken} have no charging plan")
        search = Search(fleet, classes, demands, split, run_sites, deadline)
        best, bound = search.run(split.duals(charging), mip_gap_frac, mip_gap_abs)
    solved = time.perf_counter()
    plan = _plan(scenario, fleet, best, bound, started)
    if plan.objective is not None and _within(plan.objective, bound, mip_gap_frac, mip_gap_abs):
        plan = replace(plan, status=SolveStatus.optimal)
    stats = DecompositionStats(
        groups=len(split.groups),
        rounds=search.rounds,
        build_s=built - started,
        solve_s=solved - built,
        assemble_s=time.perf_counter() - solved,
        dropped_flags=search.dropped,
    )
    log.info("decomposition: %s", stats, extra={"stats": stats})
    return plan


def _within(objective: float, bound: float, gap_frac: float, gap_abs: float) -> bool:
    return objective - bound <= max(gap_frac * abs(objective), gap_abs)


class Search:
    """The rounds of master, site groups and placement; keeps the best schedule and bound."""

    def __init__(
        self,
        fleet: FleetArrays,
        classes: Sequence[JobClass],
        demands: Sequence[Demand],
        split: GroupSplit,
        run_sites: SiteRunner,
        deadline: float,
    ) -> None:
        self.fleet = fleet
        self.classes = classes
        self.demands = demands
        self.split = split
        self.run_sites = run_sites
        self.deadline = deadline
        self.can_run = running_pairs(fleet, demands)
        self.rounds = 0
        self.dropped = 0

    def run(self, nu: np.ndarray, gap_frac: float, gap_abs: float) -> tuple[Candidate, float]:
        """The best schedule and the best bound [currency], starting from duals ``nu``."""
        best: Candidate | None = None
        bound = -math.inf
        while self.rounds < MAX_ROUNDS:
            round_started = time.perf_counter()
            left = math.inf if best is None else self.deadline - round_started
            allocation = solve_master(self.fleet, self.demands, self.can_run, nu, left)
            if allocation is None:
                break
            bound = max(bound, allocation.bound)
            if best is not None and _within(best.cost, bound, gap_frac, gap_abs):
                break
            candidate, nu = self._round(allocation)
            self.rounds += 1
            if best is None or candidate.cost < best.cost:
                best = candidate
            log.info(
                "decomposition round %d: bound %.4f, schedule %.4f, %.1f s",
                self.rounds,
                bound,
                candidate.cost,
                time.perf_counter() - round_started,
            )
            if _within(best.cost, bound, gap_frac, gap_abs):
                break
            if 2 * (time.perf_counter() - round_started) > self.deadline - time.perf_counter():
                break
        if best is None:
            raise SolveError("the fleet master LP ended without an optimal allocation")
        return best, bound

    def _round(self, allocation: Allocation) -> tuple[Candidate, np.ndarray]:
        """Place the allocation's work, solve the site groups, give out shards."""
        executed = np.array([a.sum() for a in allocation.amounts])
        values = marginal_values(self.classes, np.rint(executed))
        placed = place_work(
            allocation.work,
            allocation.amounts,
            self.classes,
            allocation.family,
            allocation.capacity,
        )
        results = self.run_sites(self.split.tasks(placed, values, self.deadline))
        if any(not r.status.has_schedule for r in results):
            raise SolveError("a site group ended without a schedule")
        self.dropped += sum(r.dropped for r in results)
        return self._candidate(results, placed, values), self.split.duals(results)

    def _candidate(
        self, results: Sequence[SiteResult], placed: Placed, values: np.ndarray
    ) -> Candidate:
        fleet = self.fleet
        charge = np.zeros(len(fleet.pair_vehicle))
        running = np.zeros(len(fleet.pair_vehicle), dtype=np.int64)
        for pairs, result in zip(self.split.pairs, results, strict=True):
            charge[pairs] = result.charge_kw
            running[pairs] = result.running
        charge = np.clip(charge, 0.0, fleet.charger_kw[fleet.pair_vehicle])
        charge[charge < 1e-9] = 0.0
        runners: dict[tuple[int, int], list[tuple[str, int]]] = defaultdict(list)
        for p in np.flatnonzero(running):
            v = fleet.pair_vehicle[p]
            runners[(int(fleet.site[v]), int(fleet.pair_slot[p]))].append(
                (fleet.vehicle_ids[v], int(fleet.shards_per_slot[v]))
            )
        assignments = assign_shards(placed, self.classes, values, runners)
        done: dict[str, int] = defaultdict(int)
        for a in assignments:
            done[a.job] += a.shards
        undone = sum(
            j.value_per_shard * (j.executions_required - done[j.id])
            for c in self.classes
            for j in c.jobs
        )
        return Candidate(charge, running, assignments, sum(r.energy_cost for r in results) + undone)


def region_caps(scenario: Scenario) -> list[RegionCap]:
    """Every region DR cap per slot, with the site indices of its region (if it has any)."""
    index = {s.id: k for k, s in enumerate(scenario.sites)}
    out: list[RegionCap] = []
    for event, slots in scenario.region_caps():
        members = tuple(index[s.id] for s in scenario.sites_in_region(event.region or ""))
        if members:
            out.extend(RegionCap(members, s, event.max_import_kw) for s in slots)
    return out


def site_groups(sites: int, caps: Sequence[RegionCap]) -> list[np.ndarray]:
    """Sites that region caps couple, as groups of site indices (singletons otherwise)."""
    parent = list(range(sites))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for cap in caps:
        for i in cap.sites[1:]:
            parent[root(i)] = root(cap.sites[0])
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(sites):
        members[root(i)].append(i)
    return [np.array(m, dtype=np.int64) for m in members.values()]


class GroupSplit:
    """The fleet split into site groups: their tasks, and their results put back together."""

    def __init__(
        self, fleet: FleetArrays, groups: list[np.ndarray], caps: Sequence[RegionCap]
    ) -> None:
        self.fleet = fleet
        self.groups = groups
        self.group_of_site = np.zeros(len(fleet.site_ids), dtype=np.int64)
        self.position = np.zeros(len(fleet.site_ids), dtype=np.int64)
        for g, members in enumerate(groups):
            self.group_of_site[members] = g
            self.position[members] = np.arange(len(members))
        self.subsets = [fleet.subset(members) for members in groups]
        self.pairs = [
            fleet.pairs_of(np.flatnonzero(np.isin(fleet.site, members))) for members in groups
        ]
        self.caps: list[list[RegionCap]] = [[] for _ in groups]
        for cap in caps:
            sites = tuple(int(self.position[i]) for i in cap.sites)
            self.caps[int(self.group_of_site[cap.sites[0]])].append(
                RegionCap(sites, cap.slot, cap.max_import_kw)
            )

    def tasks(self, placed: Placed, values: np.ndarray, deadline: float) -> list[SiteTask]:
        """One task per group, its share of ``placed`` work as demands of one slot each."""
        work: list[list[Demand]] = [[] for _ in self.groups]
        for (i, s), entries in placed.items():
            work[int(self.group_of_site[i])].append(
                Demand(
                    s,
                    s + 1,
                    frozenset([int(self.position[i])]),
                    np.array([amount for _, amount in entries], dtype=float),
                    np.array([values[k] for k, _ in entries]),
                )
            )
        limit = max(SITE_TIME_SHARE * (deadline - time.perf_counter()), SITE_MIN_TIME_S)
        return [
            SiteTask(
                subset,
                tuple(work[g]),
                tuple(self.caps[g]),
                limit,
                SITE_MIP_GAP_FRAC,
                SITE_MIP_GAP_ABS,
            )
            for g, subset in enumerate(self.subsets)
        ]

    def duals(self, results: Sequence[SiteResult]) -> np.ndarray:
        """The groups' state-of-charge duals as one fleet-wide vector (per pair)."""
        nu = np.zeros(len(self.fleet.pair_vehicle))
        for pairs, result in zip(self.pairs, results, strict=True):
            nu[pairs] = result.soc_duals
        return nu


@contextmanager
def site_runner(workers: int) -> Iterator[SiteRunner]:
    """Solve site tasks in ``workers`` processes, or in this one. Workers are spawned, not
    forked: a fork copies HiGHS's thread pool state without its threads."""
    if workers <= 1:
        yield lambda tasks: [solve_site(t) for t in tasks]
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:

        def run(tasks: list[SiteTask]) -> list[SiteResult]:
            chunk = max(1, len(tasks) // (8 * workers))
            return list(pool.map(solve_site, tasks, chunksize=chunk))

        yield run


def _plan(
    scenario: Scenario, fleet: FleetArrays, best: Candidate, bound: float, started: float
) -> Plan:
    n = fleet.slots
    charge = {vid: [0.0] * n for vid in fleet.vehicle_ids}
    running = {vid: [0] * n for vid in fleet.vehicle_ids}
    for p in np.flatnonzero((best.charge_kw > 0) | (best.running > 0)):
        vid = fleet.vehicle_ids[fleet.pair_vehicle[p]]
        charge[vid][fleet.pair_slot[p]] = float(best.charge_kw[p])
        running[vid][fleet.pair_slot[p]] = int(best.running[p])
    return assemble_plan(
        scenario,
        "milp",
        SolveStatus.feasible,
        charge,
        running,
        best.assignments,
        best_bound=bound,
        solve_s=time.perf_counter() - started,
    )
