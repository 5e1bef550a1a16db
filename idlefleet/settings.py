"""One typed settings object for the service, read from flags and IDLEFLEET_* variables."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Server threads only health checks may use, so that they answer whatever else runs.
HEALTH_CHECK_WORKERS = 2


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


class ApiSettings(BaseSettings):
    """How the gRPC API bounds its callers. Environment: IDLEFLEET_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_", extra="forbid", frozen=True)

    grpc_max_workers: int = Field(16, ge=4, le=256, description="threads serving calls")
    grpc_max_concurrent_rpcs: int = Field(
        64, gt=0, description="calls in flight; one more ends RESOURCE_EXHAUSTED at once"
    )
    grpc_max_streams: int = Field(
        8,
        gt=0,
        description="long-lived streams (reflection, plan and health watches) open at once",
    )
    grpc_reflection: bool = Field(False, description="serve reflection to callers with a token")
    grpc_insecure_off_loopback: bool = Field(
        False, description="allow plaintext on an address other than loopback"
    )
    what_if_max_time_limit_s: float = Field(30.0, gt=0, description="largest what-if limit [s]")
    what_if_max_vehicles: int = Field(1000, gt=0, description="largest what-if fleet [count]")
    what_if_max_slots: int = Field(192, gt=0, description="longest what-if horizon [slots]")
    what_if_max_jobs: int = Field(200, gt=0, description="most what-if jobs [count]")
    solves_max_waiting: int = Field(
        4, ge=0, description="API solves queued behind the running one; more: RESOURCE_EXHAUSTED"
    )
    dr_decision_deadline_s: float = Field(
        60.0, gt=0, description="a DR decision not made by then is UNAVAILABLE [s]"
    )

    @model_validator(mode="after")
    def _streams_leave_workers(self) -> Self:
        if self.grpc_max_streams > self.grpc_max_workers - HEALTH_CHECK_WORKERS - 1:
            raise ValueError(
                "grpc_max_streams must leave a worker for short calls and "
                f"{HEALTH_CHECK_WORKERS} for health checks (below grpc_max_workers - "
                f"{HEALTH_CHECK_WORKERS})"
            )
        return self


class _FeedSettings(BaseSettings):
    """How `idlefleet serve` polls a live carbon-intensity feed (`idlefleet.gridfeeds`)."""

    url: str
    regions: dict[str, str] = Field(
        default_factory=dict,
        description="our region -> the feed's region or zone (JSON); default: the same code",
    )
    poll_s: float = Field(300.0, gt=0, allow_inf_nan=False, description="poll interval [s]")
    timeout_s: float = Field(10.0, gt=0, allow_inf_nan=False, description="per request [s]")
    retry_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="first retry after a failure [s]"
    )
    max_backoff_s: float = Field(
        1800.0, gt=0, allow_inf_nan=False, description="retries back off up to this [s]"
    )

    def feed_region(self, region: str) -> str:
        """The feed's name for our `region`."""
        return self.regions.get(region, region)


class WattTimeSettings(_FeedSettings):
    """WattTime API v3: a bearer token from `/login` (HTTP basic auth), then
    `/v3/forecast?signal_type=co2_aoer` (average intensity). Environment:
    IDLEFLEET_WATTTIME_<NAME>; polled when USERNAME and PASSWORD are set."""

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_WATTTIME_", extra="forbid", frozen=True)

    url: str = "https://api.watttime.org"
    username: str | None = None
    password: SecretStr | None = None

    @property
    def configured(self) -> bool:
        return bool(self.username) and self.password is not None


class ElectricityMapsSettings(_FeedSettings):
    """Electricity Maps API v3: `/v3/carbon-intensity/forecast?zone=…` with an `auth-token`
    header. Environment: IDLEFLEET_ELECTRICITYMAPS_<NAME>; polled when API_KEY is set."""

    model_config = SettingsConfigDict(
        env_prefix="IDLEFLEET_ELECTRICITYMAPS_", extra="forbid", frozen=True
    )

    url: str = "https://api.electricitymap.org"
    api_key: SecretStr | None = None
    poll_s: float = Field(900.0, gt=0, allow_inf_nan=False, description="poll interval [s]")

    @property
    def configured(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())
