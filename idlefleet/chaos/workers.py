"""The processes `idlefleet chaos` kills: the planner service and the cars' agents.

Each runs as `python -m idlefleet.chaos.workers (service|agents) CONFIG.json` and is driven
line by line: JSON commands on stdin, JSON replies on stdout (one line each). Each reads its
identity files from the config's `identity_dir` and trusts the enrollments of the config's
`authority_public_key`, as in production.

service: `{"tick": ISO}` plans and dispatches that slot; `{"status": true}` answers what the
service holds once it has read everything published. It also serves the gRPC API (health
included) on a free port, announced in its first line.

agents: `{"time": ISO}` sets the cars' clock; `{"sync": true}` answers once every assignment
published so far is handled. The agents report what reached the car: a `charge` line per
set point the charger took and a `computed` line per slot the car computed in.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from executor.agent import AgentPool, VehicleAgent
from executor.runtime import OnnxRunner
from executor.service import AgentService
from idlefleet.sim.clock import SteppedClock
from idlefleet.sites import SiteConfig
from streams.clients import KafkaSettings
from streams.identity import Identity
from streams.messages import Assignment, Result
from streams.trust import Trust

if TYPE_CHECKING:
    from idlefleet.service.planner import PlannerService

_print_lock = threading.Lock()
#: The harness's pipe, kept apart from `sys.stdout`, which Pyomo redirects while it solves.
_replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)


def reply(document: dict[str, Any]) -> None:
    """One JSON line to the harness (thread-safe)."""
    with _print_lock:
        _replies.write(json.dumps(document) + "\n")
        _replies.flush()


def service_main(config: dict[str, Any]) -> None:
    from idlefleet.api.auth import TokenTable
    from idlefleet.api.runner import ApiConfig, serving_api
    from idlefleet.service.planner import PlannerService
    from idlefleet.settings import PlannerSettings

    kafka = KafkaSettings(**config["kafka"])
    settings = PlannerSettings(
        slot_minutes=config["slot_minutes"],
        horizon_hours=config["horizon_hours"],
        solver_time_limit_s=10,
        heartbeat_timeout_s=config["heartbeat_timeout_s"],
    )
    sites = [SiteConfig(**site) for site in config["sites"]]
    trust = trust_of(config, kafka, ["planner"])
    service = PlannerService(kafka, settings, sites, trust=trust).start()
    tokens = TokenTable.parse(f"{config['api_token']} viewer\n")
    api = ApiConfig(host="127.0.0.1", port=0, tokens=tokens, tls=None)
    publisher = trust.publisher()
    with serving_api(api, service, kafka, publisher=publisher) as port:
        reply({"ready": True, "grpc_port": port})
        for line in sys.stdin:
            command = json.loads(line)
            if "tick" in command:
                report = service.tick(datetime.fromisoformat(command["tick"]))
                reply({"ticked": command["tick"], "work_items": report.work_items})
            else:
                service.catch_up(timeout_s=60)
                reply(status_document(service))
    service.stop()
    publisher.close()


def trust_of(config: dict[str, Any], kafka: KafkaSettings, principals: list[str]) -> Trust:
    """The identities of `principals` from the config's directory, trusting its authority."""
    directory = Path(config["identity_dir"])
    identities = [Identity.load(directory / f"{principal}.key") for principal in principals]
    return Trust(kafka, bytes.fromhex(config["authority_public_key"]), identities)


def status_document(service: PlannerService) -> dict[str, Any]:
    """Accepted executions and progress of every job the service holds."""
    status = service.status()
    progress = {}
    for job_id, p in service.ledger_snapshot().progress.items():
        progress[job_id] = {
            "total": p.total,
            "accepted": p.accepted,
            "abandoned_shards": list(p.abandoned_shards),
        }
    return {
        "accepted": {job: [list(pair) for pair in pairs] for job, pairs in status.accepted.items()},
        "progress": progress,
        "results_accepted": status.results_accepted,
        "dead_letters": status.dead_letters,
    }


class ReportingCharger:
    """A car's charger link that tells the harness (the physical world) each set point."""

    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        reply({"charge": self.vehicle_id, "slot": slot_start.isoformat(), "kw": power_kw})


def agents_main(config: dict[str, Any], spool_dir: Path) -> None:
    kafka = KafkaSettings(**config["kafka"])
    clock = SteppedClock(datetime.fromisoformat(config["now"]))
    runner = OnnxRunner(intra_op_threads=1)
    pool = AgentPool(
        VehicleAgent(v, runner, ReportingCharger(v), config["compute_kw"], clock)
        for v in config["vehicles"]
    )

    def computed(assignment: Assignment, results: list[Result]) -> None:
        if any(result.status == "done" for result in results):
            reply({"computed": assignment.vehicle_id, "slot": assignment.slot_start.isoformat()})

    agents = AgentService(
        kafka,
        pool,
        spool_dir=spool_dir,
        heartbeat_interval_s=0.5,
        clock=clock,
        on_handled=computed,
        trust=trust_of(config, kafka, config["vehicles"]),
    ).start()
    reply({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        if "time" in command:
            clock.now = datetime.fromisoformat(command["time"])
            reply({"time": command["time"]})
        else:
            reply({"synced": agents.wait_idle(timeout_s=120)})
    agents.stop()


def main() -> None:
    role, config_path = sys.argv[1:3]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    faulthandler.register(signal.SIGUSR1)  # the harness asks a silent worker for its stacks
    config = json.loads(Path(config_path).read_text())
    # A restarted agents process resends the results the killed one spooled.
    spool_dir = Path(config_path).parent / "agents-spool"
    mains: dict[str, Callable[[dict[str, Any]], None]] = {
        "service": service_main,
        "agents": partial(agents_main, spool_dir=spool_dir),
    }
    mains[role](config)


if __name__ == "__main__":
    main()
