"""The live feed poller against a real HTTP server shaped like WattTime and Electricity Maps:
authentication, average intensity only, outages with backoff, health, and secrets kept out of
the logs."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from idlefleet.gridfeeds.clients import REDACTED, ElectricityMapsClient, WattTimeClient
from idlefleet.gridfeeds.poller import FeedPoller, FeedSource
from idlefleet.gridfeeds.runner import feed_sources
from idlefleet.settings import ElectricityMapsSettings, WattTimeSettings
from idlefleet.sim.clock import SteppedClock
from streams.errors import PublishError
from streams.messages import GridSignal
from tests.idlefleet.gridfeeds.feed_server import (
    API_KEY,
    ECHO_HEADERS,
    PASSWORD,
    USERNAME,
    Answer,
    FeedServer,
    electricitymaps_doc,
    json_answer,
    watttime_doc,
)

NOW = datetime(2026, 12, 5, 15, 7, tzinfo=UTC)
HOUR = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
LB_TO_G_PER_KWH = 0.45359237


@pytest.fixture
def server() -> Iterator[FeedServer]:
    running = FeedServer().start()
    yield running
    running.stop()


def watttime(server: FeedServer, **changes: object) -> WattTimeSettings:
    fields: dict[str, object] = {
        "url": server.url,
        "username": USERNAME,
        "password": PASSWORD,
        "timeout_s": 5.0,
        **changes,
    }
    return WattTimeSettings(**fields)  # type: ignore[arg-type]


def electricitymaps(server: FeedServer, **changes: object) -> ElectricityMapsSettings:
    fields: dict[str, object] = {"url": server.url, "api_key": API_KEY, "timeout_s": 5.0}
    return ElectricityMapsSettings(**{**fields, **changes})  # type: ignore[arg-type]


def source_of(settings: WattTimeSettings | ElectricityMapsSettings) -> FeedSource:
    if isinstance(settings, WattTimeSettings):
        [source] = feed_sources(["DE"], watttime=settings)
    else:
        [source] = feed_sources(["DE"], electricitymaps=settings)
    return source


def poller_of(
    source: FeedSource, published: list[GridSignal], publish: Callable[[GridSignal], object] | None
) -> FeedPoller:
    return FeedPoller(
        [source], publish or published.append, 15, 24.0, SteppedClock(NOW), jitter_frac=0.0
    )


@pytest.fixture
def published() -> list[GridSignal]:
    return []


def test_watttime_logs_in_and_publishes_average_intensity_on_the_planners_slots(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.default = json_answer(watttime_doc(HOUR, hours=2))
    source = source_of(watttime(server))
    poller = poller_of(source, published, None)
    assert poller.poll(source)
    [signal] = published
    assert (signal.region, signal.kind, signal.slot_minutes) == ("DE", "forecast", 15)
    assert signal.start == HOUR and signal.issued_at == NOW
    assert len(signal.intensity_g_per_kwh) == 8
    # 5-minute points 1000, 1001, 1002 lbs/MWh: the slot mean, in g/kWh.
    assert signal.intensity_g_per_kwh[0] == pytest.approx(1001.0 * LB_TO_G_PER_KWH)
    assert signal.source == "live watttime forecast for DE (average intensity)"
    login, forecast = server.requests
    expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert login.path == "/login" and login.headers["authorization"] == f"Basic {expected}"
    assert forecast.query["region"] == ["DE"]
    assert forecast.query["signal_type"] == ["co2_aoer"]
    assert forecast.headers["authorization"] == f"Bearer {server.token}"
    [health] = poller.health()
    assert health.healthy and health.last_success == NOW and health.last_error is None
    assert poller.notes() == []


def test_electricity_maps_sends_its_key_in_the_auth_token_header(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.default = json_answer(electricitymaps_doc(HOUR, hours=3))
    source = source_of(electricitymaps(server, regions={"DE": "DE-LU"}))
    assert source.feed_region == "DE-LU"
    assert poller_of(source, published, None).poll(source)
    [signal] = published
    assert signal.region == "DE"  # our name, whatever the feed calls it
    assert signal.intensity_g_per_kwh == [300.0] * 4 + [310.0] * 4 + [320.0] * 4
    [request] = server.requests
    assert request.headers["auth-token"] == API_KEY
    assert request.query["zone"] == ["DE-LU"]


def test_an_expired_token_is_renewed(server: FeedServer, published: list[GridSignal]) -> None:
    server.default = json_answer(watttime_doc(HOUR, hours=1))
    source = source_of(watttime(server))
    poller = poller_of(source, published, None)
    assert poller.poll(source)
    server.rotate_token()
    assert poller.poll(source)
    assert server.logins == 2 and len(published) == 2


def test_a_marginal_only_feed_is_refused_with_a_clear_message(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.default = json_answer(watttime_doc(HOUR, hours=2, signal="co2_moer"))
    source = source_of(watttime(server))
    poller = poller_of(source, published, None)
    assert not poller.poll(source)
    assert published == []
    [health] = poller.health()
    assert health.last_error is not None
    assert "marginal intensity" in health.last_error
    assert "plans only on average intensity" in health.last_error


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(503, b"down for maintenance"), "watttime forecast: HTTP 503"),
        (Answer(500, b""), "watttime forecast: HTTP 500"),
        (json_answer({"error": "slow down"}, 429), "watttime forecast: HTTP 429"),
        (Answer(200, b'{"meta": {"signal_type": "co2_aoer", "units'), "unusable answer"),
        (json_answer({"meta": {}, "data": []}), "unusable answer"),
        (json_answer([1, 2, 3]), "unusable answer: watttime: expected a JSON object"),
        (Answer(200, b"\xff\xfe not json"), "unusable answer"),
        (None, "watttime forecast: cannot connect"),
    ],
    ids=["503", "500", "429", "cut-json", "no-points", "not-an-object", "not-utf8", "refused"],
)
def test_an_outage_is_a_failed_attempt_with_its_reason(
    server: FeedServer, published: list[GridSignal], answer: Answer | None, reason: str
) -> None:
    source = source_of(watttime(server, retry_s=2.0))
    poller = poller_of(source, published, None)
    if answer is None:
        server.default = json_answer(watttime_doc(HOUR, hours=1))
        assert poller.poll(source)  # logged in; then the port closes
        published.clear()
        server.stop()
    else:
        server.default = answer
    assert not poller.poll(source)
    assert published == []
    [health] = poller.health()
    assert health.last_error is not None and health.last_error.startswith(reason)
    assert health.failures == 1 and health.failing_since == NOW
    assert health.next_attempt_in_s == 2.0
    [note] = poller.notes()
    assert note.startswith("grid feed watttime for DE failing since 2026-12-05T15:07")


def test_a_429_waits_at_least_its_retry_after(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.default = json_answer({"error": "slow down"}, 429, **{"Retry-After": "120"})
    source = source_of(watttime(server, retry_s=2.0))
    poller = poller_of(source, published, None)
    assert not poller.poll(source)
    assert poller.health()[0].next_attempt_in_s == 120.0


def test_retries_back_off_up_to_the_cap_and_a_success_resets_them(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.default = Answer(503, b"")
    source = source_of(watttime(server, retry_s=1.0, max_backoff_s=5.0, poll_s=60.0))
    poller = poller_of(source, published, None)
    delays = []
    for _ in range(5):
        assert not poller.poll(source)
        delays.append(poller.health()[0].next_attempt_in_s)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    server.default = json_answer(watttime_doc(HOUR, hours=1))
    assert poller.poll(source)
    [health] = poller.health()
    assert (health.failures, health.failing_since, health.next_attempt_in_s) == (0, None, 60.0)
    assert health.last_error == "watttime forecast: HTTP 503"  # kept: the last error seen


def test_an_outage_is_logged_once_with_its_reason(
    server: FeedServer, published: list[GridSignal], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="idlefleet.gridfeeds")
    server.default = Answer(503, b"")
    source = source_of(watttime(server))
    poller = poller_of(source, published, None)
    for _ in range(4):
        poller.poll(source)
    server.stop()
    for _ in range(2):
        poller.poll(source)
    server.start()
    server.default = json_answer(watttime_doc(HOUR, hours=1))
    assert poller.poll(source)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert "grid feed watttime for DE unavailable: watttime forecast: HTTP 503" in messages[0]
    assert "unavailable: watttime forecast: cannot connect" in messages[1]
    assert "Connection refused" in messages[1]
    assert messages[2] == "grid feed watttime for DE is back after 6 failed attempt(s)"


def test_a_publish_failure_is_an_outage_too(
    server: FeedServer, published: list[GridSignal]
) -> None:
    def broker_away(signal: GridSignal) -> None:
        raise PublishError("the broker did not take the record")

    server.default = json_answer(electricitymaps_doc(HOUR, hours=2))
    source = source_of(electricitymaps(server))
    poller = poller_of(source, published, broker_away)
    assert not poller.poll(source)
    assert "the broker did not take the record" in (poller.health()[0].last_error or "")


def test_a_gap_ends_the_signal(server: FeedServer, published: list[GridSignal]) -> None:
    doc = electricitymaps_doc(HOUR, hours=6)
    del doc["forecast"][2:4]  # 17:00 and 18:00 missing: a 3-hour spacing
    server.default = json_answer(doc)
    source = source_of(electricitymaps(server))
    assert poller_of(source, published, None).poll(source)
    assert len(published[0].intensity_g_per_kwh) == 8  # 15:00 to 17:00


def test_credentials_never_reach_the_logs_or_the_health(
    server: FeedServer, published: list[GridSignal], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's debug lines too
    wrong = "wrong-pw-also-secret"
    secrets = [
        PASSWORD,
        wrong,
        API_KEY,
        base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
        base64.b64encode(f"{USERNAME}:{wrong}".encode()).decode(),
    ]
    bad = source_of(watttime(server, password=wrong))
    good = source_of(watttime(server))
    keyed = source_of(electricitymaps(server))
    server.default = ECHO_HEADERS  # a 400 quoting the request's headers
    reasons = []
    for source in (bad, good, keyed):
        poller = poller_of(source, published, None)
        assert not poller.poll(source)
        reasons += [poller.health()[0].last_error or "", *poller.notes()]
        secrets.append(server.token)
    assert any(REDACTED in reason for reason in reasons)
    shown = "\n".join([caplog.text, *reasons, repr(watttime(server)), repr(keyed)])
    leaked = [secret for secret in secrets if secret in shown]
    assert leaked == []


def test_the_poller_thread_rides_out_an_outage_and_recovers(
    server: FeedServer, published: list[GridSignal]
) -> None:
    server.stop()  # the port is closed from the start
    settings = electricitymaps(server, retry_s=0.05, max_backoff_s=0.2, poll_s=0.1)
    source = source_of(settings)
    poller = poller_of(source, published, None).start()
    try:
        wait_for(lambda: poller.health()[0].failures >= 3)
        assert published == []
        server.start()
        server.default = json_answer(electricitymaps_doc(HOUR, hours=4))
        wait_for(lambda: poller.health()[0].healthy and len(published) >= 2)
    finally:
        poller.stop()
    assert published[0].source == "live electricitymaps forecast for DE (average intensity)"


def test_sources_follow_the_credentials_and_the_region_names() -> None:
    assert feed_sources(["DE"], WattTimeSettings(), ElectricityMapsSettings()) == []
    wt = WattTimeSettings(username=USERNAME, password=PASSWORD, regions={"GB": "UK"})  # type: ignore[arg-type]
    sources = feed_sources(["GB", "DE", "GB"], watttime=wt)
    assert [(s.region, s.feed_region) for s in sources] == [("DE", "DE"), ("GB", "UK")]
    assert isinstance(sources[0].client, WattTimeClient)
    em = ElectricityMapsSettings(api_key=API_KEY)  # type: ignore[arg-type]
    assert isinstance(feed_sources(["FR"], electricitymaps=em)[0].client, ElectricityMapsClient)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLEFLEET_WATTTIME_USERNAME", USERNAME)
    monkeypatch.setenv("IDLEFLEET_WATTTIME_PASSWORD", PASSWORD)
    monkeypatch.setenv("IDLEFLEET_WATTTIME_REGIONS", '{"DE": "DE_AMPRION"}')
    monkeypatch.setenv("IDLEFLEET_ELECTRICITYMAPS_API_KEY", API_KEY)
    monkeypatch.setenv("IDLEFLEET_ELECTRICITYMAPS_POLL_S", "60")
    wt, em = WattTimeSettings(), ElectricityMapsSettings()
    assert wt.configured and wt.feed_region("DE") == "DE_AMPRION"
    assert em.configured and em.poll_s == 60.0
    assert PASSWORD not in repr(wt) and API_KEY not in repr(em)
    assert timedelta(seconds=wt.poll_s) == timedelta(minutes=5)
