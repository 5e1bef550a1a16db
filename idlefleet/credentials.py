"""Where a command's keys come from: identity files, the authority, and a lab's own enrollment.

Every command that writes or reads records runs with a `streams.trust.Trust`:

- its identity file (`--identity`, default `<identity dir>/<principal>.key`; a car agent
  running several simulated cars has one per car), made there on first start; only its
  public half ever leaves the machine;
- the fleet authority's public key (`--authority-public-key HEX`): production, where an
  operator enrolls each key with `idlefleet keys enroll`;
- or the authority's private key (`--authority-key FILE`): a lab, where the command enrolls
  its own identity. With the embedded broker, `serve` and `demo` make a lab authority in the
  state directory, so one command still runs everything.

The state directory is `IDLEFLEET_STATE_DIR`, else `~/.local/state/idlefleet`.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.clients import KafkaSettings
from streams.identity import Authority, Identity, Role
from streams.trust import Trust, publish_enrollments

log = logging.getLogger(__name__)


class CredentialsError(ValueError):
    """The command cannot know whose keys to trust."""


def state_dir() -> Path:
    """Where identities and lab authorities live on this machine."""
    configured = os.environ.get("IDLEFLEET_STATE_DIR")
    return Path(configured) if configured else Path.home() / ".local" / "state" / "idlefleet"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("identity")
    group.add_argument(
        "--identity", type=Path, help="this process's identity file (made on first start)"
    )
    group.add_argument(
        "--identity-dir",
        type=Path,
        help="where identity files are kept, <principal>.key (default: the state directory)",
    )
    group.add_argument(
        "--authority-public-key",
        default=os.environ.get("IDLEFLEET_AUTHORITY_PUBLIC_KEY"),
        help="the fleet authority's Ed25519 public key, hex (IDLEFLEET_AUTHORITY_PUBLIC_KEY)",
    )
    group.add_argument(
        "--authority-key",
        type=Path,
        help="the fleet authority's private key file: a lab that enrolls its own identity",
    )


@dataclass(frozen=True)
class Credentials:
    """A command's identities and whom it trusts."""

    identities: tuple[Identity, ...]
    authority_public_key: bytes
    authority: Authority | None  # held in a lab: the command enrolls itself

    def identities_of(self, principal: str) -> tuple[Identity, ...]:
        """The identities that speak for `principal` (a car holds only its own)."""
        return tuple(i for i in self.identities if i.principal == principal)

    def trust(self, kafka: KafkaSettings, catch_up_timeout_s: float = 30.0) -> Trust:
        """A started Trust; in a lab, identities are enrolled first if they are not yet."""
        trust = Trust(kafka, self.authority_public_key, self.identities).start(catch_up_timeout_s)
        unknown = [i for i in self.identities if trust.registry.get(i.key_id) is None]
        if unknown and self.authority is not None:
            enroll(kafka, self.authority, unknown)
            trust.wait_caught_up(catch_up_timeout_s)
        else:
            for identity in unknown:
                log.warning(
                    "%s %s (%s) is not enrolled: its records are refused until an operator "
                    "runs `idlefleet keys enroll`",
                    identity.role,
                    identity.principal,
                    identity.key_id,
                )
        return trust


def credentials_from_args(
    args: argparse.Namespace, principals: list[str], role: Role, *, lab: bool
) -> Credentials:
    """The identities and authority the flags name; `lab` (embedded broker): a lab authority
    in the state directory when neither authority flag is given. CredentialsError otherwise."""
    if args.identity is not None and len(principals) != 1:
        raise CredentialsError("--identity names one identity: use --identity-dir for many")
    authority, public_key = _authority_of(args, lab)
    directory = args.identity_dir or state_dir()
    try:
        identities = tuple(
            Identity.load_or_create(
                args.identity or directory / f"{principal}.key", principal, role
            )
            for principal in principals
        )
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"identity: {exc}") from exc
    return Credentials(identities, public_key, authority)


def _authority_of(args: argparse.Namespace, lab: bool) -> tuple[Authority | None, bytes]:
    """The authority's key when the flags (or a lab) hold it, and its public key."""
    if args.authority_key is not None or (lab and not args.authority_public_key):
        path = args.authority_key or state_dir() / "authority.key"
        try:
            authority = Authority.load_or_create(path)
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"authority key: {exc}") from exc
        return authority, authority.public_key
    if not args.authority_public_key:
        raise CredentialsError(
            "--authority-public-key (or IDLEFLEET_AUTHORITY_PUBLIC_KEY) is required: whose "
            "enrollments to believe"
        )
    try:
        public_key = bytes.fromhex(args.authority_public_key)
    except ValueError as exc:
        raise CredentialsError("--authority-public-key: not hex") from exc
    if len(public_key) != 32:
        raise CredentialsError("--authority-public-key: an Ed25519 public key is 32 bytes")
    return None, public_key


def enroll(kafka: KafkaSettings, authority: Authority, identities: list[Identity]) -> None:
    """Enroll `identities` now (a lab, the demo, or the operator's `keys enroll`)."""
    now = datetime.now(UTC)
    publish_enrollments(kafka, authority, [identity.enrollment(now) for identity in identities])
