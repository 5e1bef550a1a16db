"""The demo's console in a real browser while the demo runs (paced so a person could watch):
sign in as the operator, open every page and find the demo's sites and cars, submit a small
job with the command the Jobs page gives, then sign in as a parked car's owner, move its
departure and see the next plan follow; no request leaves 127.0.0.1. A screenshot of every
page goes to the test's output (`SCREENSHOTS`, or `tmp_path`)."""

from __future__ import annotations

import os
import queue
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from idlefleet.demo.console import DemoConsole
from idlefleet.demo.run import DemoConfig, run_demo
from idlefleet.sim.catalog import demo_sites
from idlefleet.web.runner import WebConfig
from tests.idlefleet.web.browser import (
    assert_no_console_errors,
    chromium,
    only_loopback,
    overflow_px,
    requested_urls,
    sign_in,
    wait_for_charts,
)

#: A short demo whose slots take long enough of wall time for the browser to act within.
DEMO = {"cars": 8, "sites": 2, "hours": 6.0, "slot_wall_s": 4.0}
#: Where the screenshots go when set (the README's come from here), else the test's tmp_path.
SCREENSHOTS = os.environ.get("IDLEFLEET_SCREENSHOTS")
WAIT_S = 60.0
#: Longest the demo may take to end after the test [s] (24 slots of 4 s, and more).
DEMO_END_S = 240.0
#: The plan the operator waits for before looking: some cars in, some work done.
SETTLED_REVISION = 4


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoConsole]:
    """The demo running on a thread, its console listening; after the test the demo runs to
    its end, so that it stops its embedded broker and store itself."""
    monkeypatch.setenv("IDLEFLEET_STATE_DIR", str(tmp_path / "state"))
    consoles: queue.Queue[DemoConsole] = queue.Queue()
    config = DemoConfig(out_dir=tmp_path / "demo", web=WebConfig("127.0.0.1", 0), **DEMO)  # type: ignore[arg-type]
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_demo(config, progress=False, on_console=consoles.put)
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    thread = threading.Thread(target=run, name="demo", daemon=True)
    thread.start()
    try:
        console = consoles.get(timeout=120)
    except queue.Empty:
        raise AssertionError(f"the demo's console did not start: {failures}") from None
    yield console
    thread.join(timeout=DEMO_END_S)
    assert not thread.is_alive(), f"the demo did not end within {DEMO_END_S:.0f} s"
    assert not failures, f"the demo failed: {failures}"


def plan_revision(driver: WebDriver) -> int:
    """The Fleet page's plan revision (0 before the first plan)."""
    match = re.search(r"revision (\d+)", driver.find_element(By.ID, "last-plan").text)
    return 0 if match is None else int(match.group(1))


def settled(driver: WebDriver) -> bool:
    """The Fleet page, read again, shows a plan of `SETTLED_REVISION` or later."""
    driver.refresh()
    return plan_revision(driver) >= SETTLED_REVISION


def shoot(driver: WebDriver, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out / f"{name}.png"))


def open_page(driver: WebDriver, base: str, path: str) -> None:
    driver.get(base + path.lstrip("/"))
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "main"))


def test_the_demos_console_end_to_end(demo: DemoConsole, tmp_path: Path) -> None:
    out = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "screenshots"
    tokens = [line.split() for line in demo.tokens_path.read_text().splitlines()]
    operator = tokens[0][0]
    owners = {grant.removeprefix("owner:"): token for token, grant in tokens[1:]}
    sites = [site.site_id for site in demo_sites(DEMO["sites"], DEMO["cars"])]  # type: ignore[arg-type]
    with chromium(tmp_path / "profile", height=1600) as driver:
        sign_in(driver, demo.url, operator)
        assert urlsplit(driver.current_url).path == "/fleet"
        # a few slots in, when cars have arrived and work is under way
        WebDriverWait(driver, WAIT_S).until(lambda d: settled(d))
        table = driver.find_element(By.ID, "sites-table").text
        assert all(site in table for site in sites)
        wait_for_charts(driver, 2)
        shoot(driver, out, "fleet")

        open_page(driver, demo.url, f"/sites/{sites[0]}")
        parked = [
            link.text for link in driver.find_elements(By.CSS_SELECTOR, "#car-energy-table tbody a")
        ]
        assert parked, "the demo's first site has no car in the plan"
        shoot(driver, out, "site")

        open_page(driver, demo.url, "/jobs")
        command = driver.find_element(By.CSS_SELECTOR, "pre.command").text
        assert demo.api_target in command
        assert "session-embeddings" in driver.find_element(By.ID, "main").text
        shoot(driver, out, "jobs")
        submit_small_job(command, demo, tmp_path)
        open_page(driver, demo.url, "/jobs")
        assert "console-check" in driver.find_element(By.ID, "main").text

        open_page(driver, demo.url, "/jobs/console-check")
        shoot(driver, out, "job")
        open_page(driver, demo.url, "/grid")
        wait_for_charts(driver, 1)
        shoot(driver, out, "grid")
        open_page(driver, demo.url, "/health")
        assert driver.find_element(By.ID, "service-state").text in ("serving", "degraded")
        shoot(driver, out, "health")
        open_page(driver, demo.url, f"/cars/{parked[0]}")
        shoot(driver, out, "car")
        assert_no_console_errors(driver)
        only_loopback(requested_urls(driver))
        driver.find_element(By.CSS_SELECTOR, "nav form button").click()

    with chromium(tmp_path / "owner", width=390, height=844) as driver:
        sign_in(driver, demo.url, owners[parked[0]])
        assert urlsplit(driver.current_url).path == "/my-car"
        assert parked[0] in driver.find_element(By.TAG_NAME, "h1").text
        revision = driver.find_element(By.ID, "car-plan").text
        departure = driver.find_element(By.ID, "expected_departure")
        planned = datetime.fromisoformat(departure.get_attribute("value") or "")
        moved = planned - timedelta(minutes=30)
        # (typing into the field by keyboard is test_my_car_browser's; here: the value)
        driver.execute_script(
            "arguments[0].value = arguments[1]", departure, moved.strftime("%Y-%m-%dT%H:%M")
        )
        shoot(driver, out, "my-car-phone")
        driver.find_element(By.ID, "save").click()
        WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.ID, "saved"))
        shoot(driver, out, "my-car-saved-phone")
        shown = moved.strftime("%Y-%m-%d %H:%M UTC")
        WebDriverWait(driver, WAIT_S).until(
            lambda d: (
                d.find_element(By.ID, "car-plan").text != revision
                and shown in d.find_element(By.ID, "car-departure").text
            ),
            f"no plan after {revision} took the departure {shown}",
        )
        shoot(driver, out, "my-car-replanned-phone")
        driver.execute_script("document.getElementById('tonight').scrollIntoView()")
        shoot(driver, out, "my-car-tonight-phone")
        overflow = overflow_px(driver)
        assert overflow <= 0, f"the owner's page is {overflow} px wider than a phone"
        assert_no_console_errors(driver)
        only_loopback(requested_urls(driver))


def submit_small_job(command: str, demo: DemoConsole, tmp_path: Path) -> None:
    """Run the Jobs page's command with its placeholders filled: the operator's token file,
    the demo's model and a shard of its inputs, under a job id of this test's."""
    demo_out = demo.tokens_path.parent
    filled = {
        "OPERATOR.token": str(demo.tokens_path),
        "MODEL.onnx": str(demo_out / "models" / "demo-mlp.onnx"),
        "INPUTS.npy": str(demo_out / "inputs" / "late-embeddings" / "shard-0000.npy"),
    }
    words = [filled.get(word, word) for word in shlex.split(command)]
    assert words[:3] == ["idlefleet", "jobs", "submit"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "idlefleet.cli",
            *words[1:],
            "--job-id",
            "console-check",
            "--keys-dir",
            str(tmp_path / "keys"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
