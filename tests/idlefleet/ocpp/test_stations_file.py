"""The stations file: a clear format, every rule refused with its line, no password shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from idlefleet.ocpp.passwords import PasswordHash, PasswordHashError, password_matches
from idlefleet.ocpp.profiles import RateUnit
from idlefleet.ocpp.stations_file import StationsFileError, load_stations, parse_stations

SITES = ["depot-a", "depot-b"]
HASH = PasswordHash.make("s3cret", n=2**4)  # a cheap one: tests need no strength


def test_a_file_declares_each_station_with_its_site_password_and_limits() -> None:
    text = (
        "# STATION_ID SITE_ID PASSWORD [KEY=VALUE ...]\n"
        "\n"
        "CS-1 depot-a plain:pa#ss evse_kw=22 unit=W station_kw=44\n"
        f"  wallbox.7@b:2   depot-b {HASH.text()} phases=1 voltage_v=240 min_current_a=8\n"
    )
    stations, clear_line = parse_stations(text, SITES)
    assert clear_line == 3
    one, two = stations["CS-1"], stations["wallbox.7@b:2"]
    assert one.site_id == "depot-a" and two.site_id == "depot-b"
    assert isinstance(one.password, SecretStr) and password_matches(one.password, "pa#ss")
    assert isinstance(two.password, PasswordHash) and password_matches(two.password, "s3cret")
    assert not password_matches(two.password, "s3cret ")
    assert (one.evse.max_power_kw, one.evse.unit, one.limits(0).max_power_kw) == (
        22.0,
        RateUnit.W,
        44.0,
    )
    assert (two.evse.max_power_kw, two.evse.phases, two.evse.voltage_v) == (11.0, 1, 240.0)
    assert (two.evse.unit, two.evse.min_current_a, two.limits(0).max_power_kw) == (
        RateUnit.A,
        8.0,
        11.0,
    )


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("CS-1 depot-a", "line 2: expected STATION_ID SITE_ID PASSWORD [KEY=VALUE ...]"),
        ("CS/1 depot-a plain:x", "line 2: field 1 (station id) must be 1-100 of"),
        ("plain:SECRET depot-a plain:x", "line 2: field 1 (station id) must be 1-100 of"),
        ("CS-1 depot-a plain:x", "line 2: station CS-1 is on line 1 too"),
        ("CS-2 plain:SECRET evse_kw=11", "line 2: field 2 (site id) is none of the sites"),
        ("CS-2 depot-a SECRET", "line 2: field 3 (password) must start with plain: or scrypt:"),
        ("CS-2 depot-a plain:", "line 2: field 3 (password) is empty"),
        ("CS-2 depot-a scrypt:1:8:1:00:00", "line 2: field 3 (password hash): scrypt: N must"),
        ("CS-2 depot-a scrypt:SECRET", "line 2: field 3 (password hash): a password hash is"),
        ("CS-2 depot-a plain:x SECRET", "line 2: field 4 must be KEY=VALUE with KEY one of"),
        ("CS-2 depot-a plain:x colour=red", "line 2: field 4 must be KEY=VALUE"),
        ("CS-2 depot-a plain:x evse_kw=SECRET", "line 2: evse_kw must be a number"),
        ("CS-2 depot-a plain:x evse_kw=inf", "line 2: evse_kw must be a finite number"),
        ("CS-2 depot-a plain:x evse_kw=-3", "line 2: max_power_kw must be positive"),
        ("CS-2 depot-a plain:x phases=2", "line 2: phases must be 1 or 3"),
        ("CS-2 depot-a plain:x unit=kW", "line 2: unit must be A or W"),
        ("CS-2 depot-a plain:x unit=A unit=W", "line 2: unit is given twice"),
    ],
)
def test_a_broken_line_is_refused_with_its_number_and_never_a_password(
    line: str, says: str
) -> None:
    with pytest.raises(StationsFileError) as refused:
        parse_stations(f"CS-1 depot-a plain:SECRET\n{line}\n", SITES, "stations")
    assert says in str(refused.value)
    assert "SECRET" not in str(refused.value)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(StationsFileError, match="stations: no stations"):
        parse_stations("# nothing yet\n", SITES, "stations")


def test_clear_passwords_must_not_be_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "stations"
    path.write_text(f"CS-1 depot-a {HASH.text()}\nCS-2 depot-a plain:pw\n")
    path.chmod(0o644)
    with pytest.raises(StationsFileError, match=r"line 2: a plain: password .* chmod 600"):
        load_stations(path, SITES)
    path.chmod(0o600)
    assert set(load_stations(path, SITES)) == {"CS-1", "CS-2"}
    hashed_only = tmp_path / "hashed"
    hashed_only.write_text(f"CS-1 depot-a {HASH.text()}\n")
    hashed_only.chmod(0o644)
    assert set(load_stations(hashed_only, SITES)) == {"CS-1"}
    with pytest.raises(StationsFileError, match="missing: No such file"):
        load_stations(tmp_path / "missing", SITES)


def test_a_hash_text_reads_back_and_bad_costs_are_refused() -> None:
    again = PasswordHash.parse(HASH.text())
    assert again == HASH and again.matches("s3cret")
    for text in ("scrypt:4194304:8:1:00ff00ff00ff00ff:" + "00" * 32, "scrypt:16:64:1:aa:bb"):
        with pytest.raises(PasswordHashError):
            PasswordHash.parse(text)
