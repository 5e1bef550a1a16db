"""The Site page in a real browser (headless chromium) over the real planner service: from
Fleet a viewer opens a site, finds its cars in the heat map, its import chart drawn and a car
marked estimated and stale, charts another car, is told of an unknown site, and on a phone
the page fits the screen while the heat map scrolls inside its box."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from idlefleet.tokens import Role
from streams.catalog import T0
from tests.idlefleet.live import WAIT_S, LiveFleet, live  # noqa: F401  (the fixture)
from tests.idlefleet.web.browser import (
    assert_no_console_errors,
    chromium,
    only_loopback,
    overflow_px,
    requested_urls,
    sign_in,
    wait_for_charts,
)
from tests.idlefleet.web.test_site_page import ESTIMATED_CAR, estimated_car
from tests.streams.factories import job

BERLIN = "berlin-depot"
#: Phone screen [CSS px].
PHONE = (390, 844)


def _add_work_and_an_estimated_car(live: LiveFleet) -> None:  # noqa: F811
    """A job, and car-e at Berlin: read 90 min before T0, metered since, registered; no
    preferences."""
    live.publish(job(), *estimated_car(), ESTIMATED_CAR)
    assert live.service.catch_up(WAIT_S)
    assert live.tick(T0) is not None, "the service did not plan the new car"


def test_viewer_opens_a_site_from_fleet_and_charts_a_car(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    _add_work_and_an_estimated_car(live)
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.find_element(By.ID, "sites-table").find_element(By.LINK_TEXT, BERLIN).click()
        assert urlsplit(driver.current_url).path == f"/sites/{BERLIN}"
        assert "revision 2" in driver.find_element(By.ID, "site-plan").text
        heat = driver.find_element(By.ID, "heat-map")
        cars = [th.text.split()[0] for th in heat.find_elements(By.CSS_SELECTOR, "tbody th")]
        assert cars == ["car-a", "car-b", "car-e"]
        car_e = heat.find_element(By.XPATH, ".//tbody/tr[th[starts-with(., 'car-e')]]")
        assert "est" in car_e.find_element(By.TAG_NAME, "th").text
        assert "stale" in car_e.find_element(By.TAG_NAME, "th").text
        cells = heat.find_elements(By.CSS_SELECTOR, "tbody tr:first-child td")
        assert len(cells) == 16  # a 4 h plan of 15 min slots
        classes = [(c.get_attribute("class") or "").split() for c in cells]
        assert all(names[0] in {"away", *(f"h{k}" for k in range(6))} for names in classes)
        computing = heat.find_elements(By.CSS_SELECTOR, "td.run .shards")
        assert computing and all(c.text.startswith("◆") for c in computing)
        wait_for_charts(driver, 2)  # the site's import and the first car's energy
        assert "car-a" in driver.find_element(By.CSS_SELECTOR, "#car-energy figcaption").text
        import_chart = driver.find_element(By.ID, "site-import-numbers")
        labels = [
            th.get_attribute("textContent")
            for th in import_chart.find_elements(By.CSS_SELECTOR, "thead th")
        ]
        assert {"Import [kW]", "Grid limit [kW]", "Site DR cap [kW]", "PV [kW]"} <= set(labels)
        driver.save_screenshot(str(tmp_path / "site.png"))
        driver.execute_script("arguments[0].scrollIntoView()", heat)
        driver.save_screenshot(str(tmp_path / "site-heat-map.png"))

        table = driver.find_element(By.ID, "car-energy-table")
        assert "no note" in table.text and "90 min before the plan" in table.text
        table.find_element(By.LINK_TEXT, "car-b").click()
        assert parse_qs(urlsplit(driver.current_url).query)["car"] == ["car-b"]
        wait_for_charts(driver, 2)
        assert "car-b" in driver.find_element(By.CSS_SELECTOR, "#car-energy figcaption").text
        chosen = driver.find_element(By.CSS_SELECTOR, "#car-energy-table tr.chosen th").text
        assert chosen == "car-b"
        energy_table = driver.find_element(By.ID, "car-energy-table")
        driver.execute_script("arguments[0].scrollIntoView()", energy_table)
        driver.save_screenshot(str(tmp_path / "site-car-b.png"))
        assert_no_console_errors(driver)

        driver.get(console + "sites/no-such-depot")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Unknown site"
        status = driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].responseStatus"
        )
        assert status == 404
        driver.save_screenshot(str(tmp_path / "site-unknown.png"))
        logged = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert all("status of 404" in message for message in logged), logged
        only_loopback(requested_urls(driver))


def test_site_on_a_phone_and_by_keyboard(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile", *PHONE) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.get(console + f"sites/{BERLIN}")
        wait_for_charts(driver, 2)
        overflow = overflow_px(driver)
        assert overflow <= 0, f"the page is {overflow} px wider than a phone's screen"
        box = driver.find_element(By.CSS_SELECTOR, ".heat-scroll")
        inner, outer = driver.execute_script(
            "return [arguments[0].scrollWidth, arguments[0].clientWidth]", box
        )
        assert inner > outer, "the heat map should scroll inside its box at phone width"
        driver.save_screenshot(str(tmp_path / "site-phone.png"))
        driver.execute_script("arguments[0].scrollIntoView()", box)
        driver.save_screenshot(str(tmp_path / "site-phone-heat-map.png"))

        reached = []
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        for _ in range(40):
            active = driver.switch_to.active_element
            reached.append(active.get_attribute("aria-label") or active.text)
            active.send_keys(Keys.TAB)
        assert "Heat map: charging and compute per car and slot" in reached
        assert "car-b" in reached, f"the keyboard did not reach the car links: {reached}"
        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)
