"""The Jobs pages in a real browser over the real planner service on the test broker: an
operator finds the submit command naming this service's API, a job submitted through the
API appears in the list and is planned while the page is open, its page shows its shards;
an unknown job is a 404; a viewer gets no submit command, and the pages fit a phone."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.tokens import Role
from streams.catalog import T0
from tests.idlefleet.conftest import job_spec
from tests.idlefleet.live import LiveFleet, live  # noqa: F401  (the fixture)
from tests.idlefleet.web.browser import (
    assert_no_console_errors,
    chromium,
    only_loopback,
    overflow_px,
    requested_urls,
    sign_in,
)

PHONE = {"width": 390, "height": 844}


def test_operator_submits_and_follows_a_job(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    with chromium(tmp_path / "profile") as driver:
        sign_in(driver, console, live.tokens.by_role[Role.OPERATOR])
        driver.find_element(By.LINK_TEXT, "Jobs").click()
        assert urlsplit(driver.current_url).path == "/jobs"
        assert "No jobs." in driver.find_element(By.ID, "jobs-table").text
        command = shlex.split(driver.find_element(By.ID, "submit-command").text)
        assert command[:3] == ["idlefleet", "jobs", "submit"]
        assert command[command.index("--target") + 1] == live.target

        # What the command ends in: SubmitJob on this service's API, as an operator.
        response = live.stub.SubmitJob(
            pb.SubmitJobRequest(job=job_spec("web-job", shards=3)),
            metadata=live.metadata(Role.OPERATOR),
            timeout=10,
        )
        assert response.created
        driver.refresh()
        assert "web-job" in driver.find_element(By.ID, "jobs-table").text
        driver.save_screenshot(str(tmp_path / "jobs-submitted.png"))

        # The open page follows the next plan (server-sent event, live part swapped).
        assert live.tick(T0 + timedelta(minutes=15)) is not None
        WebDriverWait(driver, 10, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda d: "on track" in d.find_element(By.ID, "jobs-table").text,
            "the list did not show the job planned",
        )
        row = driver.find_element(By.XPATH, "//tr[th/a[text()='web-job']]")
        assert row.find_element(By.TAG_NAME, "progress").get_attribute("max") == "3"
        driver.save_screenshot(str(tmp_path / "jobs.png"))

        row.find_element(By.LINK_TEXT, "web-job").click()
        assert urlsplit(driver.current_url).path == "/jobs/web-job"
        assert driver.find_element(By.ID, "job-state").text == "open"
        shards = driver.find_elements(By.CSS_SELECTOR, "#shards-table tbody tr")
        assert len(shards) == 3
        assert "running" in shards[0].text and "error rate 10 %" in shards[0].text
        driver.save_screenshot(str(tmp_path / "job.png"))
        table = driver.find_element(By.ID, "shards-table")
        driver.execute_script("arguments[0].scrollIntoView()", table)
        driver.save_screenshot(str(tmp_path / "job-shards.png"))

        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)

        driver.get(console + "jobs/no-such-job")
        assert "No job has the id no-such-job" in driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(tmp_path / "job-unknown.png"))
        (logged,) = [entry["message"] for entry in driver.get_log("browser")]
        assert "status of 404" in logged, "the browser logs the 404 and nothing else"


def test_viewer_reads_jobs_on_a_phone_without_a_submit_command(
    console: str,
    live: LiveFleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    live.stub.SubmitJob(
        pb.SubmitJobRequest(job=job_spec("phone-job-with-a-long-name-0123456789", shards=250)),
        metadata=live.metadata(Role.OPERATOR),
        timeout=10,
    )
    assert live.tick(T0 + timedelta(minutes=15)) is not None
    with chromium(tmp_path / "profile", **PHONE) as driver:
        sign_in(driver, console, live.tokens.by_role[Role.VIEWER])
        driver.get(console + "jobs")
        main = driver.find_element(By.TAG_NAME, "main").text
        assert "needs role operator" in main
        assert not driver.find_elements(By.ID, "submit-command")
        assert overflow_px(driver) <= 0, "the Jobs page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "jobs-phone.png"))

        # The keyboard reaches the jobs table and the job's link.
        link = driver.find_element(By.LINK_TEXT, "phone-job-with-a-long-name-0123456789")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        for _ in range(20):
            if driver.switch_to.active_element == link:
                break
            driver.switch_to.active_element.send_keys(Keys.TAB)
        assert driver.switch_to.active_element == link, "the keyboard never reached the job"
        link.send_keys(Keys.ENTER)
        assert urlsplit(driver.current_url).path == "/jobs/phone-job-with-a-long-name-0123456789"
        rows = driver.find_elements(By.CSS_SELECTOR, "#shards-table tbody tr")
        assert len(rows) == 100, "a page of shards, not all 250"
        assert driver.find_element(By.LINK_TEXT, "Next shards")
        assert overflow_px(driver) <= 0, "the job's page is wider than a phone's screen"
        driver.save_screenshot(str(tmp_path / "job-phone.png"))
        driver.find_element(By.LINK_TEXT, "Next shards").click()
        driver.find_element(By.LINK_TEXT, "Next shards").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#shards-table tbody tr")
        assert [row.find_element(By.TAG_NAME, "th").text for row in rows[::49]] == ["200", "249"]
        driver.get(driver.current_url.replace("first=200", "first=not-a-number"))
        assert driver.find_element(By.ID, "shards").text.endswith("99 of 250")

        only_loopback(requested_urls(driver))
        assert_no_console_errors(driver)
