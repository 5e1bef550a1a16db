"""Which live feeds `idlefleet serve` polls, and polling them beside the service.

A feed is polled when its credentials are set (`WattTimeSettings`,
`ElectricityMapsSettings`: IDLEFLEET_WATTTIME_USERNAME and _PASSWORD,
IDLEFLEET_ELECTRICITYMAPS_API_KEY), for every region of the service's sites, under the
feed's name for it (`..._REGIONS`, a JSON object; default: our code, e.g. DE). Both may run:
the newest signal of a region wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from idlefleet.gridfeeds.clients import ElectricityMapsClient, FeedClient, WattTimeClient
from idlefleet.gridfeeds.poller import FeedPoller, FeedSource
from idlefleet.settings import ElectricityMapsSettings, WattTimeSettings
from streams.messages import GridSignal


def feed_sources(
    regions: Sequence[str],
    watttime: WattTimeSettings | None = None,
    electricitymaps: ElectricityMapsSettings | None = None,
) -> list[FeedSource]:
    """A source per configured feed and region (none without credentials)."""
    sources: list[FeedSource] = []
    configured: list[tuple[FeedClient, WattTimeSettings | ElectricityMapsSettings]] = []
    if watttime is not None and watttime.configured:
        configured.append((WattTimeClient(watttime), watttime))
    if electricitymaps is not None and electricitymaps.configured:
        configured.append((ElectricityMapsClient(electricitymaps), electricitymaps))
    for client, settings in configured:
        for region in sorted(set(regions)):
            sources.append(
                FeedSource(
                    client=client,
                    region=region,
                    feed_region=settings.feed_region(region),
                    poll_s=settings.poll_s,
                    retry_s=settings.retry_s,
                    max_backoff_s=settings.max_backoff_s,
                )
            )
    return sources


@contextmanager
def polling_feeds(
    sources: Sequence[FeedSource],
    publish: Callable[[GridSignal], object],
    slot_minutes: int,
    horizon_hours: float,
    clock: Callable[[], datetime],
) -> Iterator[FeedPoller]:
    """The poller running while the block runs (doing nothing without sources)."""
    poller = FeedPoller(sources, publish, slot_minutes, horizon_hours, clock).start()
    try:
        yield poller
    finally:
        poller.stop()
