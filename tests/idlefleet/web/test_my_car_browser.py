"""The My car page in a real browser (headless chromium) over the real planner service on the
test broker: an owner at phone width sees their car, moves its departure with the keyboard,
and sees the next plan follow on the open page; another car's page is refused; a viewer
reads a car's page without its preferences."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from idlefleet.tokens import Role
from streams.catalog import T0
from tests.idlefleet.conftest import OWNED_CAR
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

SLOT = timedelta(minutes=15)
#: Most Tab presses from the top of the page to the form's Save button.
MOST_TABS = 40


def text_of(driver: WebDriver, element_id: str) -> str:
    """The element's text read in one script call: htmx may swap it out at any moment."""
    text: str = driver.execute_script(
        "var e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
        element_id,
    )
    return " ".join(text.split())


def assert_only_refused(driver: WebDriver, path: str, status: int) -> None:
    """The browser logged no error but the refusal of `path` with `status`."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors and all(f"{path} - " in e and f"status of {status}" in e for e in errors), errors


def tab_to(driver: WebDriver, element_id: str) -> list[str]:
    """Press Tab from the top of the page until `element_id` has the focus; the ids (or
    texts) of everything focused on the way."""
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    reached = []
    for _ in range(MOST_TABS):
        active = driver.switch_to.active_element
        reached.append(active.get_attribute("id") or active.text)
        if reached[-1] == element_id:
            return reached
        active.send_keys(Keys.TAB)
    raise AssertionError(f"Tab never reached #{element_id}: {reached}")


def test_an_owner_moves_the_departure_and_sees_the_next_plan(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile", width=390, height=844) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.OWNER])
        assert urlsplit(driver.current_url).path == "/my-car"
        assert OWNED_CAR in driver.find_element(By.TAG_NAME, "h1").text
        departure = text_of(driver, "car-departure")
        assert departure.startswith("2020-06-01 15:00 UTC")
        wait_for_charts(driver, 2)
        energy_before = text_of(driver, "car-energy-numbers")
        assert overflow_px(driver) <= 0, "the page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "my-car-phone.png"))

        reached = tab_to(driver, "expected_departure")
        for control in ("participating", "reserve_kwh", "target_kwh"):
            assert control in reached, f"the keyboard skipped {control}"
        live.clock.now = T0 + timedelta(minutes=5)  # after the car's own report at T0
        field = driver.switch_to.active_element
        field.send_keys("06012020")  # month, day, year: 2020-06-01
        field.send_keys(Keys.TAB)  # to the time
        driver.switch_to.active_element.send_keys("0130P")  # 13:30 (T0 + 1.5 h)
        assert field.get_attribute("value") == "2020-06-01T13:30"
        for _ in range(MOST_TABS):  # on to the Save button
            driver.switch_to.active_element.send_keys(Keys.TAB)
            if driver.switch_to.active_element.get_attribute("id") == "save":
                break
        save = driver.switch_to.active_element
        assert save.get_attribute("id") == "save", "Tab never reached the Save button"
        save.send_keys(Keys.ENTER)
        WebDriverWait(driver, WAIT_S).until(
            lambda d: urlsplit(d.current_url).query == "saved=1", "the form was not saved"
        )
        assert "the next plan will follow" in driver.find_element(By.ID, "saved").text
        assert driver.find_element(By.ID, "expected_departure").get_attribute("value") == (
            "2020-06-01T13:30"
        )
        assert text_of(driver, "car-departure").startswith("2020-06-01 15:00")

        replanned = live.tick(T0 + SLOT)
        assert replanned is not None and "wishes-changed" in replanned.reasons
        WebDriverWait(driver, WAIT_S).until(
            lambda d: text_of(d, "car-departure").startswith("2020-06-01 13:30"),
            "the open page did not follow the next plan",
        )
        assert "revision 2" in text_of(driver, "car-plan")
        energy_after = text_of(driver, "car-energy-numbers")
        assert energy_after != energy_before, "the energy path changed with the plan"
        wait_for_charts(driver, 2)
        assert overflow_px(driver) <= 0
        driver.save_screenshot(str(tmp_path / "my-car-phone-replanned.png"))
        driver.find_element(By.ID, "live").screenshot(str(tmp_path / "tonight-phone.png"))
        assert_no_console_errors(driver)

        driver.get(console + "cars/car-b")
        refusal = driver.find_element(By.ID, "car-refused").text
        assert "car-b is not yours" in refusal
        driver.save_screenshot(str(tmp_path / "other-car-refused-phone.png"))
        only_loopback(requested_urls(driver))
        assert_only_refused(driver, "/cars/car-b", 403)


def test_desktop_owner_and_viewer_pages(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "owner") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.OWNER])
        wait_for_charts(driver, 2)
        assert driver.find_element(By.ID, "compute-energy").text.startswith("0.0 kWh")
        assert "no rate is set" in driver.find_element(By.ID, "compensation").text
        assert "not yet kept" in driver.find_element(By.ID, "carbon-avoided").text
        assert "kg CO₂" in driver.find_element(By.ID, "car-carbon-avoided").text
        driver.save_screenshot(str(tmp_path / "my-car.png"))
        assert_no_console_errors(driver)
        driver.find_element(By.ID, "live").screenshot(str(tmp_path / "tonight.png"))
        reserve = driver.find_element(By.ID, "reserve_kwh")
        reserve.clear()
        reserve.send_keys("60", Keys.ENTER)  # above the target of 50 kWh
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.ID, "target_kwh-error"), "no error at the target"
        )
        assert "below reserve_kwh" in driver.find_element(By.ID, "target_kwh-error").text
        assert driver.find_element(By.ID, "reserve_kwh").get_attribute("value") == "60"
        target = driver.find_element(By.ID, "target_kwh")
        assert target.get_attribute("aria-invalid") == "true"
        driver.save_screenshot(str(tmp_path / "my-car-refused-field.png"))
        assert_only_refused(driver, "/my-car", 400)
        only_loopback(requested_urls(driver))
    with chromium(tmp_path / "viewer") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.get(console + f"cars/{OWNED_CAR}")
        wait_for_charts(driver, 2)
        assert not driver.find_elements(By.CSS_SELECTOR, "form.preferences")
        assert "shown to the car's owner and to operators" in driver.page_source
        driver.save_screenshot(str(tmp_path / "car-viewer.png"))
        assert_no_console_errors(driver)
        driver.get(console + "cars/no-such-car")
        assert "No car no-such-car" in driver.find_element(By.ID, "car-refused").text
        only_loopback(requested_urls(driver))
        assert_only_refused(driver, "/cars/no-such-car", 404)
