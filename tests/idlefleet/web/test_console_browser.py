"""The web console in a real browser (headless chromium) over the real planner service on
the test broker: sign in with a viewer token, read the Fleet and Health pages, be refused
with a wrong or an owner token, and find that no request leaves 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

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


def test_viewer_reads_fleet_and_health(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        assert urlsplit(driver.current_url).path == "/fleet"
        driver.save_screenshot(str(tmp_path / "fleet.png"))
        sites = driver.find_element(By.ID, "sites-table").text
        for site in SITES:
            assert site.site_id in sites
        assert "revision 1" in driver.find_element(By.ID, "last-plan").text
        charts = driver.find_elements(By.CSS_SELECTOR, "#live figure.chart[id^='import-']")
        assert [chart.get_attribute("id") for chart in charts] == [
            "import-fleet",
            *(f"import-{site.site_id}" for site in SITES),
        ]
        wait_for_charts(driver, len(charts))
        numbers = charts[0].find_element(By.CSS_SELECTOR, "details table")
        shown = "return arguments[0].closest('details').open"
        assert not driver.execute_script(shown, numbers), "the numbers wait behind a toggle"
        charts[0].find_element(By.TAG_NAME, "summary").click()
        assert driver.execute_script(shown, numbers)
        assert "Import [kW]" in numbers.text
        cookie = driver.get_cookie("idlefleet_session")
        assert cookie is not None
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        driver.find_element(By.LINK_TEXT, "Health").click()
        assert urlsplit(driver.current_url).path == "/health"
        assert driver.find_element(By.ID, "dead-letters").text == "0"
        assert driver.find_element(By.ID, "service-state").text in ("serving", "degraded")
        driver.save_screenshot(str(tmp_path / "health.png"))

        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".concat([location.href])"
        )
        only_loopback(urls)

        driver.find_element(By.CSS_SELECTOR, "nav form button").click()
        assert urlsplit(driver.current_url).path == "/login"
        driver.get(console + "fleet")
        assert urlsplit(driver.current_url).path == "/login", "signed out, the page stays shut"


def test_wrong_tokens_are_refused_and_owners_kept_to_their_car(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, "not-a-token-of-this-fleet-0123456789")
        assert urlsplit(driver.current_url).path == "/login"
        assert "Unknown token" in driver.find_element(By.ID, "login-error").text
        driver.save_screenshot(str(tmp_path / "refused.png"))
        assert driver.get_cookie("idlefleet_session") is None

        sign_in(driver, console, live.tokens.by_role[Role.OWNER])
        assert urlsplit(driver.current_url).path == "/my-car"
        driver.get(console + "health")
        assert "needs role viewer" in driver.find_element(By.TAG_NAME, "main").text
        only_loopback(requested_urls(driver))


def test_phone_width_and_keyboard(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile", width=390, height=844) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        assert urlsplit(driver.current_url).path == "/fleet"
        overflow = overflow_px(driver)
        assert overflow <= 0, f"the page is {overflow} px wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "fleet-phone.png"))

        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        first = driver.switch_to.active_element
        assert first.text == "Skip to content"
        reached = []
        for _ in ("Fleet", "Jobs", "Grid", "Health"):  # past the skip link, the navigation
            driver.switch_to.active_element.send_keys(Keys.TAB)
            reached.append(driver.switch_to.active_element.text)
        assert reached == ["Fleet", "Jobs", "Grid", "Health"]
        health_link = driver.switch_to.active_element
        health_link.send_keys(Keys.ENTER)
        assert urlsplit(driver.current_url).path == "/health"
        driver.save_screenshot(str(tmp_path / "health-phone.png"))
