"""The result spool on disk: what is written survives a restart, acknowledged results go,
and files that are not results are set aside, never read as work."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from executor.spool import CORRUPT_DIR, ResultSpool
from streams.messages import Result
from streams.serde import encode


def result(work_id: str) -> Result:
    return Result(
        work_id=work_id,
        assignment_id="a-1",
        job_id="job-1",
        shard_index=0,
        vehicle_id="car-a",
        status="failed",
        reason="stopped: the car departed",
        fault="car",
        finished_at=datetime(2025, 6, 1, 12, 5, tzinfo=UTC),
    )


def test_a_spooled_result_survives_a_restart_until_it_is_delivered(tmp_path: Path) -> None:
    spool = ResultSpool(tmp_path / "spool")
    first, second = spool.add(result("w-1")), spool.add(result("w-2"))
    assert spool.unsent() == []  # both wait on their own send
    spool.settle(first, delivered=True)
    spool.settle(second, delivered=False)

    reopened = ResultSpool(tmp_path / "spool")
    assert [s.result for s in reopened.unsent()] == [result("w-2")]
    assert reopened.unsent() == []  # claimed by the send above
    [left] = os.listdir(tmp_path / "spool")
    assert left.endswith(".json")


def test_unsent_results_come_oldest_first_and_again_until_delivered(tmp_path: Path) -> None:
    spool = ResultSpool(tmp_path)
    for work_id in ("w-1", "w-2", "w-3"):
        spool.settle(spool.add(result(work_id)), delivered=False)
    unsent = spool.unsent()
    assert [s.result.work_id for s in unsent] == ["w-1", "w-2", "w-3"]
    spool.settle(unsent[0], delivered=True)
    for spooled in unsent[1:]:
        spool.settle(spooled, delivered=False)
    assert [s.result.work_id for s in spool.unsent()] == ["w-2", "w-3"]
    assert len(spool) == 2


def test_files_that_are_not_results_are_moved_aside_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = ResultSpool(tmp_path)
    spool.settle(spool.add(result("w-1")), delivered=False)
    (tmp_path / "00000000000000000001-bad.json").write_bytes(b'{"work_id": "rm -rf /"}')
    (tmp_path / "00000000000000000002-huge.json").write_bytes(b" " * 2_000_000)
    (tmp_path / "notes.txt").write_text("not a result")
    (tmp_path / "00000000000000000003-link.json").symlink_to(tmp_path / "notes.txt")
    (tmp_path / "0000-crash.json.partial").write_bytes(b'{"work_id"')

    with caplog.at_level(logging.ERROR, logger="executor.spool"):
        reopened = ResultSpool(tmp_path)
        assert [s.result.work_id for s in reopened.unsent()] == ["w-1"]
    aside = sorted(os.listdir(tmp_path / CORRUPT_DIR))
    assert aside == [
        "00000000000000000001-bad.json",
        "00000000000000000002-huge.json",
        "00000000000000000003-link.json",
        "notes.txt",
    ]
    assert not (tmp_path / "0000-crash.json.partial").exists()  # an interrupted write
    assert sum("moved to" in r.getMessage() for r in caplog.records) == 4
    assert len(reopened) == 1


def test_a_full_spool_says_so_and_hands_the_result_back_unspooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size_bytes = len(encode(result("w-1")))
    spool = ResultSpool(tmp_path, max_bytes=2 * size_bytes)
    spool.add(result("w-1"))
    spool.add(result("w-2"))
    with caplog.at_level(logging.ERROR, logger="executor.spool"):
        third = spool.add(result("w-3"))
    assert third.name is None and third.result == result("w-3")
    assert "is full" in caplog.text and "w-3" in caplog.text
    spool.settle(third, delivered=False)  # nothing to keep
    assert len(spool) == 2
