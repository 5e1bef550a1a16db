"""`idlefleet fleet status`, `plan show`, `flex`: tables and JSON from a real server; and
`plan SCENARIO.json` still plans a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.cli import main
from tests.idlefleet.client.conftest import token_file
from tests.idlefleet.conftest import Tokens
from tests.optimizer.factories import one_car_three_slots


@pytest.fixture
def viewer_args(target: str, tokens: Tokens, tmp_path: Path) -> list[str]:
    path = token_file(tmp_path, tokens.by_role[Role.VIEWER])
    return ["--target", target, "--token-file", str(path)]


def test_fleet_status(viewer_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "status", *viewer_args]) == 0
    out = capsys.readouterr().out
    assert "cars: 4 known, 4 parked, 3 computing" in out
    assert any(line.startswith("london-depot  GB") for line in out.splitlines())
    assert main(["fleet", "status", "--json", *viewer_args]) == 0
    assert json.loads(capsys.readouterr().out)["vehicles_known"] == 4


def test_plan_show_of_the_fleet_a_site_and_a_vehicle(
    viewer_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "show", *viewer_args]) == 0
    assert capsys.readouterr().out.startswith("fleet\nplan plan-")
    assert main(["plan", "show", "--site", "berlin-depot", *viewer_args]) == 0
    assert capsys.readouterr().out.startswith("site berlin-depot\n")
    assert main(["plan", "show", "--vehicle", "car-c", "--json", *viewer_args]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["scope"] == "vehicle car-c" and len(view["slots"]) == 16
    assert main(["plan", "show", "--vehicle", "car-z", *viewer_args]) == 2
    assert capsys.readouterr().err.startswith("idlefleet plan show: NOT_FOUND: ")


def test_flex_of_a_site(viewer_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flex", "--site", "london-depot", *viewer_args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("site london-depot (each slot as if only it departs from the plan)")
    assert "shed kW" in out
    assert main(["flex", "--region", "GB", "--json", *viewer_args]) == 0
    assert json.loads(capsys.readouterr().out)["scope"] == "region GB"


def test_no_server_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = token_file(tmp_path, "x" * 20)
    argv = ["fleet", "status", "--target", "127.0.0.1:1", "--token-file", str(path)]
    assert main([*argv, "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("idlefleet fleet: UNAVAILABLE: ") and err.count("\n") == 1


def test_plan_still_plans_a_file_and_refuses_options_of_the_other_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(one_car_three_slots()))
    out = tmp_path / "plan.json"
    assert main(["plan", str(scenario), "--strategy", "greedy", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["strategy"] == "greedy"
    assert main(["plan", str(scenario), "--site", "berlin-depot"]) == 2
    assert "--site: not an option of plan SCENARIO.json" in capsys.readouterr().err
    assert main(["plan", "show", "--strategy", "greedy"]) == 2
    assert "--strategy: not an option of plan show" in capsys.readouterr().err


def test_plan_show_and_plan_file_from_a_shell(viewer_args: list[str], tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(one_car_three_slots()))
    idlefleet = [sys.executable, "-m", "idlefleet.cli"]
    planned = subprocess.run(
        [*idlefleet, "plan", str(scenario)], capture_output=True, text=True, timeout=120
    )
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["status"] == "optimal"
    shown = subprocess.run(
        [*idlefleet, "plan", "show", "--json", *viewer_args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["scope"] == "fleet"


@pytest.mark.parametrize("argv", [["fleet", "status"], ["plan"], ["flex"], ["doctor"]])
def test_every_verb_shows_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert "example" in capsys.readouterr().out


def test_the_command_line_loads_without_grpc() -> None:
    """A car agent installs without grpcio: the client commands load gRPC only when run."""
    code = "import sys, idlefleet.cli; idlefleet.cli.build_parser(); print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
