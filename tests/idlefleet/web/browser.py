"""Headless Debian chromium driven by Debian's chromedriver, closed to the network: the
flags that work as root on a machine without one, a fresh profile per browser, and the
DevTools performance log that records every request the pages make."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def require_browser() -> None:
    """Skip unless Debian's chromium and chromium-driver are installed (.ci/run installs
    them)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.skip(f"{path} is missing: apt-get install chromium chromium-driver")


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless browser with a fresh profile in `profile`, its window `width` x `height`
    [CSS px], logging every network request (`requested_urls`)."""
    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the browser asked for since the last call (DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_no_console_errors(driver: webdriver.Chrome) -> None:
    """The pages logged no error since the last call: no script failed and the content
    security policy refused nothing."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"the browser logged errors: {errors}"


def wait_for_charts(driver: webdriver.Chrome, count: int, timeout_s: float = 10.0) -> None:
    """Wait until the page's script has drawn `count` charts (uPlot canvases)."""
    WebDriverWait(driver, timeout_s).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart-plot canvas")) >= count,
        f"fewer than {count} charts were drawn",
    )


def sign_in(driver: webdriver.Chrome, base: str, token: str) -> None:
    """Sign in at `base` with `token` and wait for the answer."""
    driver.get(base + "login")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    WebDriverWait(driver, 10).until(staleness_of(field), "the sign-in form was not answered")


#: Schemes served inside the browser itself (its own new-tab page, inline data): no network.
IN_BROWSER = frozenset({"data", "blob", "about", "chrome", "chrome-untrusted"})


def only_loopback(urls: list[str]) -> None:
    """Every request is in the browser or to 127.0.0.1, and some were to 127.0.0.1."""
    outside = [
        url
        for url in urls
        if urlsplit(url).scheme not in IN_BROWSER and urlsplit(url).hostname != "127.0.0.1"
    ]
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert any(urlsplit(url).hostname == "127.0.0.1" for url in urls), "no request was logged"


def overflow_px(driver: webdriver.Chrome) -> int:
    """How much wider than the window the page is [CSS px] (0 or less: it fits)."""
    width: int = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width
