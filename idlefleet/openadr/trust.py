"""The utility's VTN and what the VEN trusts it by: https and a CA, a certificate pin, or both.

- `ca_file`: the VTN's TLS certificate must chain to this PEM bundle, hostname checked. Used
  with or without a client certificate (openleadr alone reads it only beside one).
- `fingerprint`: the OpenADR fingerprint (`AA:BB:…`, the last 10 bytes of the SHA-256 of the
  DER) of the certificate the VTN signs its messages with; openleadr ignores any message not
  signed by it. Without `ca_file` the TLS certificate must chain to the system's CAs.
- `cert` / `key`: the VEN's own certificate for mutual TLS and message signing.
- `insecure_lab`: a lab waiver that lifts both rules above (https, a CA or pin) and is logged.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

FINGERPRINT_PATTERN = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){9}$")


class VtnTrustError(ValueError):
    """A VTN endpoint or trust setting that cannot be used; the message names the flag."""


@dataclass(frozen=True)
class Vtn:
    """Where the VTN is and how the VEN verifies it; checked when made."""

    url: str
    ca_file: Path | None = None
    fingerprint: str | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure_lab: bool = False

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("https", "http"):
            raise VtnTrustError(f"--openadr-vtn-url {self.url!r}: not an https:// URL")
        if not self.insecure_lab:
            if scheme == "http":
                raise VtnTrustError(
                    f"--openadr-vtn-url {self.url}: http:// lets anyone on the path pose as "
                    "the utility; use https:// (or --openadr-insecure-lab in a lab)"
                )
            if self.ca_file is None and self.fingerprint is None:
                raise VtnTrustError(
                    "the VTN is verified by nothing: give --openadr-vtn-ca or "
                    "--openadr-vtn-fingerprint (or --openadr-insecure-lab in a lab)"
                )
        if self.fingerprint is not None and not FINGERPRINT_PATTERN.match(self.fingerprint):
            raise VtnTrustError(
                f"--openadr-vtn-fingerprint {self.fingerprint!r}: expected ten upper-case hex "
                "pairs joined by colons (`python -m openleadr.fingerprint CERT` prints it)"
            )
        if (self.cert is None) != (self.key is None):
            raise VtnTrustError("--openadr-cert and --openadr-key go together")
        for flag, path in (
            ("--openadr-vtn-ca", self.ca_file),
            ("--openadr-cert", self.cert),
            ("--openadr-key", self.key),
        ):
            if path is not None and not path.is_file():
                raise VtnTrustError(f"{flag} {path}: no such file")
        _ = self.ssl_context  # a PEM that does not load fails here, not at the first request

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The verifying TLS context for an https VTN; None for a lab's http one."""
        if urlsplit(self.url).scheme == "http":
            return None
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert is not None:
                context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise VtnTrustError(f"VTN TLS files do not load: {exc}") from exc
        return context

    def warn_if_waived(self) -> None:
        """Log, loudly, that the lab waiver is in force."""
        if self.insecure_lab:
            log.warning(
                "--openadr-insecure-lab: the VTN %s may be unverified (https: %s, CA: %s, "
                "pin: %s); never use this against a real utility",
                self.url,
                self.ssl_context is not None,
                self.ca_file,
                self.fingerprint,
            )
