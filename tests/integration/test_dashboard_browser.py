"""The dashboard in a real headless browser (Debian's chromium + chromedriver, driven by
selenium): the page loads with no console errors, the graph shows the nodes, a call from the
form returns the service's answer. A screenshot is kept in tests/artifacts/ (gitignored)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_net import network

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1500", "--no-proxy-server", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def _drive(url: str, expected_nodes: set[str], server: str) -> dict[str, Any]:
    """Everything the browser does (blocking: run in a worker thread)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(url + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#graph g.node")) == 3)
        drawn = {g.get_attribute("data-id"): g.get_attribute("data-role")
                 for g in driver.find_elements(By.CSS_SELECTOR, "#graph g.node")}
        lines = len(driver.find_elements(By.CSS_SELECTOR, "#graph line"))
        rows = [r.get_attribute("data-id")
                for r in driver.find_elements(By.CSS_SELECTOR, "#nodes-table tbody tr")]
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#services .service"))
        services = [s.get_attribute("data-name")
                    for s in driver.find_elements(By.CSS_SELECTOR, "#services .service")]

        Select(driver.find_element(By.ID, "call-service")).select_by_value("greeter")
        Select(driver.find_element(By.ID, "call-endpoint")).select_by_value("hello")
        body = driver.find_element(By.ID, "call-body")
        body.clear()
        body.send_keys('{"name": "Ada", "excited": true}')
        driver.find_element(By.ID, "call-submit").click()
        result = driver.find_element(By.ID, "call-result")
        wait.until(lambda d: result.get_attribute("data-done"))
        answer = json.loads(result.text)
        status = driver.find_element(By.ID, "call-status").text

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        driver.save_screenshot(str(shot))
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        return {"drawn": drawn, "lines": lines, "rows": rows, "services": services,
                "answer": answer, "status": status, "shot": shot, "errors": errors}
    finally:
        driver.quit()


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="needs chromium and chromedriver (apt-get install chromium "
                           "chromium-driver; scripts/test.sh installs them when it can)")
async def test_dashboard_in_a_headless_browser() -> None:
    pytest.importorskip("selenium", reason="pip install -e '.[test]' (selenium)")
    with trio.fail_after(90):
        async with network() as net:
            ids = {n.peer_id.to_base58() for n in net.nodes}
            server = net.server.peer_id.to_base58()
            seen = await trio.to_thread.run_sync(_drive, net.gateway.url, ids, server)
    print(f"\ndashboard screenshot: {seen['shot']}")
    assert set(seen["drawn"]) == ids
    assert seen["drawn"][net.sup.peer_id.to_base58()] == "super"
    assert seen["lines"] >= 2
    assert set(seen["rows"]) == ids
    assert {"greeter", "lab"} <= set(seen["services"])
    assert seen["answer"] == {"message": "Hello, Ada!", "served_by": server}
    assert seen["status"].startswith("HTTP 200")
    assert seen["errors"] == [], seen["errors"]
    assert seen["shot"].stat().st_size > 10_000
