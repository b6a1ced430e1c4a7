"""A real Chromium drives the review page on a real uvicorn server.

Three tickets are routed through POST /v1/tickets by the real engine (tiny model,
LoRA adapter); an agent logs in, approves one, edits another and rejects the
third in the browser; store.db then holds the three states and their audit rows,
and `feedback export` contains the edit.
"""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest
import yaml
from test_retrieval import copy_store, indexed_store_template
from test_serve_support import KEY, LiveServer, serve_base, serve_engine, serve_models  # noqa: F401

from storetune.feedback import export_feedback
from storetune.serve.app import create_app
from storetune.serve.security import hash_password
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PASSWORD = "trail-mix-42"
EDIT = "Hi there! Returns are free within 30 days of delivery, unused and with tags."


def _browser_present() -> bool:
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


@pytest.fixture(scope="module")
def browser():
    # a missing browser fails the test rather than skipping it; `make test` installs it
    if not _browser_present():
        pytest.fail("Debian chromium + chromium-driver are not installed (run 'make browser')")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def live(tmp_path_factory, serve_engine):  # noqa: F811  (fixture)
    root = copy_store(indexed_store_template(), tmp_path_factory.mktemp("browser") / "store")
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["serve"] = {
        "api_keys": [KEY],
        "max_tokens": 24,
        "default_max_tokens": 16,
        "review_users": [
            {"username": "ana", "password_hash": hash_password(PASSWORD, iterations=1000)}
        ],
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    with LiveServer(create_app(ws, serve_engine)) as server:
        yield server, ws


def route(server, message: str) -> dict:
    r = httpx.post(
        f"{server.url}/v1/tickets",
        json={"message": message},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    return r.json()


def wait_for(browser, condition, what: str):
    """Wait for the page a click started to load (the limit only stops a hung test)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The previous page's flash can be found, then replaced by the new page before its
    # text is read: look again rather than fail.
    wait = WebDriverWait(
        browser, 30, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
    )
    return wait.until(condition, message=what)


def flash_says(text: str):
    from selenium.webdriver.common.by import By

    def check(browser):
        found = browser.find_elements(By.ID, "flash")
        return bool(found) and text in found[0].text

    return check


def test_agent_works_the_queue_in_chromium(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    server, ws = live
    a = route(server, "How much is the Larch 1P Dome Tent?")["ticket_id"]
    b = route(server, "What's your return window?")["ticket_id"]
    c = route(server, "Do you ship to Canada?")["ticket_id"]

    browser.get(f"{server.url}/review")
    assert browser.current_url.endswith("/review/login")  # the page is behind the login
    browser.find_element(By.ID, "username").send_keys("ana")
    browser.find_element(By.ID, "password").send_keys("not-the-password")
    browser.find_element(By.ID, "login-submit").click()
    error = wait_for(browser, ec.presence_of_element_located((By.ID, "login-error")), "error")
    assert "Wrong username or password" in error.text

    browser.find_element(By.ID, "username").send_keys("ana")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, ec.url_matches(r"/review$"), "the queue page after login")
    for t in (a, b, c):
        assert browser.find_element(By.ID, f"ticket-{t}").is_displayed()
    assert "Larch 1P Dome Tent" in browser.find_element(By.ID, f"ticket-{a}").text

    # approve in one click
    browser.find_element(By.CSS_SELECTOR, f"#approve-{a} button").click()
    wait_for(browser, flash_says(f"Ticket {a} approved"), "approval")
    # edit, then send
    box = browser.find_element(By.ID, f"text-{b}")
    box.clear()
    box.send_keys(EDIT)
    browser.find_element(By.CSS_SELECTOR, f"#edit-{b} button").click()
    wait_for(browser, flash_says(f"Ticket {b} edited"), "edit")
    # reject with a reason
    browser.find_element(By.ID, f"reason-{c}").send_keys("the carrier must confirm")
    browser.find_element(By.CSS_SELECTOR, f"#reject-{c} button").click()
    wait_for(browser, flash_says(f"Ticket {c} rejected"), "rejection")
    assert browser.find_elements(By.ID, "empty")  # nothing left waiting

    q = ReviewQueue(ws.db_path)
    states = {t: q.get(t) for t in (a, b, c)}
    assert [states[t].status for t in (a, b, c)] == ["approved", "edited", "rejected"]
    assert states[a].final_text == states[a].response
    assert states[b].final_text == EDIT
    assert states[c].reject_reason == "the carrier must confirm" and states[c].final_text is None
    audit = {r.ticket_id: r for r in q.audit() if r.actor == "ana"}
    assert {t: audit[t].action for t in (a, b, c)} == {a: "approved", b: "edited", c: "rejected"}
    assert audit[b].before["status"] == "waiting" and audit[b].after["text"] == EDIT
    assert audit[c].after["reason"] == "the carrier must confirm"

    browser.get(f"{server.url}/review/history")  # get() waits for the page itself
    assert "the carrier must confirm" in browser.find_element(By.ID, "audit").text

    exported = export_feedback(ws)
    rows = [json.loads(line) for line in exported.path.read_text().splitlines()]
    edits = [r for r in rows if r["provenance"]["edited"]]
    assert len(rows) == 2 and len(edits) == 1
    assert edits[0]["provenance"]["ticket_id"] == b and edits[0]["provenance"]["agent"] == "ana"
    assert edits[0]["messages"][-1] == {"role": "assistant", "content": EDIT}
    assert edits[0]["messages"][0]["content"] == states[b].system_prompt
