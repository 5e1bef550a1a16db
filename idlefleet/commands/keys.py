"""`idlefleet keys`: identities and the fleet registry.

keys authority --out FILE              make the fleet authority's key; print its public key
keys new --principal P --role R        make an identity (on the car); print its enrollment
keys enroll --authority-key FILE REQ   the operator signs and publishes an enrollment
keys revoke --authority-key FILE ID    the operator revokes a key id
keys list                              the registry as the authority signed it
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import state_dir


def register(commands: Any) -> None:
    parser = commands.add_parser("keys", help="identities and the fleet registry")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    authority = actions.add_parser("authority", help="make the fleet authority's key")
    authority.add_argument("--out", type=Path, required=True, help="private key file (0600)")
    authority.set_defaults(handler=make_authority)

    new = actions.add_parser("new", help="make an identity here; print its enrollment request")
    new.add_argument("--principal", required=True, help="a car id, a service or adapter name")
    new.add_argument("--role", required=True, choices=["car", "service", "adapter"])
    new.add_argument("--out", type=Path, help="identity file (default: <state dir>/<P>.key)")
    new.set_defaults(handler=make_identity)

    for name, help_text in (
        ("enroll", "sign and publish enrollment requests (files, or - for stdin)"),
        ("revoke", "revoke key ids"),
        ("list", "print the registry"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument(
            "--bootstrap-servers",
            default=os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
            required=not os.environ.get("IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS"),
            help="Kafka HOST:PORT (or IDLEFLEET_KAFKA_BOOTSTRAP_SERVERS)",
        )
        action.add_argument("--topic-prefix", default="idlefleet")
        action.add_argument(
            "--authority-key",
            type=Path,
            required=name != "list",
            help="the fleet authority's private key file",
        )
        if name == "list":
            action.add_argument(
                "--authority-public-key",
                default=os.environ.get("IDLEFLEET_AUTHORITY_PUBLIC_KEY"),
                help="hex (or IDLEFLEET_AUTHORITY_PUBLIC_KEY), instead of --authority-key",
            )
    actions.choices["enroll"].add_argument("requests", nargs="+", help="request files, - stdin")
    actions.choices["enroll"].set_defaults(handler=enroll_requests)
    actions.choices["revoke"].add_argument("key_ids", nargs="+", metavar="KEY_ID")
    actions.choices["revoke"].set_defaults(handler=revoke_keys)
    actions.choices["list"].set_defaults(handler=list_registry)


def make_authority(args: argparse.Namespace) -> int:
    from streams.identity import Authority

    authority = Authority.generate()
    try:
        authority.save(args.out)
    except FileExistsError:
        print(f"idlefleet keys: {args.out} exists; not overwritten", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(authority.public_key.hex())
    return 0


def make_identity(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from streams.identity import Identity

    path = args.out or state_dir() / f"{args.principal}.key"
    try:
        identity = Identity.generate(args.principal, args.role)
        request = identity.enrollment(datetime.now(UTC))  # validates the principal too
        identity.save(path)
    except FileExistsError:
        print(f"idlefleet keys: {path} exists; not overwritten", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValidationError as exc:
        print(f"idlefleet keys: --principal: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"identity written to {path}; send this request to the operator:", file=sys.stderr)
    print(request.model_dump_json())
    return 0


def enroll_requests(args: argparse.Namespace) -> int:
    from streams.errors import MessageError
    from streams.trust import enrollment_from_request, publish_enrollments

    authority = _authority(args)
    if authority is None:
        return EXIT_BAD_INPUT
    now = datetime.now(UTC)
    enrollments = []
    for source in args.requests:
        text = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        for line in filter(None, (line.strip() for line in text.splitlines())):
            try:
                enrollments.append(enrollment_from_request(line, now))
            except MessageError as exc:
                print(f"idlefleet keys: {source}: {exc.reason}", file=sys.stderr)
                return EXIT_BAD_INPUT
    publish_enrollments(_kafka(args), authority, enrollments)
    for enrollment in enrollments:
        print(f"enrolled {enrollment.role} {enrollment.principal} {enrollment.key_id}")
    return 0


def revoke_keys(args: argparse.Namespace) -> int:
    from streams.trust import Trust, publish_enrollments, revocation_of

    authority = _authority(args)
    if authority is None:
        return EXIT_BAD_INPUT
    kafka = _kafka(args)
    trust = Trust(kafka, authority.public_key).start()
    now = datetime.now(UTC)
    try:
        revoked = [revocation_of(trust.registry, key_id, now) for key_id in args.key_ids]
    except KeyError as exc:
        print(f"idlefleet keys: not enrolled: {exc.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        trust.stop()
    publish_enrollments(kafka, authority, revoked)
    for entry in revoked:
        print(f"revoked {entry.role} {entry.principal} {entry.key_id}")
    return 0


def list_registry(args: argparse.Namespace) -> int:
    from streams.trust import Trust

    if args.authority_key is not None:
        authority = _authority(args)
        if authority is None:
            return EXIT_BAD_INPUT
        public_key = authority.public_key
    elif args.authority_public_key:
        public_key = bytes.fromhex(args.authority_public_key)
    else:
        print("idlefleet keys: --authority-public-key or --authority-key", file=sys.stderr)
        return EXIT_BAD_INPUT
    trust = Trust(_kafka(args), public_key).start()
    try:
        for entry in trust.registry.entries():
            print(
                json.dumps(
                    {
                        "key_id": entry.key_id,
                        "principal": entry.principal,
                        "role": entry.role,
                        "enrolled_at": entry.enrolled_at.isoformat(),
                        "revoked_at": entry.revoked_at and entry.revoked_at.isoformat(),
                    }
                )
            )
    finally:
        trust.stop()
    return 0


def _authority(args: argparse.Namespace) -> Any:
    from streams.identity import Authority

    try:
        return Authority.load(args.authority_key)
    except (OSError, ValueError) as exc:
        print(f"idlefleet keys: --authority-key: {exc}", file=sys.stderr)
        return None


def _kafka(args: argparse.Namespace) -> Any:
    from streams.clients import KafkaSettings

    return KafkaSettings(bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix)
