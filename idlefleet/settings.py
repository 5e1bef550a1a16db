"""One typed settings object for the service, read from flags and IDLEFLEET_* variables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # obstore is not installed on cars, which read these settings too
    from executor.objects import StoreConfig

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
    compensation_per_kwh: float | None = Field(
        None,
        ge=0,
        description="paid to owners per kWh of battery energy their cars' accepted work used "
        "[currency/kWh]; None: no rate is set, owners' statements show none",
    )
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


class StoreSettings(BaseSettings):
    """Where job data (models, input shards, outputs) lives: an S3-compatible store.
    Environment: IDLEFLEET_STORE_<NAME>; secrets are never logged.

    No `url`: no store is configured (`idlefleet.store.store_or_embedded` then starts the
    embedded one). No `endpoint`: AWS S3. Credentials left empty come from the standard AWS
    environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, web
    identity, container or instance credentials).
    """

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_STORE_", extra="forbid", frozen=True)

    url: str | None = Field(None, description="s3://bucket[/prefix]: where job data goes")
    endpoint: str | None = Field(None, description="http(s)://host[:port]; empty: AWS S3")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None

    @field_validator("url", "endpoint", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"{value!r} is not an s3://bucket[/prefix] URL")
        return value.rstrip("/")

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{value!r} is not an http(s)://host[:port] URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _endpoint_needs_url(self) -> Self:
        if self.endpoint is not None and self.url is None:
            raise ValueError("a store endpoint is set but no url: name the bucket (s3://bucket)")
        return self

    @property
    def bucket(self) -> str | None:
        """The bucket `url` names (None: no store configured)."""
        return None if self.url is None else urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The key prefix `url` names, without slashes at its ends ('' for a whole bucket)."""
        return "" if self.url is None else urlsplit(self.url).path.strip("/")

    def store_config(self) -> StoreConfig:
        """The `executor.objects.StoreConfig` these settings describe (holds the secrets)."""
        from executor.objects import StoreConfig

        return StoreConfig(
            endpoint_url=self.endpoint,
            region=self.region,
            access_key_id=_reveal(self.access_key_id),
            secret_access_key=_reveal(self.secret_access_key),
        )


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


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


class OcppSettings(BaseSettings):
    """The OCPP central system of `idlefleet serve` (`idlefleet.ocpp`). Environment:
    IDLEFLEET_OCPP_<NAME>; the `--ocpp-*` flags override port and host."""

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_OCPP_", extra="forbid", frozen=True)

    port: int = Field(0, ge=0, le=65535, description="where stations connect; 0: no OCPP")
    host: str = Field("0.0.0.0", min_length=1, description="address stations connect to")
    heartbeat_s: int = Field(300, gt=0, le=86_400, description="heartbeat stations are told [s]")
    response_timeout_s: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="how long a station has to answer [s]"
    )
    tolerance_kw: float = Field(
        0.5, ge=0, allow_inf_nan=False, description="metered power allowed over a limit [kW]"
    )
    tolerance_frac: float = Field(
        0.05, ge=0, lt=1, description="metered power allowed over a limit [share of it]"
    )
    violation_samples: int = Field(
        3, ge=1, le=1000, description="samples over a limit in a row: uncontrollable [count]"
    )
    poll_s: float = Field(
        0.5,
        gt=0,
        le=60,
        allow_inf_nan=False,
        description="how often new plans and DR caps are looked for [s]",
    )
