"""How many OpenADR events the VEN decides: a token bucket, so a flood is refused, not queued."""

from __future__ import annotations

import time
from collections.abc import Callable


class EventRate:
    """`burst` events at once, then `per_minute` on average; `take` says whether one may pass."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(
                f"an event rate needs per_minute > 0 and burst >= 1: {per_minute}, {burst}"
            )
        self.per_minute = per_minute
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last_s = clock()

    def take(self) -> bool:
        """True and one token spent if the bucket has one; False (nothing spent) otherwise."""
        now_s = self._clock()
        refill = (now_s - self._last_s) * self.per_minute / 60.0
        self._tokens = min(float(self.burst), self._tokens + refill)
        self._last_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
