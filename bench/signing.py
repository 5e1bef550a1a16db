"""What proving every record costs: ingest throughput and dispatch latency, signed and not.

`idlefleet bench signing [--messages N --vehicles V --rounds R --assignments A]` runs, on the
embedded broker and in the same run:

- ingest: N telemetry reports of V cars read by the service's group reader (decode, check,
  fold into fleet state) from a topic of unsigned records (the baseline) and from one whose
  records each car authenticated to the service (a MAC under the key the car's and the
  service's X25519 keys agree: streams.signing), which the reader checks against the
  registry; and, to tell the two costs apart, the signed records read without checking them
  (what carrying the proof header costs kafka-python); best of R rounds each [msgs/s];
- dispatch: A assignments from send to the agents' reader, unsigned (the baseline) and
  signed with the service's Ed25519 key and verified by the agent; p50 and p99 [ms].

The last line reads `ingest_ratio=… carried_ratio=… dispatch_p50_ratio=… dispatch_p99_ratio=…`
(carried: signed records read unchecked, against the baseline); the target is ingest_ratio
>= 0.90 and dispatch ratios <= 1.10.
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from datetime import UTC, datetime

from bench.executor import measure_dispatch_latency
from bench.ingest import SITES, car_id, ingest_rate, publish_telemetry
from bench.setpoints import percentile
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics
from streams.identity import Authority, Identity
from streams.registry import Registry
from streams.signing import Authenticator, RecordSigner
from streams.validation import RecordRules

NOW = datetime(2020, 6, 1, tzinfo=UTC)


def fleet_registry(vehicles: int) -> tuple[Registry, Identity, list[Identity]]:
    """A registry with a service key and `vehicles` car keys, as the authority enrolled them."""
    registry = Registry(Authority.generate().public_key)
    service = Identity.generate("planner", "service")
    cars = [Identity.generate(car_id(index), "car") for index in range(vehicles)]
    for identity in (service, *cars):
        registry.apply(identity.enrollment(NOW))
    return registry, service, cars


def fresh_topics(bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"b{uuid.uuid4().hex[:8]}")
    ensure_topics(settings)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench signing", description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--assignments", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    registry, service, cars = fleet_registry(args.vehicles)
    checked = RecordRules(SITES, authenticator=Authenticator(registry, [service]))
    with EmbeddedBroker() as broker:
        plain, signed = (
            fresh_topics(broker.bootstrap_servers),
            fresh_topics(broker.bootstrap_servers),
        )
        publish_telemetry(plain, args.messages, args.vehicles)
        publish_telemetry(signed, args.messages, args.vehicles, RecordSigner(cars, registry))
        bare_rate, carried_rate, proven_rate = 0.0, 0.0, 0.0
        for round_index in range(args.rounds):  # interleaved: all see the same machine
            bare_round = ingest_rate(plain, args.messages)
            carried_round = ingest_rate(signed, args.messages)
            proven_round = ingest_rate(signed, args.messages, checked)
            print(
                f"round {round_index + 1}: ingest unsigned {bare_round:.0f}/s, signed but "
                f"unchecked {carried_round:.0f}/s, signed and checked {proven_round:.0f}/s"
            )
            bare_rate = max(bare_rate, bare_round)
            carried_rate = max(carried_rate, carried_round)
            proven_rate = max(proven_rate, proven_round)
        interval_s = args.interval_ms / 1000
        unsigned_s = measure_dispatch_latency(
            args.assignments, interval_s, settings=fresh_topics(broker.bootstrap_servers)
        )
        agent_side = RecordRules(authenticator=Authenticator(registry, cars[:1]))
        signed_s = measure_dispatch_latency(
            args.assignments,
            interval_s,
            signer=RecordSigner([service], registry),
            rules=agent_side,
            settings=fresh_topics(broker.bootstrap_servers),
        )
    p50 = statistics.median(unsigned_s), statistics.median(signed_s)
    p99 = percentile(unsigned_s, 0.99), percentile(signed_s, 0.99)
    print(
        f"dispatch unsigned p50 {p50[0] * 1000:.2f} ms p99 {p99[0] * 1000:.2f} ms; "
        f"signed p50 {p50[1] * 1000:.2f} ms p99 {p99[1] * 1000:.2f} ms"
    )
    lost = 2 * args.assignments - len(unsigned_s) - len(signed_s)
    print(
        f"ingest_ratio={proven_rate / bare_rate:.3f} carried_ratio={carried_rate / bare_rate:.3f} "
        f"dispatch_p50_ratio={p50[1] / p50[0]:.3f} "
        f"dispatch_p99_ratio={p99[1] / p99[0]:.3f} lost={lost}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
