"""The stations file of `idlefleet serve --ocpp-stations`: who may connect, where, how strong.

One station per line, fields separated by spaces; blank lines and lines starting with `#`
are skipped:

    STATION_ID SITE_ID PASSWORD [KEY=VALUE ...]

- STATION_ID: 1-100 of `A-Z a-z 0-9 _ . : @ -`, the id the station connects with
  (`ws[s]://host:port/ocpp/STATION_ID`) and its HTTP Basic user name;
- SITE_ID: one of the sites `serve` plans (`--sites`); the station's measurements are there;
- PASSWORD: `plain:TEXT` (no spaces) or `scrypt:N:r:p:SALT:KEY` from
  `python -m idlefleet.ocpp.passwords`. A file holding a `plain:` password must not be
  readable by group or others (chmod 600);
- KEY=VALUE, each at most once: `evse_kw` (each EVSE's maximum [kW], default 11), `phases`
  (1 or 3, default 3), `voltage_v` (phase to neutral [V], default 230), `unit` (`A` or `W`:
  what the station's profiles are written in, default A), `min_current_a` (the least current
  a car charges at [A], default 6), `station_kw` (the whole station's maximum [kW], for DR
  caps; default `evse_kw`).

A file that breaks a rule is refused whole, with the line and field; no message ever shows a
password (nor any field but a valid station id, in case a password sits in the wrong field).
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Collection
from pathlib import Path

from pydantic import SecretStr

from idlefleet.ocpp.passwords import Password as PasswordType
from idlefleet.ocpp.passwords import PasswordHash, PasswordHashError
from idlefleet.ocpp.profiles import EvseLimits, ProfileError, RateUnit
from idlefleet.ocpp.station import StationConfig

STATION_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,100}$")
KEYS = ("evse_kw", "phases", "voltage_v", "unit", "min_current_a", "station_kw")


class StationsFileError(ValueError):
    """A stations file that cannot be used; the message names the line and field, never a
    password."""


def load_stations(path: Path, site_ids: Collection[str]) -> dict[str, StationConfig]:
    """The stations of the file at `path`, by id; StationsFileError when it breaks a rule."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise StationsFileError(f"{path}: {why}") from exc
    stations, clear_line = parse_stations(text, site_ids, str(path))
    if clear_line is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StationsFileError(
            f"{path} line {clear_line}: a plain: password in a file group or others may "
            f"access; chmod 600 {path}, or use scrypt: hashes"
        )
    return stations


def parse_stations(
    text: str, site_ids: Collection[str], source: str = "stations file"
) -> tuple[dict[str, StationConfig], int | None]:
    """The stations `text` declares, and the first line with a `plain:` password (None: all
    hashed). StationsFileError for the first broken rule."""
    stations: dict[str, StationConfig] = {}
    lines: dict[str, int] = {}
    clear_line: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{source} line {number}"
        if len(fields) < 3:
            raise StationsFileError(
                f"{where}: expected STATION_ID SITE_ID PASSWORD [KEY=VALUE ...]"
            )
        station_id, site_id, secret, *options = fields
        if not STATION_ID.match(station_id) or _looks_like_password(station_id):
            raise StationsFileError(
                f"{where}: field 1 (station id) must be 1-100 of A-Z a-z 0-9 _ . : @ -"
            )
        if station_id in lines:
            raise StationsFileError(
                f"{where}: station {station_id} is on line {lines[station_id]} too"
            )
        if site_id not in site_ids:
            raise StationsFileError(
                f"{where}: field 2 (site id) is none of the sites served "
                f"({', '.join(sorted(site_ids))})"
            )
        password = _password(secret, where)
        if isinstance(password, SecretStr) and clear_line is None:
            clear_line = number
        stations[station_id] = _station(password, site_id, options, where)
        lines[station_id] = number
    if not stations:
        raise StationsFileError(f"{source}: no stations")
    return stations, clear_line


def _looks_like_password(field: str) -> bool:
    return field.startswith(("plain:", "scrypt:"))


def _password(field: str, where: str) -> PasswordType:
    if field.startswith("plain:"):
        if len(field) == len("plain:"):
            raise StationsFileError(f"{where}: field 3 (password) is empty")
        return SecretStr(field[len("plain:") :])
    if field.startswith("scrypt:"):
        try:
            return PasswordHash.parse(field)
        except PasswordHashError as exc:
            raise StationsFileError(f"{where}: field 3 (password hash): {exc}") from None
    raise StationsFileError(f"{where}: field 3 (password) must start with plain: or scrypt:")


def _station(password: PasswordType, site_id: str, options: list[str], where: str) -> StationConfig:
    values: dict[str, str] = {}
    for position, option in enumerate(options, start=4):
        key, sep, value = option.partition("=")
        if not sep or key not in KEYS:
            raise StationsFileError(
                f"{where}: field {position} must be KEY=VALUE with KEY one of {', '.join(KEYS)}"
            )
        if key in values:
            raise StationsFileError(f"{where}: {key} is given twice")
        values[key] = value
    try:
        evse = EvseLimits(
            max_power_kw=_number(values, "evse_kw", 11.0, where),
            phases=int(_number(values, "phases", 3, where)),
            voltage_v=_number(values, "voltage_v", 230.0, where),
            unit=_unit(values.get("unit", "A"), where),
            min_current_a=_number(values, "min_current_a", 6.0, where),
        )
        station = None
        if "station_kw" in values:
            station_kw = _number(values, "station_kw", evse.max_power_kw, where)
            station = EvseLimits(
                max_power_kw=station_kw,
                phases=evse.phases,
                voltage_v=evse.voltage_v,
                unit=evse.unit,
                min_current_a=evse.min_current_a,
            )
    except ProfileError as exc:
        raise StationsFileError(f"{where}: {exc}") from None
    return StationConfig(password=password, evse=evse, station=station, site_id=site_id)


def _number(values: dict[str, str], key: str, default: float, where: str) -> float:
    if key not in values:
        return default
    try:
        number = float(values[key])
    except ValueError:
        raise StationsFileError(f"{where}: {key} must be a number") from None
    if not math.isfinite(number):
        raise StationsFileError(f"{where}: {key} must be a finite number")
    if key == "phases" and number not in (1, 3):
        raise StationsFileError(f"{where}: phases must be 1 or 3")
    return number


def _unit(value: str, where: str) -> RateUnit:
    try:
        return RateUnit(value)
    except ValueError:
        raise StationsFileError(f"{where}: unit must be A or W") from None
