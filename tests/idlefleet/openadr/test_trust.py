"""The VEN verifies the VTN: https only, by a CA file (with or without a client certificate)
or a pin on the certificate the VTN signs with; real TLS with certificates made here."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from openleadr import utils

from idlefleet.cli import main
from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.openadr.ratelimit import EventRate
from idlefleet.openadr.trust import Vtn, VtnTrustError
from idlefleet.openadr.ven import FleetVen
from idlefleet.service.dr import PlanningDecider
from tests.idlefleet.api.conftest import Pki, pki
from tests.idlefleet.openadr.harness import (
    SITES,
    Recorder,
    VtnTls,
    registered_ven,
    running_vtn,
    scenario_now,
)

__all__ = ["pki"]  # the API tests' certificates, as a fixture here too

URL = "https://127.0.0.1:1/OpenADR2/Simple/2.0b"


@pytest.fixture
def pem(pki: Pki, tmp_path: Path) -> dict[str, Path]:
    """The certificates as files, by name."""
    paths = {}
    for name in ("ca_cert", "server_cert", "server_key", "client_cert", "client_key"):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(getattr(pki, name))
    paths["other_ca_cert"] = tmp_path / "other_ca.pem"
    paths["other_ca_cert"].write_bytes(pki.other_ca_cert)
    return paths


def fingerprint(pem_file: Path) -> str:
    return str(utils.certificate_fingerprint(pem_file.read_text()))


def decider() -> PlanningDecider:
    return PlanningDecider(scenario_now, Recorder(), lambda site: 0.0, lambda site: 0.0)


def test_an_http_vtn_is_refused_without_the_lab_waiver() -> None:
    with pytest.raises(VtnTrustError, match="http://"):
        Vtn("http://vtn.example/OpenADR2/Simple/2.0b")


def test_the_lab_waiver_admits_http_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    vtn = Vtn("http://vtn.example/OpenADR2/Simple/2.0b", insecure_lab=True)
    assert vtn.ssl_context is None
    with caplog.at_level(logging.WARNING):
        FleetVen(vtn, "fleet", SITES, decider(), rate=EventRate(1.0, 1))
    assert "--openadr-insecure-lab" in caplog.text


def test_an_https_vtn_verified_by_nothing_is_refused() -> None:
    with pytest.raises(VtnTrustError, match="--openadr-vtn-ca or --openadr-vtn-fingerprint"):
        Vtn(URL)


def test_trust_settings_that_cannot_work_are_refused_naming_the_flag(
    pem: dict[str, Path], tmp_path: Path
) -> None:
    ca = pem["ca_cert"]
    with pytest.raises(VtnTrustError, match="--openadr-vtn-fingerprint"):
        Vtn(URL, fingerprint="not-a-fingerprint")
    with pytest.raises(VtnTrustError, match="--openadr-cert and --openadr-key"):
        Vtn(URL, ca_file=ca, cert=pem["client_cert"])
    with pytest.raises(VtnTrustError, match="--openadr-vtn-ca"):
        Vtn(URL, ca_file=tmp_path / "missing.pem")
    with pytest.raises(VtnTrustError, match="do not load"):
        Vtn(URL, ca_file=ca, cert=pem["client_cert"], key=pem["server_key"])  # not its key


def test_serve_refuses_an_http_vtn_at_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--openadr-vtn-url", "http://vtn.example/OpenADR2/Simple/2.0b"])
    assert code == EXIT_BAD_INPUT
    assert "--openadr-insecure-lab" in capsys.readouterr().err


async def registers(tls: VtnTls, **trust: Any) -> bool:
    """Whether a VEN trusting as `trust` says registers with the TLS VTN within 6 s."""
    async with running_vtn(tls) as live:
        try:
            async with registered_ven(Vtn(live.url, **trust), decider(), within_s=6.0):
                return True
        except TimeoutError:
            return False


def test_a_ca_file_is_honoured_without_a_client_certificate(
    pem: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    tls = VtnTls(pem["server_cert"], pem["server_key"], pem["ca_cert"], require_client_cert=False)
    assert asyncio.run(registers(tls, ca_file=pem["ca_cert"]))
    assert not asyncio.run(registers(tls, ca_file=pem["other_ca_cert"]))
    assert "certificate verify failed" in caplog.text


def test_a_vtn_signing_with_another_certificate_than_the_pin_is_refused(
    pem: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Mutual TLS and a pin: the VTN's own certificate registers, any other pin never."""
    tls = VtnTls(pem["server_cert"], pem["server_key"], pem["ca_cert"])
    mutual = {"ca_file": pem["ca_cert"], "cert": pem["client_cert"], "key": pem["client_key"]}
    assert asyncio.run(registers(tls, fingerprint=fingerprint(pem["server_cert"]), **mutual))
    assert not asyncio.run(registers(tls, fingerprint=fingerprint(pem["client_cert"]), **mutual))
    assert "fingerprint was incorrect" in caplog.text
