"""`idlefleet jobs list|status|watch|cancel` as a user runs them: real server, exit codes,
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.cli import main
from idlefleet.queries.local_backend import LocalBackend
from tests.idlefleet.client.conftest import accept_shards, token_file
from tests.idlefleet.conftest import Tokens


@pytest.fixture
def viewer_args(target: str, tokens: Tokens, tmp_path: Path) -> list[str]:
    return [
        "--target",
        target,
        "--token-file",
        str(token_file(tmp_path, tokens.by_role[Role.VIEWER])),
    ]


def test_list_and_status(viewer_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list", *viewer_args]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("job ") and table[2].startswith("embed-1  open")
    assert main(["jobs", "status", "embed-1", *viewer_args, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["job_id"] == "embed-1" and status["executions_total"] == 4


def test_an_unknown_job_is_one_line_and_exit_2(
    viewer_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "status", "nope", *viewer_args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("idlefleet jobs: NOT_FOUND: ") and "nope" in captured.err
    assert captured.err.count("\n") == 1


def test_a_bad_token_is_unauthenticated_exit_1(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = token_file(tmp_path, "an-unknown-token-0123456789")
    assert main(["jobs", "list", "--target", target, "--token-file", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("idlefleet jobs: UNAUTHENTICATED: unknown bearer token")
    assert "an-unknown-token" not in err and "Traceback" not in err


def test_cancel_needs_an_operator(
    viewer_args: list[str],
    target: str,
    tokens: Tokens,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["jobs", "cancel", "embed-1", *viewer_args]) == 1
    assert "PERMISSION_DENIED: CancelJob needs role operator" in capsys.readouterr().err
    operator = token_file(tmp_path, tokens.by_role[Role.OPERATOR], "operator")
    assert (
        main(["jobs", "cancel", "embed-1", "--target", target, "--token-file", str(operator)]) == 0
    )
    assert "state:" in (out := capsys.readouterr().out) and "cancelled" in out


def test_watch_shows_a_progress_bar_and_exits_0_when_done(
    viewer_args: list[str], backend: LocalBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    accept_shards(backend, "embed-1", range(4))
    assert main(["jobs", "watch", "embed-1", "--interval", "0.05", *viewer_args]) == 0
    captured = capsys.readouterr()
    assert captured.out == "embed-1 done: 4 / 4 executions accepted\n"
    assert "embed-1 done" in captured.err and "4/4" in captured.err  # tqdm's bar


def test_watch_exits_1_when_the_job_is_cancelled(
    viewer_args: list[str], target: str, tokens: Tokens, capsys: pytest.CaptureFixture[str]
) -> None:
    from idlefleet.client.fleet import FleetClient

    with FleetClient(target, token=tokens.by_role[Role.OPERATOR]) as operator:
        operator.cancel_job("embed-1")
    assert main(["jobs", "watch", "embed-1", "--json", *viewer_args]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["state"] for line in lines] == ["cancelled"]


def test_every_action_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("list", "status", "watch", "cancel"):
        with pytest.raises(SystemExit):
            main(["jobs", action, "--help"])
        assert f"example:\n  idlefleet jobs {action}" in capsys.readouterr().out
