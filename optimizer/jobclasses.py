"""Jobs grouped into classes that any model treats alike, and their residency family.

Two jobs with the same usable slots and the same allowed sites can run on exactly the same
(vehicle, slot) pairs, so a relaxation needs only their summed executions per slot: a class.
Within a class the jobs differ only in value, and every execution left undone is best left
undone on the class's cheapest jobs.

A family of site sets is laminar when any two are disjoint or nested. For classes whose
residency sets form a laminar family (with "all sites" on top), per-slot work ``Y[c,s]`` can
be placed on sites with spare capacity ``K[i,s]`` iff, for every set ``S`` of the family,
``Σ_{c: sites(c) ⊆ S} Y[c,s] <= Σ_{i ∈ S} K[i,s]`` (Hall's condition reduces to these sets).
Classes whose residency crosses a set of the family are kept per site instead ("explicit").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from optimizer.problem import Job, Scenario


@dataclass(frozen=True)
class JobClass:
    """Jobs sharing usable slots ``first..last-1`` and allowed site indices ``sites``."""

    first: int
    last: int
    sites: frozenset[int]
    jobs: tuple[Job, ...]  # by value, highest first

    @property
    def slots(self) -> range:
        return range(self.first, self.last)

    @property
    def executions_required(self) -> int:
        return sum(j.executions_required for j in self.jobs)


def job_classes(scenario: Scenario) -> list[JobClass]:
    """Every job with work to do, grouped by (usable slots, allowed sites), in a fixed order."""
    site_index = {s.id: k for k, s in enumerate(scenario.sites)}
    everywhere = frozenset(range(len(scenario.sites)))
    groups: dict[tuple[int, int, frozenset[int]], list[Job]] = defaultdict(list)
    for job in scenario.jobs:
        slots = scenario.job_slots(job)
        if job.executions_required == 0:
            continue
        sites = everywhere if job.sites is None else frozenset(site_index[s] for s in job.sites)
        groups[(slots.start, slots.stop, sites)].append(job)
    return [
        JobClass(first, last, sites, tuple(sorted(jobs, key=lambda j: (-j.value_per_shard, j.id))))
        for (first, last, sites), jobs in sorted(
            groups.items(), key=lambda item: (item[0][0], item[0][1], sorted(item[0][2]))
        )
    ]


@dataclass(frozen=True)
class ResidencyFamily:
    """The laminar family of residency sets (``sets[0]`` is all sites) and, per set, its
    ancestors in the family including itself; ``explicit`` sets cross the family."""

    sets: tuple[frozenset[int], ...]
    ancestors: dict[frozenset[int], tuple[int, ...]]
    explicit: frozenset[frozenset[int]]


def residency_family(
    residencies: Sequence[tuple[frozenset[int], float]], sites: int
) -> ResidencyFamily:
    """Grow a laminar family from ``(allowed sites, demand)`` pairs, most demanded set first."""
    everywhere = frozenset(range(sites))
    demand: dict[frozenset[int], float] = defaultdict(float)
    for members, amount in residencies:
        demand[members] += amount
    chosen = [everywhere]
    explicit = set()
    for candidate in sorted(demand, key=lambda s: (-demand[s], sorted(s))):
        if candidate == everywhere:
            continue
        if all(candidate <= s or s <= candidate or not candidate & s for s in chosen):
            chosen.append(candidate)
        else:
            explicit.add(candidate)
    ancestors = {member: tuple(k for k, s in enumerate(chosen) if member <= s) for member in chosen}
    return ResidencyFamily(tuple(chosen), ancestors, frozenset(explicit))
