"""Signed assignments: the agent runs what the planner signed and refuses anything else."""

from __future__ import annotations

import hashlib
import hmac
import logging

import numpy as np
import pytest

from executor.agent import VehicleAgent
from executor.runtime import OnnxRunner
from executor.signing import sign, verify
from idlefleet.sim.clock import SteppedClock
from tests.executor.conftest import MakeAssignment, MakeItem, RecordingCharger, WriteNpy

KEY = b"fleet-key-for-tests"


def test_a_signature_covers_every_field(make_assignment: MakeAssignment) -> None:
    signed = sign(make_assignment("car-1", [], power_kw=7.0), KEY)
    assert verify(signed, KEY)
    assert not verify(signed, b"another key")
    assert not verify(signed.model_copy(update={"charge_power_kw": 11.0}), KEY)
    assert not verify(signed.model_copy(update={"signature": None}), KEY)
    with pytest.raises(ValueError, match="empty"):
        sign(signed, b"")


def test_the_signature_covers_the_plan_revision(make_assignment: MakeAssignment) -> None:
    unrevised = make_assignment("car-1", [])
    revised = sign(unrevised.model_copy(update={"plan_revision": 1_717_243_200_000}), KEY)
    assert verify(revised, KEY)
    for changed in (1_717_243_200_001, 0):
        assert not verify(revised.model_copy(update={"plan_revision": changed}), KEY)
    # Revision 0 signs the bytes an assignment had before the field existed: those verify.
    old_bytes = unrevised.model_dump_json(exclude={"signature", "plan_revision"}).encode()
    old_signature = hmac.new(KEY, old_bytes, hashlib.sha256).hexdigest()
    assert sign(unrevised, KEY).signature == old_signature
    forged = unrevised.model_copy(update={"signature": old_signature, "plan_revision": 7})
    assert not verify(forged, KEY)


def test_the_agent_refuses_tampered_and_unsigned_work_and_runs_signed_work(
    runner: OnnxRunner,
    charger: RecordingCharger,
    clock: SteppedClock,
    make_item: MakeItem,
    make_assignment: MakeAssignment,
    write_npy: WriteNpy,
    features: np.ndarray,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = VehicleAgent("car-1", runner, charger, 0.3, clock, fleet_key=KEY)
    item = make_item(input_uri=write_npy("in.npy", features))
    signed = sign(make_assignment("car-1", [item]), KEY)

    tampered = signed.model_copy(update={"charge_power_kw": 50.0})
    [refused] = agent.handle(tampered)
    assert refused.status == "failed" and "signature" in (refused.reason or "")
    [unsigned] = agent.handle(signed.model_copy(update={"signature": None}))
    assert unsigned.status == "failed"
    assert charger.calls == []  # nothing unsigned ever reached the charger
    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "executor.agent"
    ]
    refusal = f"agent car-1 refuses assignment {signed.assignment_id}: signature missing or invalid"
    assert refusals == [refusal, refusal]  # the tampered one and the unsigned one
    assert KEY.decode() not in caplog.text and KEY.hex() not in caplog.text

    [ran] = agent.handle(signed)
    assert ran.status == "done", ran.reason
    assert len(charger.calls) == 1
