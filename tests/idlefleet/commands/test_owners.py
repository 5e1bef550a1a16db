"""`idlefleet owner show|set` and `idlefleet vehicles register|list` against the real service,
and `plan show` naming the cars whose data lacks something."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from idlefleet.api.auth import Role
from idlefleet.cli import main
from streams.catalog import T0
from tests.idlefleet.client.conftest import token_file
from tests.idlefleet.conftest import OWNED_CAR
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)


def args_for(fleet: LiveFleet, role: Role, directory: Path) -> list[str]:
    path = token_file(directory, fleet.tokens.by_role[role], f"{role.name.lower()}.token")
    return ["--target", fleet.target, "--token-file", str(path)]


def test_owner_show_and_set(
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = args_for(live, Role.OWNER, tmp_path)
    assert main(["owner", "show", "--vehicle", OWNED_CAR, *owner]) == 0
    shown = capsys.readouterr().out
    assert "departure UTC: 2020-06-01 15:00" in shown and "updated:       " in shown

    live.clock.now = T0 + timedelta(minutes=5)
    argv = ["owner", "set", "--vehicle", OWNED_CAR, "--departure", "2020-06-01T15:00:00+02:00"]
    argv += ["--no-compute", "--only-at", "berlin-depot", "--json", *owner]
    assert main([*argv]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["expected_departure"] == "2020-06-01T13:00:00+00:00"
    assert stored["participating"] is False and stored["only_at_sites"] == ["berlin-depot"]
    assert stored["target_kwh"] == 50.0  # kept

    assert main(["owner", "set", "--vehicle", "car-b", "--compute", *owner]) == 1
    err = capsys.readouterr().err
    assert err.startswith("idlefleet owner: PERMISSION_DENIED: vehicle_id: ")
    assert main(["owner", "set", "--vehicle", OWNED_CAR, "--min-soc", "1.5", *owner]) == 2
    assert "INVALID_ARGUMENT: rules.min_soc_frac: " in capsys.readouterr().err
    assert main(["owner", "set", "--vehicle", OWNED_CAR, "--departure", "tomorrow", *owner]) == 2
    assert "--departure: " in capsys.readouterr().err
    assert main(["owner", "set", "--vehicle", OWNED_CAR, *owner]) == 2
    assert "nothing to change" in capsys.readouterr().err
    assert main(["owner", "show", "--vehicle", "car-z", *args_for(live, Role.ADMIN, tmp_path)]) == 2
    assert "NOT_FOUND: unknown vehicle 'car-z'" in capsys.readouterr().err


def test_vehicles_register_and_list_and_plan_show(
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = args_for(live, Role.ADMIN, tmp_path)
    argv = ["vehicles", "register", "--vehicle", "car-new", "--battery-kwh", "60"]
    argv += ["--charger-kw", "7.4", "--compute-kw", "0.2", "--home-site", "london-depot"]
    argv += ["--evse", "depot-cs-7/1", "--id-token", "rfid-1", "rfid-2"]
    assert main([*argv, *admin]) == 0
    out = capsys.readouterr().out
    assert "home site:         london-depot" in out and "id tokens:         rfid-1, rfid-2" in out
    assert main([*argv[:-3], "--vin", "short", *admin]) == 2
    assert "INVALID_ARGUMENT: vehicle.vin: " in capsys.readouterr().err
    viewer = args_for(live, Role.VIEWER, tmp_path)
    assert main([*argv, *viewer]) == 1
    assert "PERMISSION_DENIED: RegisterVehicle needs role admin" in capsys.readouterr().err

    assert main(["vehicles", "list", *viewer]) == 0
    rows = capsys.readouterr().out.splitlines()
    new = next(row for row in rows if row.startswith("car-new"))
    assert new.split()[1:6] == ["60.0", "7.4", "0.2", "london-depot", "unknown"]
    assert "location; energy reading since it arrived; owner preferences" in new

    live.tick(T0)
    assert main(["plan", "show", *viewer]) == 0
    out = capsys.readouterr().out
    assert "car data: 1 car on sources, 1 to note" in out
    assert "  car-new: lacks location, energy reading since it arrived, owner preferences" in out


@pytest.mark.parametrize("argv", [["owner", "show"], ["owner", "set"], ["vehicles", "list"]])
def test_every_new_verb_shows_an_example(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert "example" in capsys.readouterr().out
