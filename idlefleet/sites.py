"""Site configuration: where depots are, their grid connection and their PV array."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from forecasting.solar import PvSystemSpec

Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


class SiteConfig(BaseModel):
    """A depot where cars park: grid region, connection limit and PV."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:@-]*$")]
    region: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:@-]*$")]
    timezone: str
    latitude_deg: Annotated[float, Field(ge=-90, le=90)]
    longitude_deg: Annotated[float, Field(ge=-180, le=180)]
    altitude_m: float = 0.0
    grid_limit_kw: Positive
    pv_dc_peak_kw: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    pv_tilt_deg: Annotated[float, Field(ge=0, le=90)] = 20.0
    pv_azimuth_deg: Annotated[float, Field(ge=0, le=360)] = 180.0

    def pv_system(self) -> PvSystemSpec | None:
        """The site's PV array for pvlib, or None when it has none."""
        if self.pv_dc_peak_kw <= 0:
            return None
        return PvSystemSpec(
            latitude_deg=self.latitude_deg,
            longitude_deg=self.longitude_deg,
            altitude_m=self.altitude_m,
            dc_peak_kw=self.pv_dc_peak_kw,
            tilt_deg=self.pv_tilt_deg,
            azimuth_deg=self.pv_azimuth_deg,
            timezone=self.timezone,
        )


SITES_ADAPTER = TypeAdapter(list[SiteConfig])


class SitesFileError(ValueError):
    """A sites file that cannot be read; the message names the field."""


def load_sites(path: Path) -> list[SiteConfig]:
    """Read a JSON list of sites."""
    try:
        sites = SITES_ADAPTER.validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise SitesFileError(f"{path}: sites{where}: {first['msg']}") from exc
    except OSError as exc:
        raise SitesFileError(f"{path}: {exc.strerror}") from exc
    ids = [site.site_id for site in sites]
    if len(set(ids)) != len(ids):
        raise SitesFileError(f"{path}: duplicate site_id")
    return sites
