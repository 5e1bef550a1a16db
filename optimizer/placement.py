"""From aggregated work to concrete shards: where each class's work runs, then on which car.

``place_work`` splits a fleet-level work plan (per class and slot, laminar residency) over
the sites with spare capacity, smallest residency sets first, which always succeeds when the
family's rows hold (Hall's condition on a laminar family). ``assign_shards`` then gives each
running vehicle concrete shards: a class's jobs in order of value, at most ``shards`` of a job
on any one vehicle (rule 7), at most ``shards_per_slot`` per vehicle and slot (rule 6).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.aggregate import Work
from optimizer.jobclasses import JobClass, ResidencyFamily
from optimizer.plan import Assignment
from optimizer.problem import Job

#: work placed at one (site, slot): (class index, executions) pairs
Placed = dict[tuple[int, int], list[tuple[int, int]]]


def marginal_values(classes: Sequence[JobClass], executed: np.ndarray) -> np.ndarray:
    """Value [currency] of the last job reached when a class's ``executed`` executions go to
    its jobs in order of value: what one execution fewer would cost."""
    out = np.zeros(len(classes))
    for k, job_class in enumerate(classes):
        left = executed[k]
        for job in job_class.jobs:
            out[k] = job.value_per_shard
            left -= job.executions_required
            if left <= 0:
                break
    return out


def place_work(
    work: Sequence[Work],
    amounts: Sequence[np.ndarray],
    classes: Sequence[JobClass],
    family: ResidencyFamily,
    capacity: np.ndarray,
) -> Placed:
    """Split each class's work (``amounts`` of its ``work`` variables) over sites with spare
    shard ``capacity`` (sites x slots). Per-site work stays where it is; laminar work fills
    the sites of its set in order, smallest sets first. Work that does not fit is left out.
    """
    spare = np.floor(capacity + 1e-6).astype(np.int64)
    placed: Placed = defaultdict(list)
    laminar: dict[frozenset[int], list[int]] = defaultdict(list)
    for k, (w, x) in enumerate(zip(work, amounts, strict=True)):
        if len(w.sites) and w.sites[0] < 0:
            laminar[classes[k].sites].append(k)
            continue
        for s, i, amount in zip(w.slots, w.sites, np.rint(x).astype(np.int64), strict=True):
            take = min(int(amount), int(spare[i, s]))
            if take > 0:
                placed[(int(i), int(s))].append((k, take))
                spare[i, s] -= take
    for a in sorted(range(len(family.sets)), key=lambda a: (len(family.sets[a]), a)):
        members = sorted(family.sets[a])
        cursor: dict[int, int] = defaultdict(int)  # per slot: members before it are full
        for k in laminar.get(family.sets[a], []):
            for s, amount in zip(work[k].slots, np.rint(amounts[k]).astype(np.int64), strict=True):
                left = int(amount)
                position = cursor[s]
                while left > 0 and position < len(members):
                    i = members[position]
                    take = min(left, int(spare[i, s]))
                    if take > 0:
                        placed[(i, int(s))].append((k, take))
                        spare[i, s] -= take
                        left -= take
                    if spare[i, s] == 0:
                        position += 1
                cursor[s] = position
    return dict(placed)


@dataclass
class Room:
    """A running vehicle's free shards in one slot."""

    vehicle: str
    free: int


class ShardBook:
    """Which of each class's jobs still need executions, and how many of a job each vehicle
    ran (rule 7: at most ``shards`` of a job on one vehicle)."""

    def __init__(self, classes: Sequence[JobClass]) -> None:
        self.classes = classes
        self.left = {job.id: job.executions_required for c in classes for job in c.jobs}
        self.first_open = [0] * len(classes)  # the class's jobs before it are done
        self.ran: dict[tuple[str, str], int] = defaultdict(int)
        self.assignments: list[Assignment] = []

    def give(self, job: Job, room: Room, wanted: int, slot: int) -> int:
        """Up to ``wanted`` shards of ``job`` on ``room``'s vehicle; returns how many."""
        take = min(
            wanted, room.free, self.left[job.id], job.shards - self.ran[(job.id, room.vehicle)]
        )
        if take <= 0:
            return 0
        self.assignments.append(Assignment(job.id, room.vehicle, slot, take))
        self.left[job.id] -= take
        self.ran[(job.id, room.vehicle)] += take
        room.free -= take
        return take

    def place(self, k: int, rooms: list[Room], wanted: int, slot: int) -> int:
        """Up to ``wanted`` shards of class ``k`` on ``rooms``, best jobs first; a job with
        replicas goes to the vehicles that ran it least. Returns how many were placed."""
        jobs = self.classes[k].jobs
        placed = 0
        position = self.first_open[k]
        while placed < wanted and position < len(jobs):
            job = jobs[position]
            order = rooms
            if job.replicas > 1:
                order = sorted(rooms, key=lambda r: self.ran[(job.id, r.vehicle)])
            for room in order:
                if placed == wanted or self.left[job.id] == 0:
                    break
                placed += self.give(job, room, wanted - placed, slot)
            if self.left[job.id] == 0 and position == self.first_open[k]:
                self.first_open[k] += 1
            position += 1
        return placed


def assign_shards(
    placed: Placed,
    classes: Sequence[JobClass],
    values: np.ndarray,
    runners: Mapping[tuple[int, int], list[tuple[str, int]]],
) -> list[Assignment]:
    """Concrete assignments: at each (site, slot), the placed work in order of class value
    goes to the running vehicles ``runners[(site, slot)]`` = [(vehicle id, shards per slot)],
    each class's jobs in order of value. Then work still undone (a job whose replicas found
    too few distinct vehicles) goes to any free running vehicle its class may use."""
    book = ShardBook(classes)
    rooms = {key: [Room(vid, sps) for vid, sps in cars] for key, cars in runners.items()}
    for (i, s), work in sorted(placed.items(), key=lambda item: (item[0][1], item[0][0])):
        here = [room for room in rooms.get((i, s), []) if room.free]
        for k, amount in sorted(work, key=lambda w: (-values[w[0]], w[0])):
            book.place(k, here, amount, s)
    free = [(key, [room for room in found if room.free]) for key, found in sorted(rooms.items())]
    for k, job_class in enumerate(classes):
        if book.first_open[k] == len(job_class.jobs):
            continue
        for (i, s), found in free:
            if i in job_class.sites and job_class.first <= s < job_class.last and found:
                book.place(k, found, sum(room.free for room in found), s)
    return book.assignments
