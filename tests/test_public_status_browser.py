"""The public status page (`runbook serve --public`) in a real browser: Debian's headless Chromium
driven by Playwright, against a real server process, with the incident driven by `runbook` CLI
processes. At phone and desktop widths: it fits (no sideways scrolling), shows the update as
posted, runs no script and breaks no content security rule. Screenshots land in
test-output/public-status/ for a reviewer. Never `playwright install`: Debian's Chromium only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers.components import missing
from serve_helpers import DEADLINE, wait_for

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # said by the browser fixture, as a failure
    expect = sync_playwright = None

HERE = Path(__file__).parent
ROOT = HERE.parent
SHOTS = ROOT / "test-output" / "public-status"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "intake-token-for-the-public-browser-tests"
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">'
PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: chat-slow
title: "Chat slow in {region}"
service: messaging
severity: SEV2
escalation: rtc-default
parameters:
  region: {summary: Region, label: region}
symptoms:
  - {id: chat-slow, summary: Chat slow, match: {labels: {alertname: ChatSlow}}}
degradations:
  no-typing:
    summary: Typing indicators off
    set: {chat.typing.enabled: false}
steps:
  - id: tell
    kind: communicate
    title: Tell customers
    audience: customers
    channel: Status page
    template: "Some messages are delayed by a few minutes. We are looking into it."
  - id: internal
    kind: communicate
    title: Tell the team
    audience: internal
    channel: "#incidents"
    template: "Region {region}: kubectl -n chat get pods"
"""
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


@pytest.fixture
def server(tmp_path):
    import runbook

    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "chat.yaml").write_text(PLAYBOOK)
    source = str(Path(runbook.__file__).resolve().parent.parent)
    env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "incidents.db"), "HOME": str(tmp_path),
           "RUNBOOK_SERVE_TOKEN": TOKEN, "RUNBOOK_PLUGINS_DIR": str(tmp_path / "no-plugins"),
           "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           # the form shows with a mail server set; nothing listens there (delivery is tested elsewhere)
           "RUNBOOK_SMTP": "127.0.0.1:1", "RUNBOOK_MAIL_FROM": "status@example.com",
           "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
    env.pop("RUNBOOK_CATALOG", None)
    env.pop("RUNBOOK_VIEW_TOKEN", None)
    catalog = ["--catalog", str(ROOT / "playbooks"), "--catalog", str(tmp_path / "catalog")]
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "runbook", *catalog, "serve", "--public", "--port", "0",
                             "--tick", "0.2"], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env,
                            cwd=tmp_path)

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"runbook serve exited {proc.returncode}: {log.read_text()}")
        return re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())

    port = int(wait_for(listening, "runbook serve to listen").group(1))

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "runbook", *catalog, *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    yield f"http://127.0.0.1:{port}", run
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def browser(tmp_path):
    if sync_playwright is None:
        missing("playwright", "run ./scripts/test (it installs the test extras) or pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"Chromium ({CHROMIUM})", "run ./scripts/test (it installs the Debian package chromium)")
    contexts = []
    with sync_playwright() as p:
        def launch(**options):
            context = p.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="profile-", dir=tmp_path), executable_path=CHROMIUM, headless=True,
                args=ARGS, **options)
            contexts.append(context)
            return context
        yield launch
        for context in contexts:
            context.close()


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_public_page_fits_and_shows_the_update_as_posted(server, browser, width):
    url, run = server
    iid = run("incident", "open", "chat-slow", "--as", "ana", "--param", f"region={HOSTILE}")
    run("incident", "step", iid, "tell", "--done", "--as", "bo")
    run("incident", "step", iid, "internal", "--done", "--as", "bo")
    run("incident", "degrade", iid, "no-typing", "--as", "bo")
    context = browser(viewport=WIDTHS[width])
    page = context.pages[0] if context.pages else context.new_page()
    seen = []
    page.on("console", lambda m: seen.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));")
    page.goto(f"{url}/status")
    expect(page.locator("p.overall")).to_have_text("Minor Service Outage", timeout=DEADLINE * 1000)
    expect(page.locator("h1")).to_have_text("Example Calls status")
    messaging = page.locator("li.component", has_text="Messaging")
    expect(messaging.locator(".component-state")).to_have_text("Degraded performance")
    expect(messaging.locator(".says")).to_have_text("typing indicators are off")
    update = page.locator("article.public-incident").first
    expect(update.locator("h3")).to_have_text("Degraded performance: Messaging")
    expect(update.locator(".phase")).to_have_text("Investigating")
    expect(update.locator(".body")).to_have_text("Some messages are delayed by a few minutes. We are looking "
                                                 "into it.")
    text = page.locator("body").inner_text()
    for internal in (iid, "kubectl", "SEV2", "bo", "ana", "#incidents", "<script"):
        assert internal not in text, internal
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"
    days = page.locator("li.component").first.locator(".day")
    assert days.count() == 90
    assert days.first.bounding_box()["width"] > 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    assert page.evaluate("window.__csp || []") == []
    assert seen == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"status-{width}.png"), full_page=True)
    for feed in ("history.atom", "history.rss"):  # the links the page offers work
        assert page.request.get(f"{url}/{feed}").ok


def test_the_subscribe_form_posts_under_the_pages_content_security_policy(server, browser):
    url, _ = server
    context = browser(viewport=WIDTHS["phone"])
    page = context.pages[0] if context.pages else context.new_page()
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));")
    page.goto(f"{url}/status")
    page.get_by_label("Email").fill("sam@example.com")
    page.get_by_label("Messaging").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("h1")).to_have_text("Check your inbox", timeout=DEADLINE * 1000)
    assert page.evaluate("window.__csp || []") == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
