"""One typed settings object for the service, read from flags and IDLEFLEET_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlannerSettings(BaseSettings):
    """How the service plans. Environment: IDLEFLEET_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_", extra="forbid", frozen=True)

    slot_minutes: int = Field(15, gt=0, le=240, description="slot length [min]")
    horizon_hours: float = Field(24.0, gt=0, le=168, description="planning look-ahead [h]")
    replan_every_slots: int = Field(4, gt=0, description="re-plan cadence without events")
    solver_time_limit_s: float = Field(20.0, gt=0)
    solver_mip_gap_frac: float = Field(0.005, ge=0, lt=1)
    planner_deadline_s: float = Field(
        300.0, gt=0, description="a plan not made by then falls back to immediate [s]"
    )
    carbon_price_per_tonne: float = Field(100.0, ge=0)
    heartbeat_timeout_s: float = Field(
        60.0, gt=0, description="a car whose agent is silent this long loses its work [s]"
    )
    dr_accept_beyond_horizon: bool = Field(
        False, description="accept DR caps the planner cannot judge yet (beyond its horizon)"
    )
    max_clock_skew_s: float = Field(
        300.0, gt=0, description="records dated later than now plus this are refused [s]"
    )
    group_id: str = "idlefleet-planner"
    dr_events_per_minute: float = Field(
        6.0, gt=0, description="OpenADR events the VEN decides per minute, sustained; more refused"
    )
    dr_event_burst: int = Field(
        10, ge=1, description="OpenADR events the VEN decides at once before the rate applies"
    )
