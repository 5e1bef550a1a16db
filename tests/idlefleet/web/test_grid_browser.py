"""The Grid page in a real browser (headless chromium) over the real planner service: DR caps
sent through the gRPC API with their decisions, a site's flexibility picked with the
keyboard, a what-if cap and its effect, bad input named next to its field, a viewer refused
the what-if as the API refuses it, and the page at phone width."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import (
    presence_of_element_located,
    staleness_of,
)
from selenium.webdriver.support.wait import WebDriverWait

from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.tokens import Role
from tests.idlefleet.conftest import stamp
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

#: Charts on the Grid page: the flexibility of the chosen scope.
CHARTS = 1
#: Longest a what-if may take here [s]: the console's solver child starts with the first.
WHAT_IF_WAIT_S = 90.0


def submit_cap(live: LiveFleet, event_id: str, max_import_kw: float, hours: float) -> bool:  # noqa: F811
    """Send a cap on berlin-depot from T0 through the API as an operator; honoured?"""
    spec = pb.DrEventSpec(
        event_id=event_id,
        site_id="berlin-depot",
        start=stamp(0),
        end=stamp(hours),
        max_import_kw=max_import_kw,
    )
    decision = live.stub.SubmitDemandResponse(
        pb.SubmitDemandResponseRequest(event=spec),
        metadata=live.metadata(Role.OPERATOR),
        timeout=60,
    )
    return decision.honoured


def wait_until_held(live: LiveFleet, event_id: str) -> None:  # noqa: F811
    """Until the service has read the cap back from the DR topic."""
    deadline = time.monotonic() + WAIT_S
    while event_id not in live.service.state.dr_events:
        assert time.monotonic() < deadline, f"the service did not read {event_id} back"
        time.sleep(0.05)


def screenshot(driver: WebDriver, path: Path, element_id: str | None = None) -> None:
    """The window, scrolled to `element_id` first when given, as a PNG at `path`."""
    if element_id is not None:
        element = driver.find_element(By.ID, element_id)
        driver.execute_script("arguments[0].scrollIntoView()", element)
    driver.save_screenshot(str(path))


def expected_only(driver: WebDriver, status: str) -> None:
    """The browser logged no error since the last look but the answer with `status`."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert all(status in message for message in errors), errors


def no_overflow(driver: WebDriver) -> None:
    overflow = overflow_px(driver)
    assert overflow <= 0, f"the page is {overflow} px wider than its window"


def test_operator_reads_caps_picks_a_site_and_tries_a_cap(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert submit_cap(live, "evening-peak", 1000.0, 1.0)
    assert not submit_cap(live, "blackout", 0.0, 4.0)
    wait_until_held(live, "evening-peak")
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.OPERATOR])
        driver.get(console + "grid")
        wait_for_charts(driver, CHARTS)
        screenshot(driver, tmp_path / "grid.png")
        screenshot(driver, tmp_path / "grid-dr-events.png", "dr-heading")
        rows = {
            row.find_element(By.TAG_NAME, "th").text.split("\n")[0]: row.text
            for row in driver.find_elements(By.CSS_SELECTOR, "#dr-events tbody tr")
        }
        assert set(rows) == {"evening-peak", "blackout"}
        assert "accepted" in rows["evening-peak"] and "in force now" in rows["evening-peak"]
        assert "adds no shortfall" in rows["evening-peak"]
        assert "refused" in rows["blackout"] and "not in force" in rows["blackout"]
        assert "kWh short" in rows["blackout"] and "car-" in rows["blackout"]
        caption = driver.find_element(By.CSS_SELECTOR, "#flexibility figcaption").text
        assert caption.startswith("The fleet")

        scope = driver.find_element(By.ID, "scope")
        scope.send_keys("Site london")  # a select's type-ahead: the keyboard alone
        scope.send_keys(Keys.TAB)
        assert driver.switch_to.active_element.get_attribute("id") == "show-scope"
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        WebDriverWait(driver, 10).until(staleness_of(scope), "the scope was not shown")
        query = parse_qs(urlsplit(driver.current_url).query)
        assert query["scope"] == ["site:london-depot"]
        wait_for_charts(driver, CHARTS)
        caption = driver.find_element(By.CSS_SELECTOR, "#flexibility figcaption").text
        assert caption.startswith("Site london-depot")
        numbers = driver.find_element(By.ID, "flexibility-numbers")
        headers = numbers.find_elements(By.TAG_NAME, "th")
        labels = [th.get_attribute("textContent") for th in headers]
        assert "Up: can add [kW]" in labels and "Down: can shed [kW]" in labels
        driver.save_screenshot(str(tmp_path / "grid-london.png"))
        assert_no_console_errors(driver)

        cap = driver.find_element(By.ID, "cap_kw")
        cap.send_keys("lots")
        cap.send_keys(Keys.ENTER)
        error = WebDriverWait(driver, 30).until(
            presence_of_element_located((By.ID, "error-cap_kw")), "no error next to the field"
        )
        assert error.text == "cap_kw: is not a number"
        assert driver.find_element(By.ID, "cap_kw").get_attribute("aria-describedby") == (
            "error-cap_kw"
        )
        screenshot(driver, tmp_path / "grid-bad-input.png", "error-cap_kw")
        expected_only(driver, "400 (Bad Request)")

        cap = driver.find_element(By.ID, "cap_kw")
        cap.clear()
        cap.send_keys("0")
        target = driver.find_element(By.ID, "target")
        target.send_keys("Site berlin")
        driver.find_element(By.ID, "change-cap").send_keys(Keys.SPACE)
        driver.find_element(By.ID, "try-what-if").send_keys(Keys.ENTER)
        result = WebDriverWait(driver, WHAT_IF_WAIT_S).until(
            presence_of_element_located((By.ID, "what-if-result")), "no what-if result"
        )
        assert "a cap of 0 kW on site berlin-depot" in result.text
        effects = {
            row.find_element(By.TAG_NAME, "th").text: row.text
            for row in result.find_elements(By.CSS_SELECTOR, "#what-if-effects tbody tr")
        }
        assert set(effects) >= {
            "Carbon emitted [kg CO₂]",
            "Owners left short at departure [kWh]",
            "Work planned [shard runs]",
        }
        assert "blackout" not in live.service.state.dr_events, "a what-if changes nothing"
        screenshot(driver, tmp_path / "grid-what-if.png", "what-if-result")
        driver.set_window_size(390, 844)  # charts are drawn at load: load again
        driver.get(console + "grid")
        wait_for_charts(driver, CHARTS)
        no_overflow(driver)
        driver.find_element(By.ID, "cap_kw").send_keys("0")
        driver.find_element(By.ID, "try-what-if").send_keys(Keys.ENTER)
        WebDriverWait(driver, WHAT_IF_WAIT_S).until(
            presence_of_element_located((By.ID, "what-if-result")), "no what-if result"
        )
        no_overflow(driver)
        screenshot(driver, tmp_path / "grid-what-if-phone.png", "what-if-result")

        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)

        driver.get(console + "grid?scope=site:atlantis")
        assert "scope: no site is called 'atlantis'" in (
            driver.find_element(By.ID, "scope-error").text
        )


def test_viewer_is_refused_the_what_if_and_the_page_fits_a_phone(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert submit_cap(live, "evening-peak", 1000.0, 1.0)
    wait_until_held(live, "evening-peak")
    with chromium(tmp_path / "profile", width=390, height=844) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.get(console + "grid")
        wait_for_charts(driver, CHARTS)
        no_overflow(driver)
        screenshot(driver, tmp_path / "grid-phone.png")
        screenshot(driver, tmp_path / "grid-phone-dr-events.png", "dr-heading")
        screenshot(driver, tmp_path / "grid-phone-what-if.png", "what-if-heading")
        closed = driver.find_element(By.ID, "what-if-closed").text
        assert "needs role operator" in closed
        assert "in force now" in driver.find_element(By.ID, "dr-events").text
        assert not driver.find_elements(By.ID, "what-if-form")
        status, text = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const body = new URLSearchParams({
              csrf: document.querySelector("input[name=csrf]").value,
              change: "cap", target: "site:berlin-depot", cap_kw: "0",
              start: "2020-06-01T12:00", end: "2020-06-01T13:00"});
            fetch("/grid", {method: "POST", body: body})
              .then(r => r.text().then(t => done([r.status, t])));
            """
        )
        assert status == 403 and "needs role operator" in text
        expected_only(driver, "403 (Forbidden)")

        body = driver.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        reached = set()
        for _ in range(12):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            reached.add(driver.switch_to.active_element.get_attribute("id"))
        assert {"scope", "show-scope"} <= reached, "the keyboard reaches the scope picker"
        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)
