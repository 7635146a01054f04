"""The web app in a real headless Chromium (Playwright): a whole incident run through
the browser alone, by four people each signed in as themselves, and axe-core's
accessibility checks on every page they use.

Skipped only where no Chromium (or Playwright) is installed and PLAYBOOK_REQUIRE_BROWSER
is not set; CI installs Debian's chromium and sets it, so there a missing browser fails.
Screenshots of the queue (on a phone) and of the board are written to the folder this
test prints: ``$PLAYBOOK_SCREENSHOTS``, else ``web-screenshots`` under pytest's
temporary folder.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from conftest import T0
from server_support import PASSWORD, Server

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("PLAYBOOK_REQUIRE_BROWSER", "").strip() not in ("", "0")
try:
    import playwright.sync_api  # noqa: F401
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # the test extra is not installed
    Axe = None

MISSING = ("no chromium on the PATH" if BROWSER is None else
           "Playwright or axe-playwright-python is not installed (the test extra)" if Axe is None else None)
pytestmark = pytest.mark.skipif(MISSING is not None and not REQUIRED,
                                reason=f"{MISSING} (CI installs both and sets PLAYBOOK_REQUIRE_BROWSER)")

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live(tmp_path):
    """The team server as a real HTTP server on a loopback port, on a fixed clock."""
    import uvicorn

    from engine.clock import FixedClock

    server = Server(tmp_path, FixedClock(T0))
    server.add_people()
    config = uvicorn.Config(server.app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not running.started:
        started.wait(0.05)
    port = running.servers[0].sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chromium():
    if MISSING is not None:
        pytest.fail(f"PLAYBOOK_REQUIRE_BROWSER is set but {MISSING}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path_factory):
    """Where the screenshots go: $PLAYBOOK_SCREENSHOTS, else a folder under pytest's own."""
    from pathlib import Path

    given = os.environ.get("PLAYBOOK_SCREENSHOTS", "").strip()
    folder = Path(given) if given else tmp_path_factory.getbasetemp() / "web-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the web app: {folder}")
    return folder


def signed_in(browser, live, name: str, *, viewport=None):
    context = browser.new_context(base_url=live.url, viewport=viewport or {"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/signin")
    no_serious_violations(page)
    page.get_by_label("Account name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/board")
    return page


def no_serious_violations(page) -> None:
    found = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
           if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{page.url}: {bad}"


def test_a_whole_incident_runs_through_the_browser_alone(live, chromium, shots):
    from click.testing import CliRunner

    from cli import main

    # the lead starts the incident from the library through the generated form
    lead = signed_in(chromium, live, "alice")
    lead.get_by_role("link", name="Start an incident").click()
    no_serious_violations(lead)
    lead.get_by_role("link", name="Viral patient complaint on social media").click()
    no_serious_violations(lead)
    lead.get_by_label("Title").fill("ER wait time complaint <script>alert(1)</script>")
    lead.locator("#in-complaint_url").fill("https://x.com/patient/status/1")
    lead.locator("#in-complaint_channel").select_option("x")
    for role, person in (("incident_lead", "alice"), ("spokesperson", "bob"), ("compliance", "cora"),
                         ("patient_relations", "petra"), ("social_media", "carol")):
        lead.locator(f"#role-{role}").fill(person)
    assert lead.get_by_text("CONFIDENTIAL: never in a public post").count() >= 1
    lead.get_by_role("button", name="Start the incident").click()
    lead.wait_for_url("**/incidents/INC-*")
    incident = lead.url.rsplit("/", 1)[1].split("?")[0]
    assert lead.locator("h1").inner_text() == "ER wait time complaint <script>alert(1)</script>"
    no_serious_violations(lead)
    lead.locator("#task-confirm_post").check()
    lead.get_by_role("button", name="Save tasks").click()
    lead.get_by_role("button", name="acknowledge").click()
    assert "Stage acknowledge" in lead.locator(".stage").inner_text()

    # a complaint arrives (as a listener records it), and waits in the incident's inbox
    from engine.app import inbound
    from engine.app.context import App
    from engine.app.principal import Principal

    inbound.receive(App(live.config, live.clock), Principal.asserted("alice"), incident, {
        "source": "x", "author": "@patient", "text": "Still waiting <b>6 hours</b> in your ER",
        "posted_at": "2026-03-14T08:30:00Z"})

    # the comms officer renders the stage's template
    comms = signed_in(chromium, live, "carol")
    comms.goto(f"/incidents/{incident}")
    assert comms.locator("#msg-M1 .said").inner_text() == "Still waiting <b>6 hours</b> in your ER"
    comms.get_by_text("Mark M1 handled").click()
    comms.get_by_label("Reason").select_option("private")
    no_serious_violations(comms)
    comms.get_by_role("button", name="Mark handled").click()
    assert "handled privately, by carol" in comms.locator("#msg-M1").inner_text()
    comms.get_by_label("Template of this stage").select_option("public_ack")
    comms.get_by_role("button", name="Render drafts").click()
    assert comms.locator("#post-public_ack-x-en .tag").inner_text() == "draft"

    # the approver, on a phone, approves two language versions from the queue in one step
    approver = signed_in(chromium, live, "bob", viewport=PHONE)
    approver.goto("/queue")
    assert approver.locator("ol.queue > li").count() >= 2
    no_serious_violations(approver)
    approver.screenshot(path=str(shots / "queue-phone.png"))
    assert approver.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    approver.get_by_label("public_ack/x/en v1").check()
    approver.get_by_label("public_ack/x/es v1").check()
    approver.get_by_role("button", name="Approve the ticked versions").click()
    assert "approved public_ack/x/en v1, public_ack/x/es v1" in approver.locator(".notice").inner_text()
    assert approver.get_by_label("public_ack/x/en v1").count() == 0

    # the comms officer publishes what was approved
    comms.goto(f"/incidents/{incident}")
    comms.get_by_role("button", name="Publish public_ack/x/en").click()
    assert comms.locator("#post-public_ack-x-en .tag").inner_text() == "published"
    no_serious_violations(comms)

    # the board, as the lead sees it
    lead.goto("/board")
    assert incident in lead.locator(".board").inner_text()
    no_serious_violations(lead)
    lead.screenshot(path=str(shots / "board.png"), full_page=True)

    # the auditor downloads the bundle, and it verifies away from the server
    auditor = signed_in(chromium, live, "dave")
    auditor.goto("/incidents/" + incident + "/report")
    assert "ER wait time complaint <script>alert(1)</script>" in auditor.locator("h1").inner_text()
    auditor.goto(f"/incidents/{incident}/audit")
    assert "The log verifies" in auditor.locator("[role=status]").inner_text()
    no_serious_violations(auditor)
    with auditor.expect_download() as download:
        auditor.get_by_role("link", name="The auditor's bundle").click()
    bundle = live.tmp / "bundle.zip"
    download.value.save_as(bundle)
    result = CliRunner().invoke(main, ["verify", "--bundle", str(bundle)], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    events = live.events(incident)
    approvals = [e for e in events if e.type == "PostApproved"]
    assert [(e.actor, e.data["post"], e.data["auth"]) for e in approvals] == [
        ("bob", "public_ack/x/en", "password"), ("bob", "public_ack/x/es", "password")]
    assert all(e.data["signature"]["sha256"] == e.data["sha256"] for e in approvals)
    assert [e.actor for e in events if e.type == "PostPublished"] == ["carol"]



def test_an_administrator_manages_accounts_in_the_browser_and_the_admin_pages_are_accessible(live, chromium):
    from engine.accounts import ACCOUNTS
    from engine.app.principal import Principal

    live.accounts().grant_admin(Principal.asserted("root"), "alice", live.clock.now())
    admin = signed_in(chromium, live, "alice")
    admin.get_by_role("link", name="Admin").click()
    admin.wait_for_url("**/admin")
    no_serious_violations(admin)
    admin.get_by_label("Account name").fill("erin")
    admin.get_by_label("Password (at least 12 characters)").fill("a brand new passphrase")
    admin.get_by_label("The same password again").fill("a brand new passphrase")
    admin.get_by_role("button", name="Add the account").click()
    assert "added account erin" in admin.locator(".notice").inner_text()
    admin.get_by_role("button", name="Disable erin").click()
    assert "disabled account erin" in admin.locator(".notice").inner_text()
    admin.goto("/admin/users/erin")
    assert "account erin disabled" in admin.locator("main").inner_text()
    no_serious_violations(admin)
    admin.goto("/admin/tokens")
    admin.get_by_label("What it is for").fill("laptop CLI")
    admin.get_by_role("button", name="Issue the token").click()
    assert admin.get_by_label("Token", exact=True).input_value().startswith("pbk_")
    no_serious_violations(admin)
    changes = [(e.type, e.actor) for e in live.accounts().store.events(ACCOUNTS)
               if e.type in ("UserAdded", "UserDisabled", "TokenCreated")]
    assert changes[-3:] == [("UserAdded", "alice"), ("UserDisabled", "alice"), ("TokenCreated", "alice")]


def test_the_report_inside_the_app_is_styled_without_breaking_the_content_policy(live, chromium):
    from server_support import INC, VIRAL_BODY

    assert live.call("POST", "/incidents", "alice", json=VIRAL_BODY).status_code == 201
    page = signed_in(chromium, live, "alice")
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"/incidents/{INC}/report")
    assert page.evaluate("getComputedStyle(document.body).color") == "rgb(27, 27, 27)"  # the report's own rule
    assert blocked == []
