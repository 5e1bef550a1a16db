"""Assignments signed with the fleet key (HMAC-SHA256) so a car runs only what the planner sent.

The signed bytes are the assignment's canonical JSON without its `signature` field: the
message models serialise deterministically (fixed field order, UTC timestamps), so the agent
recomputes the same bytes from the decoded message. Every field is covered; `plan_revision`
is left out of the bytes only while it is 0 (its default), so an assignment signed before the
field existed still verifies, and setting, changing or clearing a revision breaks the
signature.
"""

from __future__ import annotations

import hashlib
import hmac

from streams.messages import Assignment


def _mac(assignment: Assignment, key: bytes) -> str:
    unsigned = {"signature"} if assignment.plan_revision else {"signature", "plan_revision"}
    payload = assignment.model_dump_json(exclude=unsigned).encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def sign(assignment: Assignment, key: bytes) -> Assignment:
    """A copy of `assignment` carrying its signature."""
    if not key:
        raise ValueError("the fleet key must not be empty")
    return assignment.model_copy(update={"signature": _mac(assignment, key)})


def verify(assignment: Assignment, key: bytes) -> bool:
    """True when the assignment carries the signature `key` gives it (constant-time compare)."""
    return assignment.signature is not None and hmac.compare_digest(
        assignment.signature, _mac(assignment, key)
    )
