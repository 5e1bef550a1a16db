"""The grid regions idlefleet has real carbon-intensity data for (one source for every caller)."""

from __future__ import annotations

from typing import Final, Literal, get_args

#: Germany, Great Britain, France (ENTSO-E 2020, see `forecasting.carbon`).
Region = Literal["DE", "GB", "FR"]
REGIONS: Final[tuple[str, ...]] = get_args(Region)
#: Each region's civil time (IANA): the weekday and hour its demand follows.
REGION_TIMEZONES: Final[dict[str, str]] = {
    "DE": "Europe/Berlin",
    "GB": "Europe/London",
    "FR": "Europe/Paris",
}
