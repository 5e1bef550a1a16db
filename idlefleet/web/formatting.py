"""Jinja filters: times in UTC and powers in kW as the pages print them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def utc_time(value: datetime | None) -> str:
    """`2026-01-01 12:00 UTC`, or `never` for None."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slot_time(value: datetime) -> str:
    """`12:15`: a slot's start in UTC."""
    return value.astimezone(UTC).strftime("%H:%M")


def kw(value: float | None) -> str:
    """`12.3`: a power [kW] to a tenth, or `—` when unknown."""
    return "—" if value is None else f"{value:.1f}"


def kwh(value: float | None) -> str:
    """`12.3`: an energy [kWh] to a tenth, or `—` when unknown."""
    return "—" if value is None else f"{value:.1f}"


FILTERS: dict[str, Callable[..., Any]] = {
    "utc_time": utc_time,
    "slot_time": slot_time,
    "kw": kw,
    "kwh": kwh,
}
