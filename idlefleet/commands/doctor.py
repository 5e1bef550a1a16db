"""`idlefleet doctor`: is everything this machine needs reachable and sound? One line per check,
OK, WARN or FAIL, with what to do about it; exit 1 when anything FAILs.

The checks are `CHECKS`, a tuple of small functions `(Checkup) -> Finding`: add one there.
Each runs in a thread of its own and counts as FAIL if it has not answered within its
timeout, so doctor never hangs. A check that needs an earlier one (the token needs the API)
is not run when that one failed, and says so.

Clock skew is compared with the API's clock (`FleetStatus.as_of`): Kafka gives clients no
broker clock to compare with (record timestamps are the producer's own unless a topic appends
them, which tansu does not do), so without the API there is no remote time to check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idlefleet.client.connection import (
    Connection,
    ConnectionConfigError,
    add_connection_arguments,
    find_token,
    lab_token_path,
)
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.credentials import state_dir
from idlefleet.queries.health import Level

if TYPE_CHECKING:
    from idlefleet.client.fleet import FleetClient

EXIT_FAILED = 1


@dataclass(frozen=True)
class Finding:
    """What a check found, and (unless OK) what to do about it."""

    level: Level
    summary: str
    fix: str = ""


@dataclass
class Checkup:
    """What the checks share: the options, and the levels of the checks run so far."""

    args: argparse.Namespace
    levels: dict[str, Level] = field(default_factory=dict)

    def failed(self, name: str) -> bool:
        return self.levels.get(name) is Level.FAIL

    def client(self) -> FleetClient:
        """A client the options configure; ConnectionConfigError when they do not fit."""
        from idlefleet.client.fleet import FleetClient

        return FleetClient.over(Connection.from_args(self.args))

    def kafka(self) -> Any:
        """KafkaSettings from the options and IDLEFLEET_KAFKA_*, or None without a broker."""
        from streams.clients import KafkaSettings

        if not self.args.bootstrap_servers:
            return None
        prefix = {"topic_prefix": self.args.topic_prefix} if self.args.topic_prefix else {}
        return KafkaSettings(bootstrap_servers=self.args.bootstrap_servers, **prefix)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Checkup], Finding]
    timeout_s: float
    needs: tuple[str, ...] = ()  # checks that must not have failed


# --- the checks ------------------------------------------------------------------------------


def check_kafka(checkup: Checkup) -> Finding:
    """The broker answers and every idlefleet topic exists."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError
    from pydantic import ValidationError

    from streams.broker import broker_answers
    from streams.topics import STREAM_SPECS

    try:
        kafka = checkup.kafka()
    except ValidationError as exc:
        reason = exc.errors(include_url=False)[0]
        field_name = ".".join(map(str, reason["loc"]))
        fix = "fix IDLEFLEET_KAFKA_* in the environment"
        return Finding(Level.FAIL, f"Kafka settings: {field_name}: {reason['msg']}", fix)
    if kafka is None:
        fix = "give --bootstrap-servers HOST:PORT or set IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"
        return Finding(Level.WARN, "no broker given: not checked", fix)
    servers = kafka.bootstrap_servers
    if kafka.security_protocol == "PLAINTEXT" and not broker_answers(servers, 3.0):
        return Finding(
            Level.FAIL,
            f"no Kafka broker answers at {servers}",
            "start it (`idlefleet broker` or your Kafka cluster), or fix --bootstrap-servers",
        )
    try:
        admin = KafkaAdminClient(**kafka.common_config(), request_timeout_ms=5000)
        try:
            present = set(admin.list_topics())
        finally:
            admin.close()
    except KafkaError as exc:
        return Finding(
            Level.FAIL,
            f"cannot list the topics on {servers}: {exc}",
            "check IDLEFLEET_KAFKA_SECURITY_PROTOCOL and the SASL and SSL settings",
        )
    wanted = [kafka.topics.name(stream) for stream in STREAM_SPECS]
    missing = [name for name in wanted if name not in present]
    if missing:
        return Finding(
            Level.FAIL,
            f"{len(missing)} of {len(wanted)} topics missing on {servers}: {', '.join(missing)}",
            "`idlefleet serve --bootstrap-servers ...` creates them; or fix --topic-prefix",
        )
    return Finding(
        Level.OK, f"broker {servers} answers; all {len(wanted)} {kafka.topic_prefix}.* topics exist"
    )


def check_api(checkup: Checkup) -> Finding:
    """Something serves the API at the target, and its health is SERVING."""
    from idlefleet.client.fleet import FleetError

    try:
        client = checkup.client()
    except ConnectionConfigError as exc:
        return Finding(Level.FAIL, str(exc), "fix the connection options")
    with client:
        where = f"{client.connection.target} ({'TLS' if client.connection.secure else 'plaintext'})"
        try:
            status = client.health()
        except FleetError as exc:
            return Finding(
                Level.FAIL,
                f"the API does not answer at {where}: {exc.code}: {exc.details}",
                "start `idlefleet serve --grpc-port PORT --tokens FILE`, or fix --target "
                "(IDLEFLEET_GRPC_TARGET); a TLS server needs TLS options (--tls-ca)",
            )
    if status != "SERVING":
        return Finding(
            Level.FAIL,
            f"the API at {where} answers {status}: its broker or solver is down",
            "see the server's log; check the broker it uses",
        )
    return Finding(Level.OK, f"the API at {where} is SERVING")


def check_token(checkup: Checkup) -> Finding:
    """The token is known to the API and may read the fleet status (the viewer role)."""
    from idlefleet.client.fleet import FleetError

    found = find_token(checkup.args.token_file)
    if found is None:
        return Finding(
            Level.FAIL,
            "no token",
            f"give --token-file FILE or set IDLEFLEET_TOKEN (a lab `idlefleet serve` writes "
            f"{lab_token_path()})",
        )
    with checkup.client() as client:
        try:
            client.fleet_status()
        except FleetError as exc:
            fixes = {
                "UNAUTHENTICATED": "the server does not know this token: check it against the "
                "server's --tokens file",
                "PERMISSION_DENIED": "the token's role may not read the fleet: ask the operator "
                "for a viewer token or larger",
            }
            fix = fixes.get(exc.code, exc.hint or "see the server's log")
            return Finding(Level.FAIL, f"token from {found[1]}: {exc.code}: {exc.details}", fix)
    where = Path(found[1])
    if where.is_file() and where.stat().st_mode & 0o077:
        return Finding(
            Level.WARN,
            f"the token from {where} reads the fleet status, but others may read the file",
            f"chmod 600 {where}",
        )
    return Finding(Level.OK, f"the token from {found[1]} reads the fleet status")


def check_clock(checkup: Checkup) -> Finding:
    """This machine's clock against the API's (FleetStatus.as_of), within the records' limit."""
    from pydantic import ValidationError

    from idlefleet.settings import PlannerSettings

    try:
        limit_s = PlannerSettings().max_clock_skew_s
    except ValidationError as exc:
        return Finding(Level.WARN, f"planner settings: {exc.errors()[0]['msg']}", "fix IDLEFLEET_*")
    with checkup.client() as client:
        sent = datetime.now(UTC)
        status = client.fleet_status()
        received = datetime.now(UTC)
    uncertainty_s = (received - sent).total_seconds() / 2
    skew_s = (status.as_of - (sent + (received - sent) / 2)).total_seconds()
    measured = f"the API's clock is {skew_s:+.1f} s (±{uncertainty_s:.1f} s) from this machine's"
    if abs(skew_s) - uncertainty_s > limit_s:
        return Finding(
            Level.WARN,
            f"{measured}, beyond the {limit_s:g} s records may be ahead",
            "synchronise this machine's clock (NTP); a demo or chaos run plans on a simulated "
            "clock, which differs by design",
        )
    return Finding(Level.OK, f"{measured} (limit {limit_s:g} s)")


def check_keys(checkup: Checkup) -> Finding:
    """Identity files present, mode 0600, enrolled in the registry and not revoked."""
    from streams.identity import Identity

    args = checkup.args
    directory = args.identity_dir or state_dir()
    paths = [args.identity] if args.identity is not None else identity_files(directory)
    if not paths:
        return Finding(
            Level.WARN,
            f"no identity configured (none in {directory}): not checked",
            "give --identity FILE if this machine signs records (`idlefleet keys new` makes one)",
        )
    identities = []
    for path in paths:
        try:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                return Finding(
                    Level.FAIL,
                    f"{path}: group or others may read it (mode {mode:o})",
                    f"chmod 600 {path}",
                )
            identities.append(Identity.load(path))
        except (OSError, ValueError) as exc:
            return Finding(Level.FAIL, f"{path}: {exc}", "restore the file, or make a new one")
    names = ", ".join(f"{i.principal} {i.key_id}" for i in identities)
    try:
        public_key = _authority_public_key(args)
    except (OSError, ValueError) as exc:
        return Finding(Level.FAIL, f"authority key: {exc}", "fix --authority-public-key")
    if public_key is None:
        return Finding(
            Level.WARN,
            f"{names}: files sound; enrollment not checked: no authority public key",
            "give --authority-public-key HEX (or IDLEFLEET_AUTHORITY_PUBLIC_KEY)",
        )
    kafka = None if checkup.failed("kafka") else checkup.kafka()
    if kafka is None:
        return Finding(
            Level.WARN,
            f"{names}: files sound; enrollment not checked: no broker to read the registry from",
            "give --bootstrap-servers HOST:PORT of a broker that answers",
        )
    return _enrollment(kafka, public_key, identities)


def identity_files(directory: Path) -> list[Path]:
    """Identity files in `directory` (`<principal>.key`, not the lab authority's)."""
    return sorted(p for p in directory.glob("*.key") if p.name != "authority.key")


def _authority_public_key(args: argparse.Namespace) -> bytes | None:
    """--authority-public-key, else the public half of --authority-key or of the lab's."""
    from streams.identity import Authority

    if args.authority_public_key:
        key = bytes.fromhex(args.authority_public_key)
        if len(key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return key
    path = args.authority_key or state_dir() / "authority.key"
    return Authority.load(path).public_key if path.exists() else None


def _enrollment(kafka: Any, public_key: bytes, identities: list[Any]) -> Finding:
    from kafka.errors import KafkaError

    from streams.errors import StreamsError
    from streams.trust import Trust

    trust = Trust(kafka, public_key)
    try:
        trust.start(catch_up_timeout_s=10.0)
        entries = {identity: trust.registry.get(identity.key_id) for identity in identities}
    except (TimeoutError, StreamsError, KafkaError) as exc:
        return Finding(Level.FAIL, f"cannot read the registry: {exc}", "check the broker")
    finally:
        trust.stop()
    for identity, entry in entries.items():
        who = f"{identity.role} {identity.principal} {identity.key_id}"
        if entry is None:
            return Finding(
                Level.FAIL,
                f"{who} is not enrolled: its records are refused",
                "have the operator enroll it: `idlefleet keys enroll REQUEST` (the request "
                "`idlefleet keys new` printed)",
            )
        if entry.revoked_at is not None:
            return Finding(
                Level.FAIL,
                f"{who} was revoked at {entry.revoked_at.isoformat()}",
                "make a new identity (`idlefleet keys new`) and have it enrolled",
            )
    names = ", ".join(f"{i.principal} {i.key_id}" for i in identities)
    return Finding(Level.OK, f"{names}: mode 0600, enrolled and in force")


def check_solver(checkup: Checkup) -> Finding:
    """HiGHS plans a one-car scenario to optimality through the optimizer's MILP path."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        highs_version = version("highspy")
        version("pyomo")
    except PackageNotFoundError:
        return Finding(
            Level.WARN,
            "HiGHS (highspy) or Pyomo is not installed: nothing can be planned here",
            "pip install 'idlefleet[planner]' where the planner runs",
        )
    from idlefleet.api.health import solver_answers

    started = time.monotonic()
    solved = solver_answers()
    took_s = time.monotonic() - started
    if not solved:
        return Finding(
            Level.FAIL,
            f"HiGHS {highs_version} did not solve a one-car model to optimality",
            "reinstall highspy (pip install --force-reinstall highspy); -v logs the error",
        )
    return Finding(Level.OK, f"HiGHS {highs_version} solved a one-car model in {took_s:.1f} s")


def check_onnxruntime(checkup: Checkup) -> Finding:
    """onnxruntime's execution providers: which exist here, which a car agent asks for."""
    try:
        import onnxruntime
    except ImportError:
        return Finding(
            Level.WARN,
            "onnxruntime is not installed: no car agent can run here",
            "pip install 'idlefleet[agent]' on car agents",
        )
    from executor.runtime import choose_providers

    available = onnxruntime.get_available_providers()
    chosen = choose_providers(available)
    return Finding(
        Level.OK,
        f"onnxruntime {onnxruntime.__version__}: agents ask for {', '.join(chosen)} "
        f"(available: {', '.join(available)})",
    )


#: Every check, in the order run and printed. Add a check here.
def check_store(checkup: Checkup) -> Finding:
    """The job data store: an object written, read back, and fetched through a presigned URL
    as a car fetches its shards."""
    import secrets

    from pydantic import ValidationError

    from executor.errors import StoreError
    from executor.objects import ObjectStore
    from executor.transfer import download
    from idlefleet.store.lab import StoreNotConfiguredError, client_store_settings

    try:
        settings = client_store_settings()
    except StoreNotConfiguredError as exc:
        return Finding(Level.WARN, str(exc), "only submitters and the service need a store")
    except ValidationError as exc:
        return Finding(
            Level.FAIL, f"store settings: {exc.errors()[0]['msg']}", "fix IDLEFLEET_STORE_*"
        )
    store = ObjectStore(settings.store_config())
    probe = f"{settings.url}/doctor/probe-{secrets.token_hex(6)}"
    body = secrets.token_bytes(64)
    where = f"{settings.url} at {settings.store_config().where}"
    try:
        store.put(probe, body)
        try:
            if store.get(probe, 1024) != body:
                return Finding(Level.FAIL, f"{where} gave back other bytes", "check the store")
            url = store.presign_get(probe, timedelta(minutes=5))
            download(url, 1024, expected_sha256=hashlib.sha256(body).hexdigest(), tries=2)
        finally:
            store.delete(probe)
    except StoreError as exc:
        return Finding(
            Level.FAIL,
            f"{where}: {exc.reason}",
            "check IDLEFLEET_STORE_URL, IDLEFLEET_STORE_ENDPOINT and the store's credentials "
            "(a lab `idlefleet serve` leaves its store in the state directory)",
        )
    return Finding(Level.OK, f"{where} stores, returns and presigns objects")


CHECKS: tuple[Check, ...] = (
    Check("kafka", check_kafka, timeout_s=15.0),
    Check("api", check_api, timeout_s=15.0),
    Check("token", check_token, timeout_s=15.0, needs=("api",)),
    Check("clock", check_clock, timeout_s=15.0, needs=("api", "token")),
    Check("keys", check_keys, timeout_s=30.0),
    Check("solver", check_solver, timeout_s=60.0),
    Check("onnxruntime", check_onnxruntime, timeout_s=30.0),
    Check("store", check_store, timeout_s=30.0),
)


# --- running them ----------------------------------------------------------------------------


def run_check(check: Check, checkup: Checkup) -> Finding:
    """`check` in a thread of its own: FAIL when it raises or has not answered in time."""
    failed = [name for name in check.needs if checkup.failed(name)]
    if failed:
        return Finding(Level.WARN, f"not checked: {', '.join(failed)} failed")
    answer: list[Finding] = []

    def run() -> None:
        try:
            answer.append(check.run(checkup))
        except Exception as exc:  # a check's own bug, or an error it did not foresee
            answer.append(Finding(Level.FAIL, f"{type(exc).__name__}: {exc}", "run with -v"))

    thread = threading.Thread(target=run, name=f"doctor-{check.name}", daemon=True)
    thread.start()
    thread.join(check.timeout_s)
    if not answer:
        return Finding(
            Level.FAIL, f"no answer within {check.timeout_s:g} s", "run with -v to see where"
        )
    return answer[0]


def line(name: str, finding: Finding) -> str:
    fix = f" -> fix: {finding.fix}" if finding.fix and finding.level is not Level.OK else ""
    return f"{finding.level.value:<4}  {name:<11}  {finding.summary}{fix}"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the broker, the API and token, keys, solver, onnxruntime and clock",
        description="Check what this machine needs, one line per check (OK, WARN or FAIL) "
        "with what to do; exit 1 when anything FAILs. Checks: "
        + ", ".join(check.name for check in CHECKS)
        + ".",
        epilog="examples:\n"
        "  idlefleet doctor --bootstrap-servers 127.0.0.1:9092 --target 127.0.0.1:50051\n"
        "  idlefleet doctor --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
        help="Kafka HOST:PORT (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument("--topic-prefix", help="topic prefix (default: idlefleet)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    add_connection_arguments(parser)
    add_identity_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    checkup = Checkup(args)
    findings: list[tuple[str, Finding]] = []
    for check in CHECKS:
        finding = run_check(check, checkup)
        checkup.levels[check.name] = finding.level
        findings.append((check.name, finding))
        if not args.json:
            print(line(check.name, finding), flush=True)
    if args.json:
        rows = [{"check": name, **vars(f), "level": f.level.value} for name, f in findings]
        print(json.dumps(rows, indent=2))
    failed = sum(f.level is Level.FAIL for _, f in findings)
    return EXIT_FAILED if failed else 0
