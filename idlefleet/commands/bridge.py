"""`idlefleet bridge fleet-telemetry`: a car maker's telemetry on Kafka to measured car state.

Runs until SIGINT or SIGTERM, then finishes the records in hand, commits and exits 0. Bad
arguments exit 2 with a message naming what is wrong; what retries cannot mend (a record
that cannot be published, a registry that cannot be read, records compressed with a codec
not installed) exits 1, with nothing uncommitted lost.
See docs/bridges.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.credentials import credentials_from_args
from idlefleet.lifecycle import stop_on_signals

PROG = "idlefleet bridge fleet-telemetry"
#: The bridge's identity: `<identity dir>/fleet-telemetry-bridge.key`, role adapter.
PRINCIPAL = "fleet-telemetry-bridge"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bridge", help="turn car makers' own telemetry into measured car state for the planner"
    )
    sources = parser.add_subparsers(dest="bridge", required=True, metavar="SOURCE")
    tesla = sources.add_parser(
        "fleet-telemetry",
        help="Tesla fleet-telemetry records on Kafka (<namespace>_V)",
        description=(
            "Read the vehicle data Tesla's fleet-telemetry server writes to Kafka (topic "
            "<namespace>_V), find each car by its VIN in idlefleet's fleet registry, and "
            "publish what the car reports (state of charge, energy, charge limit, charging "
            "power, plugged in or not, and which depot it is parked at) for the planner. "
            "Records it cannot use (unreadable, a VIN not in the registry, values out of "
            "range, older than --max-age-minutes) go to idlefleet's dead-letter topic with "
            "the reason. Runs until Ctrl-C or SIGTERM. Setup: docs/bridges.md."
        ),
        epilog=(
            "example:\n  idlefleet bridge fleet-telemetry --namespace tesla \\\n"
            "    --bootstrap-servers kafka.depot.example:9092 \\\n"
            "    --authority-public-key 3b6a27bc...  --sites /etc/idlefleet/sites.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tesla.add_argument(
        "--namespace",
        required=True,
        help='the "namespace" in fleet-telemetry\'s config; records are read from <namespace>_V',
    )
    tesla.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka HOST:PORT[,HOST:PORT...] that fleet-telemetry writes to and the planner "
        "reads (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS; TLS and SASL: IDLEFLEET_KAFKA_*)",
    )
    tesla.add_argument("--topic-prefix", default="idlefleet", help="idlefleet's topics (idlefleet)")
    tesla.add_argument(
        "--group-id",
        help="Kafka consumer group (default <topic prefix>.bridge.<namespace>_V); copies run "
        "with the same group share the work",
    )
    tesla.add_argument("--sites", help="JSON list of sites (default: the shipped example)")
    tesla.add_argument(
        "--geofence-radius-m",
        type=float,
        default=250.0,
        help="a car this close to a site's coordinates is at that site [m] (250)",
    )
    tesla.add_argument(
        "--max-age-minutes",
        type=float,
        default=60.0,
        help="records measured longer ago are dead-lettered as stale [min] (60)",
    )
    add_identity_arguments(tesla)
    tesla.set_defaults(handler=run_fleet_telemetry)


def _refuse(reason: object) -> int:
    print(f"{PROG}: {reason}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_fleet_telemetry(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from kafka.errors import KafkaError

    from idlefleet.bridges.fleet_telemetry import (
        BridgeConfig,
        FleetTelemetryBridge,
        telemetry_topic,
    )
    from idlefleet.bridges.runner import (
        BridgeCounts,
        BridgeRunner,
        UnreadableSourceError,
        default_group_id,
        registry_vins,
    )
    from idlefleet.commands.serve import default_sites
    from idlefleet.sites import SitesFileError, load_sites
    from streams.clients import KafkaSettings, ensure_topics
    from streams.errors import PublishError
    from streams.topics import Stream

    if not args.bootstrap_servers:
        return _refuse(
            "--bootstrap-servers (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS) is required: the Kafka "
            "fleet-telemetry writes to"
        )
    try:
        topic = telemetry_topic(args.namespace)
        sites = load_sites(Path(args.sites)) if args.sites else default_sites()
        if not (math.isfinite(args.geofence_radius_m) and args.geofence_radius_m >= 0):
            raise ValueError(f"--geofence-radius-m must be 0 or more, not {args.geofence_radius_m}")
        if not (math.isfinite(args.max_age_minutes) and args.max_age_minutes > 0):
            raise ValueError(f"--max-age-minutes must be above 0, not {args.max_age_minutes}")
        config = BridgeConfig(
            geofence_radius_m=args.geofence_radius_m,
            max_age=timedelta(minutes=args.max_age_minutes),
        )
        credentials = credentials_from_args(args, [PRINCIPAL], "adapter", lab=False)
        kafka = KafkaSettings(
            bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix
        )
    except (SitesFileError, ValueError) as exc:  # CredentialsError and settings errors too
        return _refuse(exc)
    group_id = args.group_id or default_group_id(kafka.topic_prefix, topic)

    counts = BridgeCounts()
    with stop_on_signals() as stop:
        try:
            ensure_topics(kafka)
            trust = credentials.trust(kafka)
        except (KafkaError, TimeoutError) as exc:
            print(f"{PROG}: cannot use Kafka at {args.bootstrap_servers}: {exc}", file=sys.stderr)
            return 1
        publisher = trust.publisher()
        try:
            with registry_vins(kafka, trust.rules()) as vins:
                bridge = FleetTelemetryBridge(vins, sites, config)
                runner = BridgeRunner(kafka, topic, group_id, bridge, publisher)
                counts = runner.counts
                print(
                    f"bridging {topic} on {args.bootstrap_servers} (group {group_id}) to "
                    f"{kafka.topics.name(Stream.MEASURED_STATE)}; VINs in the fleet "
                    f"registry: {len(vins)}; sites: {len(sites)}",
                    file=sys.stderr,
                    flush=True,
                )
                runner.run(stop)
        except (PublishError, UnreadableSourceError, TimeoutError, KafkaError) as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        finally:
            publisher.close()
            trust.stop()
    print(
        f"stopped: {counts.measured} records bridged, {counts.dead_lettered} dead-lettered",
        file=sys.stderr,
    )
    return 0
