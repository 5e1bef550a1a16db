"""The planning MILP in Pyomo (the only module importing Pyomo besides ``solve``).

Index sets are sparse: variables exist only for usable (vehicle, slot) pairs, for (job, vehicle,
slot) triples a vehicle may run, and for (site, slot) pairs where some charger can draw power.
Storage levels live on boundaries ``b = first..last`` of each vehicle's window; the level at the
first boundary is the constant ``soc_kwh``.

Symbols: ``c[v,s]`` charge power [kW], ``r[v,s]`` running (binary), ``e[v,b]`` state of charge
[kWh], ``x[j,v,s]`` shard executions, ``u[j]`` unmet executions, ``g[i,s]`` site grid import [kW],
``d[v]`` deficit [kWh]; ``η`` charge efficiency, ``Δ`` slot length [h].
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyomo.environ as pyo

from optimizer.costs import deficit_cost_per_kwh, import_cost_per_kwh
from optimizer.problem import Scenario, Vehicle

VS = tuple[str, int]
JVS = tuple[str, str, int]


@dataclass
class SparseIndex:
    """The sparse index sets and coefficients of one scenario (plain Python, no Pyomo)."""

    vehicles: dict[str, Vehicle]
    charge: list[VS] = field(default_factory=list)
    running: list[VS] = field(default_factory=list)
    soc: list[VS] = field(default_factory=list)
    executions: list[JVS] = field(default_factory=list)
    imports: list[tuple[str, int]] = field(default_factory=list)
    deficit: list[str] = field(default_factory=list)
    targets: dict[str, float] = field(default_factory=dict)
    site_cap_kw: dict[str, list[float]] = field(default_factory=dict)
    region_caps: list[tuple[str, int, float, tuple[str, ...]]] = field(default_factory=list)
    site_charge: dict[tuple[str, int], list[VS]] = field(default_factory=dict)
    jobs_at: dict[VS, list[JVS]] = field(default_factory=dict)
    job_vehicle: dict[tuple[str, str], list[JVS]] = field(default_factory=dict)
    job_executions: dict[str, list[JVS]] = field(default_factory=dict)


def build_index(scenario: Scenario) -> SparseIndex:
    """Compute the sparse index sets: only usable pairs and eligible triples get variables."""
    idx = SparseIndex(vehicles={})
    job_slots = {j.id: set(scenario.job_slots(j)) for j in scenario.jobs}
    site_charge: dict[tuple[str, int], list[VS]] = defaultdict(list)
    for v in scenario.vehicles:
        window = scenario.window(v)
        if len(window) == 0:
            continue
        jobs = scenario.eligible_jobs(v)
        charge = [(v.id, s) for s in window.slots] if v.charger_kw > 0 else []
        running: list[VS] = []
        for s in window.slots:
            triples = [(j.id, v.id, s) for j in jobs if s in job_slots[j.id]]
            if triples:
                running.append((v.id, s))
                idx.jobs_at[(v.id, s)] = triples
                idx.executions.extend(triples)
                for t in triples:
                    idx.job_vehicle.setdefault((t[0], v.id), []).append(t)
                    idx.job_executions.setdefault(t[0], []).append(t)
        if not charge and not running:
            continue
        idx.vehicles[v.id] = v
        idx.charge.extend(charge)
        idx.running.extend(running)
        idx.soc.extend((v.id, b) for b in range(window.first + 1, window.last + 1))
        for pair in charge:
            site_charge[(v.site, pair[1])].append(pair)
        required = scenario.required_departure_kwh(v)
        if required is not None:
            idx.targets[v.id] = required
        if running:
            idx.deficit.append(v.id)
    idx.site_charge = dict(site_charge)
    idx.imports = sorted(site_charge, key=lambda k: (k[0], k[1]))
    for site in scenario.sites:
        idx.site_cap_kw[site.id] = scenario.site_cap_kw(site)
    for event, slots in scenario.region_caps():
        assert event.region is not None
        members = tuple(s.id for s in scenario.sites_in_region(event.region))
        idx.region_caps.extend((event.id, s, event.max_import_kw, members) for s in slots)
    return idx


# -- variables ---------------------------------------------------------------------------------
def define_variables(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Variables with their bounds.

    ``0 <= c[v,s] <= charger_kw`` (rule 2), ``r[v,s] ∈ {0,1}`` (rule 2),
    ``min(reserve, soc_kwh) <= e[v,b] <= battery_kwh`` (rule 4),
    ``x[j,v,s] ∈ {0..min(shards_per_slot, shards)}``, ``0 <= u[j] <= shards*replicas``,
    ``0 <= g[i,s] <= min(grid_limit_kw, site DR caps in force)`` (rule 8).
    """
    veh = idx.vehicles
    jobs = scenario.job_by_id
    m.charge_kw = pyo.Var(
        idx.charge, within=pyo.NonNegativeReals, bounds=lambda _m, v, s: (0.0, veh[v].charger_kw)
    )
    m.running = pyo.Var(idx.running, within=pyo.Binary)
    m.soc_kwh = pyo.Var(
        idx.soc, within=pyo.Reals, bounds=lambda _m, v, b: (veh[v].floor_kwh, veh[v].battery_kwh)
    )
    m.executions = pyo.Var(
        idx.executions,
        within=pyo.NonNegativeIntegers,
        bounds=lambda _m, j, v, s: (0, min(veh[v].shards_per_slot, jobs[j].shards)),
    )
    m.unmet = pyo.Var(
        [j.id for j in scenario.jobs],
        within=pyo.NonNegativeReals,
        bounds=lambda _m, j: (0, jobs[j].executions_required),
    )
    caps = idx.site_cap_kw
    m.grid_import_kw = pyo.Var(
        idx.imports, within=pyo.NonNegativeReals, bounds=lambda _m, i, s: (0, caps[i][s])
    )
    m.deficit_kwh = pyo.Var(idx.deficit, within=pyo.NonNegativeReals)


# -- constraint families ----------------------------------------------------------------------
def define_soc_balance(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Rule 3: ``e[v,s+1] = e[v,s] + η c[v,s] Δ - compute_kw r[v,s] Δ``.

    The level at the window's first boundary is the constant ``soc_kwh``.
    """
    dt_h = scenario.horizon.dt_h
    charge = set(idx.charge)
    running = set(idx.running)
    first = {vid: scenario.window(v).first for vid, v in idx.vehicles.items()}

    def rule(_m: pyo.ConcreteModel, vid: str, b: int) -> object:
        v = idx.vehicles[vid]
        s = b - 1
        prev = v.soc_kwh if s == first[vid] else m.soc_kwh[vid, s]
        expr = prev
        if (vid, s) in charge:
            expr = expr + v.charge_efficiency_frac * dt_h * m.charge_kw[vid, s]
        if (vid, s) in running and v.compute_kw > 0:
            expr = expr - v.compute_kw * dt_h * m.running[vid, s]
        return m.soc_kwh[vid, b] == expr

    m.soc_balance = pyo.Constraint(idx.soc, rule=rule)


def define_departure_targets(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Rule 5: ``e[v,last] >= min(target, soc_kwh + η charger_kw Δ |window|, battery)`` for
    vehicles departing inside the horizon. The solver plans a scenario whose short vehicles'
    targets are already lowered by their share of the least shortfall (`optimizer.shortfall`),
    so this row holds as the contract's ``e[v,last] + shortfall_kwh >= required_kwh``."""
    last = {vid: scenario.window(idx.vehicles[vid]).last for vid in idx.targets}

    def rule(_m: pyo.ConcreteModel, vid: str) -> object:
        return m.soc_kwh[vid, last[vid]] >= idx.targets[vid]

    m.departure_target = pyo.Constraint(list(idx.targets), rule=rule)


def define_shard_capacity(m: pyo.ConcreteModel, idx: SparseIndex) -> None:
    """Rule 6: ``Σ_j x[j,v,s] <= shards_per_slot · r[v,s]`` over jobs whose window, residency
    and participation allow ``v`` in ``s`` (other triples have no variable)."""

    def rule(_m: pyo.ConcreteModel, vid: str, s: int) -> object:
        triples = idx.jobs_at[(vid, s)]
        sps = idx.vehicles[vid].shards_per_slot
        return pyo.quicksum(m.executions[t] for t in triples) <= sps * m.running[vid, s]

    m.shard_capacity = pyo.Constraint(idx.running, rule=rule)


def define_job_balance(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Rule 7: ``Σ_{v,s} x[j,v,s] + u[j] = shards·replicas`` and ``Σ_s x[j,v,s] <= shards``."""
    jobs = scenario.job_by_id

    def balance(_m: pyo.ConcreteModel, jid: str) -> object:
        done = pyo.quicksum(m.executions[t] for t in idx.job_executions.get(jid, []))
        return done + m.unmet[jid] == jobs[jid].executions_required

    m.job_balance = pyo.Constraint([j.id for j in scenario.jobs], rule=balance)

    def bounded(jid: str, vid: str) -> bool:
        most = len(idx.job_vehicle[(jid, vid)]) * min(
            idx.vehicles[vid].shards_per_slot, jobs[jid].shards
        )
        return most > jobs[jid].shards

    pairs = [k for k in idx.job_vehicle if bounded(*k)]

    def per_vehicle(_m: pyo.ConcreteModel, jid: str, vid: str) -> object:
        triples = idx.job_vehicle[(jid, vid)]
        return pyo.quicksum(m.executions[t] for t in triples) <= jobs[jid].shards

    m.job_per_vehicle = pyo.Constraint(pairs, rule=per_vehicle)


def define_site_import(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Rule 8 (site): ``g[i,s] >= Σ_{v at i} c[v,s] - pv_kw[i,s]``, ``g >= 0``, ``g <= caps``.

    With a cost coefficient below zero (negative prices) the import is pinned to
    ``max(0, load - pv)`` exactly: an equality without PV, a binary switch with it.
    """
    pv = {site.id: site.pv_kw for site in scenario.sites}
    coef = import_cost_per_kwh(scenario)

    def rule(_m: pyo.ConcreteModel, i: str, s: int) -> object:
        load = pyo.quicksum(m.charge_kw[p] for p in idx.site_charge[(i, s)])
        if coef[i][s] < 0 and pv[i][s] <= 0:
            return m.grid_import_kw[i, s] == load
        return m.grid_import_kw[i, s] >= load - pv[i][s]

    m.site_import = pyo.Constraint(idx.imports, rule=rule)
    switched = [(i, s) for (i, s) in idx.imports if coef[i][s] < 0 and pv[i][s] > 0]
    if switched:
        m.import_on = pyo.Var(switched, within=pyo.Binary)
        big = {(i, s): idx.site_cap_kw[i][s] + pv[i][s] for (i, s) in switched}

        def upper(_m: pyo.ConcreteModel, i: str, s: int) -> object:
            load = pyo.quicksum(m.charge_kw[p] for p in idx.site_charge[(i, s)])
            return m.grid_import_kw[i, s] <= load - pv[i][s] + big[i, s] * (1 - m.import_on[i, s])

        def off(_m: pyo.ConcreteModel, i: str, s: int) -> object:
            return m.grid_import_kw[i, s] <= big[i, s] * m.import_on[i, s]

        m.import_exact_upper = pyo.Constraint(switched, rule=upper)
        m.import_exact_off = pyo.Constraint(switched, rule=off)


def define_region_caps(m: pyo.ConcreteModel, idx: SparseIndex) -> None:
    """Rule 8 (region DR): ``Σ_{i in region} g[i,s] <= max_import_kw`` in every capped slot."""
    imports = set(idx.imports)
    rows: dict[int, tuple[list[tuple[str, int]], float]] = {}
    for k, (_eid, s, cap, members) in enumerate(idx.region_caps):
        terms = [(i, s) for i in members if (i, s) in imports]
        if terms:
            rows[k] = (terms, cap)

    def rule(_m: pyo.ConcreteModel, k: int) -> object:
        terms, cap = rows[k]
        return pyo.quicksum(m.grid_import_kw[t] for t in terms) <= cap

    m.region_cap = pyo.Constraint(list(rows), rule=rule)


def define_deficit(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Deficit: ``d[v] >= soc_kwh - e[v,last]``, ``d[v] >= 0``.

    With a negative valuation (negative mean price) ``d`` is pinned to ``max(0, ·)`` by a
    binary switch so that a drain never earns money.
    """
    last = {vid: scenario.window(idx.vehicles[vid]).last for vid in idx.deficit}

    def rule(_m: pyo.ConcreteModel, vid: str) -> object:
        v = idx.vehicles[vid]
        return m.deficit_kwh[vid] >= v.soc_kwh - m.soc_kwh[vid, last[vid]]

    m.deficit = pyo.Constraint(idx.deficit, rule=rule)
    coef = deficit_cost_per_kwh(scenario)
    switched = [vid for vid in idx.deficit if coef[vid] < 0]
    if switched:
        m.deficit_on = pyo.Var(switched, within=pyo.Binary)
        big = {vid: idx.vehicles[vid].battery_kwh + idx.vehicles[vid].soc_kwh for vid in switched}

        def upper(_m: pyo.ConcreteModel, vid: str) -> object:
            v = idx.vehicles[vid]
            gap = v.soc_kwh - m.soc_kwh[vid, last[vid]]
            return m.deficit_kwh[vid] <= gap + big[vid] * (1 - m.deficit_on[vid])

        m.deficit_exact_upper = pyo.Constraint(switched, rule=upper)
        m.deficit_exact_off = pyo.Constraint(
            switched, rule=lambda _m, vid: m.deficit_kwh[vid] <= big[vid] * m.deficit_on[vid]
        )


# -- objective -------------------------------------------------------------------------------
def define_objective(m: pyo.ConcreteModel, scenario: Scenario, idx: SparseIndex) -> None:
    """Minimise ``Σ g Δ (intensity·price_c/1e6 + price) + Σ wear (η c Δ + compute_kw r Δ)
    + Σ value_per_shard u + Σ d / η (mean_intensity·price_c/1e6 + mean_price)``."""
    dt_h = scenario.horizon.dt_h
    cost = import_cost_per_kwh(scenario)
    veh = idx.vehicles
    terms = [cost[i][s] * dt_h * m.grid_import_kw[i, s] for (i, s) in idx.imports]
    terms += [
        veh[v].wear_cost_per_kwh * veh[v].charge_efficiency_frac * dt_h * m.charge_kw[v, s]
        for (v, s) in idx.charge
        if veh[v].wear_cost_per_kwh > 0
    ]
    terms += [
        veh[v].wear_cost_per_kwh * veh[v].compute_kw * dt_h * m.running[v, s]
        for (v, s) in idx.running
        if veh[v].wear_cost_per_kwh > 0 and veh[v].compute_kw > 0
    ]
    terms += [j.value_per_shard * m.unmet[j.id] for j in scenario.jobs]
    deficit = deficit_cost_per_kwh(scenario)
    terms += [deficit[v] * m.deficit_kwh[v] for v in idx.deficit]
    m.objective = pyo.Objective(expr=pyo.quicksum(terms), sense=pyo.minimize)


def build_model(scenario: Scenario) -> tuple[pyo.ConcreteModel, SparseIndex]:
    """Build the planning model; returns the model and its sparse index sets."""
    idx = build_index(scenario)
    m = pyo.ConcreteModel(name="idlefleet-plan")
    define_variables(m, scenario, idx)
    define_soc_balance(m, scenario, idx)
    define_departure_targets(m, scenario, idx)
    define_shard_capacity(m, idx)
    define_job_balance(m, scenario, idx)
    define_site_import(m, scenario, idx)
    define_region_caps(m, idx)
    define_deficit(m, scenario, idx)
    define_objective(m, scenario, idx)
    return m, idx
