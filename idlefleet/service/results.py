"""Result intake: each result of an owned job reaches the ledger once, and done ones are validated.

Progress comes back from the results topic, checked against the assignments topic (the
durable record of every lease any worker gave). A result for work this process leased goes
through the ledger's own checks. A result for work it did not lease (leased before a restart,
or by the worker a job was taken over from) is adopted if an assignment carried that work to
that car: the ledger leases the shard to the car and accepts the result, if the shard still
has an open execution the car has not run. Until such an assignment is read the result waits,
counted as unmatched. A done result that arrives after its car's work was taken back still
counts if the shard is open.

Every accepted done result passes the `ReplicaValidator`: replicas that disagree call for one
more replica, cars found wrong become suspect or quarantined; all of it is rebuilt from the
results topic on replay. Callers read done results' outputs first (`JobData.output_of` in
`idlefleet.service.jobdata`, no lock held), then hold the service's state lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from executor.errors import ExecutionError, one_line
from executor.ledger import JobLedger
from executor.validation import Check, ReplicaValidator
from streams.jobbook import Execution, JobBook, execution_of
from streams.messages import Assignment, Result

log = logging.getLogger(__name__)


class ResultIntake:
    """Applies results to the ledger; `on_replan(reason)` is told when the plan must change."""

    def __init__(
        self,
        ledger: JobLedger,
        book: JobBook,
        validator: ReplicaValidator,
        on_replan: Callable[[str], None],
    ) -> None:
        self.ledger = ledger
        self.book = book
        self.validator = validator
        self._on_replan = on_replan
        #: Done results the ledger accepted, in the order they were accepted.
        self.accepted: list[Result] = []
        self.refused = 0
        self._issued: set[str] = set()  # work ids this process leased
        self._applied: set[Execution] = set()  # executions whose result reached the ledger
        self._unmatched: set[Execution] = set()  # results waiting for their assignment

    @property
    def unmatched(self) -> int:
        """Results of work no assignment read so far carried (not counted until one does)."""
        return len(self._unmatched)

    def issued(self, assignments: Iterable[Assignment]) -> None:
        """Remember the work this process leased in `assignments`."""
        self._issued.update(item.work_id for a in assignments for item in a.work)

    def apply(self, result: Result, output: np.ndarray | ExecutionError | None = None) -> None:
        """Bring a result of an owned job to the ledger, once.

        `output` is a done result's output as the caller read it, outside any lock, against
        its `output_sha256` (None: the validator reads it if it needs it). A done result
        whose output could not be read so (missing, not a regular file, too large, other
        bytes than it claims) counts as work that failed, with the reason."""
        execution = execution_of(result)
        if execution in self._applied:
            return
        if isinstance(output, ExecutionError):
            result, output = failed_for_its_output(result, output), None
        if result.work_id in self._issued:
            accepted = self.ledger.accept(result)
            if not accepted and result.status == "done":
                # its lease was taken back (the car left or went silent): count it if still open
                accepted = self._adopt(result)
        else:
            matches = self.book.matches_assignment(result)
            if matches is None:
                if execution not in self._unmatched:
                    self._unmatched.add(execution)
                    log.info("result %s waits for the assignment that carried it", execution)
                return
            self._unmatched.discard(execution)
            accepted = matches and self._adopt(result)
        self._applied.add(execution)
        if not accepted:
            self.refused += 1
            log.info(
                "%s result %s of %s shard %d from %s refused",
                result.status,
                result.work_id,
                result.job_id,
                result.shard_index,
                result.vehicle_id,
            )
        elif result.status == "done":
            self.accepted.append(result)
            self._validate(result, output)
        else:
            self._on_replan("failed-work")

    def _validate(self, result: Result, output: np.ndarray | None) -> None:
        """Check an accepted done result against its replicas; add one or give up if told."""
        job = self.ledger.job(result.job_id)
        assert job is not None  # a result is applied only for a registered job
        check = self.validator.check(result, job.replicas, output)
        if check is Check.ADD_REPLICA and self.ledger.add_execution(
            result.job_id, result.shard_index
        ):
            self._on_replan("validation")
        elif check is Check.UNVERIFIABLE:
            self.ledger.abandon_shard(result.job_id, result.shard_index, "replicas disagree")

    def _adopt(self, result: Result) -> bool:
        """Count a result for work leased before this process held the job, if still open.

        The ledger leases the shard to the result's car under a new work id and accepts the
        result under it: refused when the shard has no open execution or the car already ran
        or holds it, so nothing is ever counted twice.
        """
        try:
            lease = self.ledger.lease(
                result.job_id,
                result.shard_index,
                result.vehicle_id,
                result.finished_at,
                result.assignment_id,
            )
        except ValueError:
            return False
        return self.ledger.accept(result.model_copy(update={"work_id": lease.work_id}))


def failed_for_its_output(result: Result, error: ExecutionError) -> Result:
    """A done result whose output is not what it claims, as the failed work it is."""
    return Result.model_validate(
        {
            **result.model_dump(),
            "status": "failed",
            "reason": one_line(f"output not as reported: {error.reason}"),
            "fault": "work",
            "output_uri": None,
            "output_sha256": None,
            "progress_frac": None,
        }
    )


def unread(uri: str) -> np.ndarray:
    """The validator's reader in the service: never called, outputs come read."""
    raise AssertionError(f"outputs are read before the service's lock is taken, not {uri}")
