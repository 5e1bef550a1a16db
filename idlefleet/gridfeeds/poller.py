"""Polls live carbon-intensity feeds and publishes what they say as `GridSignal`s.

One thread polls every (feed, region) pair on its interval: fetch the forecast
(`clients`), read it as average intensity (`forecasting.feeds`; a marginal signal is refused
with the reason), put it on the planner's slots (`forecast_messages.feed_signal`) and hand it
to `publish` (in `idlefleet serve`: the service's signed publisher, to the grid-signals
topic, where the service reads it like any other signal: feed -> topic -> service).

Outages never stop the service. A failed attempt (connection refused, timeout, HTTP 429 or
5xx, refused credentials, malformed JSON, a marginal-only feed, the broker not taking the
signal) is logged once with its reason (again only when the reason changes), and retried
after `retry_s`, doubling up to `max_backoff_s` (at least a 429's Retry-After); a success
goes back to `poll_s`. Intervals are wall-clock seconds (rate limits are), timestamps the
service's clock. `health()` gives each pair's last success and last error; `notes()` the
degraded ones, for the service's health.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from forecasting.feeds import FeedError, MarginalIntensity, read_feed
from idlefleet.forecast_messages import feed_signal
from idlefleet.gridfeeds.clients import FeedClient, FeedUnavailableError
from optimizer import format_timestamp
from streams.messages import GridSignal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedHealth:
    """How one feed has answered for one region."""

    feed: str
    region: str
    feed_region: str
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    #: Failed attempts since the last success [count]; 0 when the last attempt succeeded.
    failures: int
    #: When the current run of failures began (None while healthy).
    failing_since: datetime | None
    #: Wall-clock seconds from the last attempt to the next one [s].
    next_attempt_in_s: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.failures == 0 and self.last_success is not None


@dataclass(frozen=True)
class FeedSource:
    """One feed polled for one of our regions, and how often."""

    client: FeedClient
    region: str
    feed_region: str
    poll_s: float
    retry_s: float
    max_backoff_s: float


class _Track:
    """A source's health and schedule (the poller thread writes, others read a copy)."""

    def __init__(self, source: FeedSource) -> None:
        self.source = source
        self.due_s = 0.0  # monotonic time of the next attempt
        self.health = FeedHealth(
            feed=source.client.name,
            region=source.region,
            feed_region=source.feed_region,
            last_success=None,
            last_error=None,
            last_error_at=None,
            failures=0,
            failing_since=None,
        )


class FeedPoller:
    """Polls `sources` in a thread and publishes each answer as a `GridSignal`."""

    def __init__(
        self,
        sources: Sequence[FeedSource],
        publish: Callable[[GridSignal], object],
        slot_minutes: int,
        horizon_hours: float,
        clock: Callable[[], datetime],
        jitter_frac: float = 0.1,
        seed: int | None = None,
    ) -> None:
        self._tracks = [_Track(source) for source in sources]
        self._publish = publish
        self._slot_minutes = slot_minutes
        self._horizon_hours = max(1, round(horizon_hours + 0.5))
        self._clock = clock
        self._jitter_frac = jitter_frac
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grid-feeds", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> FeedPoller:
        """Poll every source now, then on its schedule, in a thread."""
        if self._tracks:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for track in self._tracks:
            track.source.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            track = min(self._tracks, key=lambda t: t.due_s)
            if self._stop.wait(max(0.0, track.due_s - time.monotonic())):
                return
            self.poll(track.source)

    # -- one attempt --------------------------------------------------------------------
    def poll(self, source: FeedSource) -> bool:
        """Fetch, read and publish `source` once; True on success. Never raises: a failure
        is recorded, logged (once per reason) and scheduled for a retry with backoff."""
        track = next(t for t in self._tracks if t.source is source)
        retry_after: float | None = None
        try:
            signal = self._signal(source)
            self._publish(signal)
        except FeedUnavailableError as exc:
            reason, retry_after = exc.reason, exc.retry_after_s
        except (FeedError, ValueError) as exc:  # malformed JSON or points, too short
            reason = f"unusable answer: {exc}"
        except Exception as exc:  # the broker, or a bug: the service keeps running
            reason = f"{type(exc).__name__}: {exc}"
            log.debug("grid feed %s for %s", source.client.name, source.region, exc_info=True)
        else:
            self._succeeded(track, signal)
            return True
        self._failed(track, reason, retry_after)
        return False

    def _signal(self, source: FeedSource) -> GridSignal:
        name = source.client.name
        body = source.client.fetch(source.feed_region, self._horizon_hours)
        intensity = read_feed(name, body)
        if isinstance(intensity, MarginalIntensity):
            raise FeedUnavailableError(
                f"refused: {name} answers {source.feed_region} with marginal intensity "
                "(MOER); the planner plans only on average intensity"
                + (" (WattTime signal_type co2_aoer)" if name == "watttime" else "")
            )
        return feed_signal(
            intensity,
            source.region,
            self._slot_minutes,
            issued_at=self._clock(),
            source=f"live {name} forecast for {source.feed_region} (average intensity)",
        )

    def _succeeded(self, track: _Track, signal: GridSignal) -> None:
        before = track.health
        delay = self._jittered(track.source.poll_s)
        with self._lock:
            track.health = dataclasses.replace(
                before,
                last_success=self._clock(),
                failures=0,
                failing_since=None,
                next_attempt_in_s=delay,
            )
            track.due_s = time.monotonic() + delay
        slots = len(signal.intensity_g_per_kwh)
        end = signal.start + slots * timedelta(minutes=signal.slot_minutes)
        if before.failures:
            log.warning(
                "grid feed %s for %s is back after %d failed attempt(s)",
                before.feed,
                before.region,
                before.failures,
            )
        log.info(
            "grid feed %s for %s: published %d slots from %s (to %s)",
            before.feed,
            before.region,
            len(signal.intensity_g_per_kwh),
            format_timestamp(signal.start),
            format_timestamp(end),
        )

    def _failed(self, track: _Track, reason: str, retry_after_s: float | None) -> None:
        before = track.health
        source = track.source
        failures = before.failures + 1
        now = self._clock()
        delay = min(source.max_backoff_s, source.retry_s * 2 ** min(failures - 1, 30))
        delay = self._jittered(delay)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        with self._lock:
            track.health = dataclasses.replace(
                before,
                last_error=reason,
                last_error_at=now,
                failures=failures,
                failing_since=before.failing_since or now,
                next_attempt_in_s=delay,
            )
            track.due_s = time.monotonic() + delay
        if failures == 1 or reason != before.last_error:
            log.warning(
                "grid feed %s for %s unavailable: %s (retrying with backoff, next in %.3g s)",
                before.feed,
                before.region,
                reason,
                delay,
            )
        else:
            log.debug("grid feed %s for %s still unavailable", before.feed, before.region)

    def _jittered(self, delay_s: float) -> float:
        if not self._jitter_frac:
            return delay_s
        return delay_s * (1.0 + self._random.uniform(-self._jitter_frac, self._jitter_frac))

    # -- health -------------------------------------------------------------------------
    def health(self) -> list[FeedHealth]:
        """Each (feed, region)'s last success and last error."""
        with self._lock:
            return [track.health for track in self._tracks]

    def notes(self) -> list[str]:
        """The failing feeds, one sentence each (degraded: the service plans on what it has).
        A note changes only when the outage's reason does, not with every attempt."""
        notes = []
        for health in self.health():
            if health.failures:
                since = health.failing_since
                notes.append(
                    f"grid feed {health.feed} for {health.region} failing"
                    + (f" since {_stamp(since)}" if since else "")
                    + f": {health.last_error}"
                    + (
                        f"; last success {_stamp(health.last_success)}"
                        if health.last_success
                        else "; no success yet"
                    )
                )
        return notes


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
