"""Decoding telemetry with full validation against a bare `json.loads` of the same bytes.

`idlefleet bench serde [--messages N]` prints `decode_msgs_per_s=… json_msgs_per_s=… ratio=…`.
The baseline is measured in the same run on the same payloads.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import timedelta

from streams.catalog import EXAMPLES
from streams.messages import Telemetry
from streams.serde import decode, encode
from streams.topics import Stream


def payloads(count: int) -> list[bytes]:
    """`count` distinct telemetry payloads."""
    example = EXAMPLES[Stream.TELEMETRY]
    assert isinstance(example, Telemetry)
    return [
        encode(
            example.model_copy(
                update={
                    "vehicle_id": f"car-{i:07d}",
                    "event_time": example.event_time + timedelta(seconds=i),
                }
            )
        )
        for i in range(count)
    ]


def rate(function: Callable[[bytes], object], items: list[bytes]) -> float:
    """Items per second through `function` [1/s]."""
    started = time.perf_counter()
    for item in items:
        function(item)
    return len(items) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench serde", description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args(argv)
    items = payloads(args.messages)
    rate(json.loads, items[:1000])  # warm up both paths
    rate(lambda p: decode(Stream.TELEMETRY, p), items[:1000])
    baseline = rate(json.loads, items)
    ours = rate(lambda p: decode(Stream.TELEMETRY, p), items)
    print(
        f"decode_msgs_per_s={ours:.0f} json_msgs_per_s={baseline:.0f} ratio={ours / baseline:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
