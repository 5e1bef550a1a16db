"""The Fleet and Health pages in a real browser over the live planner service: a bad record
the service dead-letters shows on Health with its reason, next to the component checks; the
Fleet page draws each region's intensity forecast and lists its sources' freshness."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from idlefleet.tokens import Role
from tests.idlefleet.conftest import SITES
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)
from tests.idlefleet.web.browser import (
    assert_no_console_errors,
    chromium,
    only_loopback,
    overflow_px,
    requested_urls,
    sign_in,
    wait_for_charts,
)
from tests.streams.test_reader import send_undecodable

PHONE = {"width": 390, "height": 844}


def test_a_dead_letter_shows_with_its_reason_beside_the_checks(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    send_undecodable(live.kafka, b"car-bad")
    assert live.service.catch_up(), "the service did not read the bad record"
    [letter] = live.service.recent_dead_letters()
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.get(console + "health")
        assert driver.find_element(By.ID, "dead-letters").text == "1"
        letters = driver.find_element(By.ID, "dead-letters-table").text
        assert "car-bad" in letters and letter.reason in letters
        assert letter.topic in letters
        findings = driver.find_element(By.ID, "findings-table").text
        for component in ("broker readers", "broker dead letters", "planner plan"):
            assert component in findings
        assert "WARN" in findings  # the dead letter
        driver.save_screenshot(str(tmp_path / "health.png"))

        driver.get(console + "fleet")
        wait_for_charts(driver, len(SITES) + 1)
        intensity = driver.find_element(By.ID, "intensity")
        assert intensity.find_elements(By.CSS_SELECTOR, ".chart-plot canvas")
        numbers = intensity.find_element(By.TAG_NAME, "table").get_attribute("textContent")
        assert numbers is not None and "DE [g/kWh]" in numbers and "GB [g/kWh]" in numbers
        sources = driver.find_element(By.ID, "sources-table").text
        for source in ("Broker lag", "Last telemetry", "Last intensity forecast", "Last plan"):
            assert source in sources
        assert "not running" in sources  # no OCPP central system in this fleet
        site_chart = driver.find_element(By.ID, f"import-{SITES[0].site_id}")
        assert "PV [kW]" in (site_chart.get_attribute("textContent") or "")
        driver.save_screenshot(str(tmp_path / "fleet.png"))
        driver.execute_script("arguments[0].scrollIntoView()", intensity)
        driver.save_screenshot(str(tmp_path / "fleet-intensity.png"))
        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)


def test_health_at_phone_width_by_keyboard(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile", **PHONE) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        for page in ("health", "fleet"):
            driver.get(console + page)
            overflow = overflow_px(driver)
            assert overflow <= 0, f"{page} is {overflow} px wider than a phone's screen"
            driver.save_screenshot(str(tmp_path / f"{page}-phone.png"))
        driver.get(console + "health")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        reached = []
        for _ in range(12):
            focused = driver.switch_to.active_element
            reached.append(focused.get_attribute("aria-label") or focused.text)
            focused.send_keys(Keys.TAB)
        assert "Components and checks" in reached, reached
        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)
