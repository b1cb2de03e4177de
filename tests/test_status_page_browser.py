"""The status page in a real browser: Debian's headless Chromium driven by Playwright, against a
real `runbook serve` process, with incidents opened and notes added by `runbook` CLI processes,
as responders would.

scripts/test installs the `chromium` package when it is missing; Playwright's own browser
downloads are never used (no `playwright install`). Waiting is on the page (Playwright's expect
with a deadline), never a sleep. Screenshots land in test-output/status-page/ for a reviewer.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

import pytest
from helpers.components import missing
from serve_helpers import DEADLINE, wait_for

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # said by the browser fixture, as a failure: a skipped browser test hides too much
    expect = sync_playwright = None

HERE = Path(__file__).parent
ROOT = HERE.parent
SHOTS = ROOT / "test-output" / "status-page"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "intake-token-for-the-browser-tests"
VIEW = "viewer-token-for-the-browser-tests"
# ms: a change made elsewhere shows on an open page without a reload; how soon is measured by
# benchmarks/status_page.py, not bounded here (a loaded machine is slow, not wrong)
LIVE = DEADLINE * 1000
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">'
HOSTILE_PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: hostile
title: "Trouble with {what}"
service: web
severity: SEV2
escalation: rtc-default
parameters:
  what: {summary: What is in trouble, label: what}
symptoms:
  - {id: trouble, summary: Trouble, match: {labels: {alertname: Trouble}}}
steps:
  - id: tell
    kind: communicate
    title: "Tell {what}"
    channel: "#status"
    template: "We look at {what} now."
  - "Look at {what}"
"""

CADENCE_PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: cadence-words
title: Calls degraded for customers
service: rtc
severity: SEV2
escalation: rtc-default
symptoms:
  - {id: calls-degraded, summary: Calls degraded}
steps:
  - id: words
    kind: communicate
    title: Tell customers in our words
    channel: status-page
    audience: customers
    compose: true
    template: "Calls are degraded."
    repeat: {every: 30m}
  - title: Fix the calls
    mitigates: true
"""


class Runbook:
    """`runbook serve` on a loopback port, and `runbook` commands on the same database."""

    def __init__(self, tmp: Path):
        import runbook

        self.tmp = tmp
        (tmp / "catalog").mkdir()
        (tmp / "catalog" / "hostile.yaml").write_text(HOSTILE_PLAYBOOK)
        (tmp / "catalog" / "cadence.yaml").write_text(CADENCE_PLAYBOOK)
        source = str(Path(runbook.__file__).resolve().parent.parent)
        self.env = {**os.environ, "RUNBOOK_DB": str(tmp / "incidents.db"), "HOME": str(tmp),
                    "RUNBOOK_SERVE_TOKEN": TOKEN, "RUNBOOK_VIEW_TOKEN": VIEW,
                    "RUNBOOK_PLUGINS_DIR": str(tmp / "no-plugins"),
                    "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
        self.env.pop("RUNBOOK_CATALOG", None)
        self.catalog = ["--catalog", str(tmp / "catalog"), "--catalog", str(HERE / "serve_catalog"),
                        "--catalog", str(HERE / "fixtures" / "catalog" / "playbooks"),
                        "--catalog", str(HERE / "words_catalog")]
        self.proc = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"serve-{self.starts}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "runbook", *self.catalog, "serve", "--port",
                                      str(self.port), "--tick", "0.2"], stdout=subprocess.DEVNULL,
                                     stderr=open(log, "w"), env=self.env, cwd=self.tmp)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"runbook serve exited {self.proc.returncode}: {log.read_text()}")
            return re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())

        self.port = int(wait_for(listening, "runbook serve to listen").group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def run(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "runbook", *self.catalog, *args], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def open(self, playbook: str, *args: str) -> str:
        return self.run("incident", "open", playbook, "--as", "ana", *args)

    def note(self, incident: str, text: str, actor: str = "bo") -> None:
        self.run("incident", "note", incident, text, "--as", actor)


@pytest.fixture
def server(tmp_path):
    rb = Runbook(tmp_path)
    rb.start()
    yield rb
    rb.stop()


@pytest.fixture
def browser(tmp_path):
    """`launch(**context options)`: Debian's Chromium with a fresh profile each time."""
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


def watched(page):
    """Record what a page reports: console errors, CSP violations, uncaught errors."""
    seen = {"console": [], "errors": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));")
    return seen


def signed_in(launch, server, **options):
    """A page that has followed the token link once (so holds the cookie)."""
    context = launch(**options)
    page = context.pages[0] if context.pages else context.new_page()
    seen = watched(page)
    page.goto(f"{server.url}/?token={VIEW}")
    assert page.url == f"{server.url}/"
    return page, seen


def live(page):
    expect(page.locator("#live-state")).to_have_text("· live", timeout=DEADLINE * 1000)


def test_page_shows_an_incident_opened_from_the_cli(server, browser):
    iid = server.open("queue-stuck")
    page, seen = signed_in(browser, server)
    card = page.locator("article.incident", has_text=iid)
    expect(card).to_contain_text("Job queue stuck")
    expect(card).to_contain_text("not acknowledged")
    expect(page.locator("h2#open-h")).to_have_text("Open incidents (1)")
    card.get_by_role("link", name="Job queue stuck").click()
    expect(page).to_have_url(f"{server.url}/incidents/{iid}")
    expect(page.locator("h1")).to_have_text("Job queue stuck")
    expect(page.locator("ol.steps")).to_contain_text("Look at the consumers")
    assert seen == {"console": [], "errors": []}


def test_note_added_elsewhere_appears_on_the_open_page_without_a_reload(server, browser):
    iid = server.open("queue-stuck")
    page, seen = signed_in(browser, server)
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloaded
    server.note(iid, "consumers restarted on worker-3")
    expect(page.locator("ol.timeline")).to_contain_text("consumers restarted on worker-3", timeout=LIVE)
    expect(page.locator("#announce")).to_contain_text("consumers restarted on worker-3")
    assert page.evaluate("window.__sameDocument") is True
    # the front page follows every incident: a new one shows up too
    page.goto(f"{server.url}/")
    live(page)
    other = server.open("disk-full", "--param", "host=db-9.example")
    expect(page.locator("article.incident", has_text=other)).to_contain_text("Disk filling up on db-9.example",
                                                                              timeout=LIVE)
    expect(page.locator("h2#open-h")).to_have_text("Open incidents (2)")
    assert seen == {"console": [], "errors": []}


def test_hostile_text_is_shown_literally_and_runs_nothing_also_after_a_live_refresh(server, browser):
    iid = server.open("hostile", "--param", f"what={HOSTILE}")
    page, seen = signed_in(browser, server)
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    expect(page.locator("h1")).to_have_text(f"Trouble with {HOSTILE}")
    server.note(iid, HOSTILE)
    server.run("incident", "step", iid, "--done", "--as", "bo")  # tell: the status update posts
    expect(page.locator("ol.timeline")).to_contain_text(f"note: {HOSTILE}", timeout=LIVE)
    expect(page.locator(".update .message")).to_have_text(f"We look at {HOSTILE} now.", timeout=LIVE)
    expect(page.locator("#announce")).to_contain_text(f"{iid} · bo: step")
    # an alert whose labels and summary are hostile, through the intake, onto the front page
    page.goto(f"{server.url}/")
    live(page)
    alert = {"status": "firing", "labels": {"alertname": "QueueStuck", "service": "jobs", "team": HOSTILE},
             "annotations": {"summary": HOSTILE}, "startsAt": "2026-11-30T10:00:00Z",
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "bad1"}
    answer = page.request.post(f"{server.url}/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
                               data={"version": "4", "status": "firing", "receiver": "runbook", "groupKey": "{}",
                                     "alerts": [alert]})
    assert answer.ok, answer.text()
    opened = answer.json()["outcomes"][0]["incident"]
    expect(page.locator("article.incident", has_text=opened)).to_be_visible(timeout=LIVE)
    page.goto(f"{server.url}/incidents/{opened}")
    expect(page.locator("ol.timeline")).to_contain_text(HOSTILE)
    for where in (f"{server.url}/", f"{server.url}/incidents/{iid}", f"{server.url}/incidents/{opened}"):
        page.goto(where)
        assert page.evaluate("typeof window.__pwned") == "undefined", where
        assert page.locator("img").count() == 0
        assert page.locator("script").count() == 1  # /static/live.js, nothing else
    assert page.evaluate("window.__csp || []") == []
    assert seen == {"console": [], "errors": []}


def test_a_posted_message_stays_as_posted_after_its_parameter_changes(server, browser):
    """The status page shows the message as it was posted (its record), not its template filled
    again with today's values: open before and after the change, and on a fresh load."""
    iid = server.open("grow-volume")
    server.run("incident", "step", iid, "--skip", "grown by hand", "--as", "bo")
    server.run("incident", "approve", iid, "--as", "ana")
    page, seen = signed_in(browser, server)
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    server.run("incident", "step", iid, "--done", "--as", "liz")  # announce: posts, with size 10Gi
    posted = re.compile(r"^Uploads are slow while we grow storage to 10Gi \(\d+s in\)\.$")
    message = page.locator(".update .message")
    expect(message).to_have_text(posted, timeout=LIVE)
    expect(page.locator(".update h3")).to_contain_text("Tell customers about data")
    text = message.inner_text()
    server.run("incident", "param", iid, "size=9000Gi", "pvc=archive", "--as", "bo")
    expect(page.locator("ol.timeline")).to_contain_text("size=9000Gi", timeout=LIVE)  # the page did update
    expect(message).to_have_text(text)
    expect(page.locator(".update h3")).to_contain_text("Tell customers about data")
    page.reload()
    expect(page.locator("ol.timeline")).to_contain_text("size=9000Gi")
    expect(page.locator(".update")).to_have_count(1)
    expect(message).to_have_text(text)
    assert "9000Gi" not in page.locator("section[aria-labelledby=updates-h]").inner_text()
    assert seen == {"console": [], "errors": []}


def test_an_update_due_on_a_cadence_shows_and_its_post_turns_it_into_the_next_update_live(server, browser):
    """runbook serve's own tick records the update due (written when posted); the open page says
    so, and once it is posted from a terminal, says when the next one is due, without a reload."""
    from datetime import UTC, datetime, timedelta

    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import open_store

    # the incident's first post went out 31 minutes ago (an engine on a clock set then, on serve's database)
    store = open_store(str(server.tmp / "incidents.db"))
    try:
        host = PluginHost(Settings(flags_file=str(server.tmp / "flags.json"), plugins_dir=None), entry_points=False)
        engine = Engine(store, VirtualClock(datetime.now(UTC) - timedelta(minutes=31)), host,
                        load([path for path in server.catalog if path != "--catalog"]))
        iid = engine.open("cadence-words", "ana").id
        engine.complete(iid, "ana", "words", message="Calls are degraded in Europe.")
    finally:
        store.close()
    page, seen = signed_in(browser, server)
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    due = page.locator("p.cadence.due")
    expect(due).to_contain_text("Update due: “Tell customers in our words” since", timeout=LIVE)
    expect(due).to_contain_text("(repeat 1): it is written when posted (compose: true)")
    server.run("incident", "post", iid, "words", "--message", "Calls work again for most.", "--as", "bo")
    expect(page.locator("p.cadence")).to_have_text(
        re.compile(r"^Next update: “Tell customers in our words” at \d\d:\d\d:\d\d UTC \(every 30m\)$"), timeout=LIVE)
    expect(due).to_have_count(0)
    expect(page.locator(".update .message").first).to_have_text("Calls work again for most.")
    page.goto(f"{server.url}/")
    expect(page.locator("p.cadence")).to_contain_text("Next update: “Tell customers in our words” at")
    assert seen == {"console": [], "errors": []}


def test_viewer_token_cookie_and_refusals(server, browser):
    iid = server.open("queue-stuck")
    context = browser()
    page = context.new_page()
    assert page.goto(f"{server.url}/").status == 401
    expect(page.locator("h1")).to_have_text("Viewer token needed")
    assert page.goto(f"{server.url}/incidents/{iid}").status == 401
    assert page.goto(f"{server.url}/?token=wrong-{VIEW}").status == 401
    assert context.cookies() == []
    answer = page.goto(f"{server.url}/incidents/{iid}?token={VIEW}")
    assert answer.status == 200 and answer.request.redirected_from is not None
    assert answer.request.redirected_from.response().status == 303
    assert page.url == f"{server.url}/incidents/{iid}"  # the token left the address bar (and history)
    [cookie] = context.cookies()
    assert cookie["name"] == "runbook_view" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert VIEW not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    assert page.goto(f"{server.url}/").status == 200
    expect(page.locator("article.incident", has_text=iid)).to_be_visible()
    live(page)  # the live stream takes the cookie too
    stranger = browser().new_page()
    assert stranger.goto(f"{server.url}/incidents/{iid}").status == 401


def test_csp_is_sent_and_normal_pages_break_none_of_it(server, browser):
    iid = server.open("calls-failing-one-region", "--param", "region=eu-west-1")
    server.note(iid, "looking")
    page, seen = signed_in(browser, server)
    for where in ("/", f"/incidents/{iid}", "/incidents/INC-NOSUCH"):
        answer = page.goto(f"{server.url}{where}")
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert page.evaluate("window.__csp || []") == [], where
    assert seen["console"] == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
    seen["console"].clear()  # that one was the missing incident's page, as it should be
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    server.note(iid, "still looking")
    expect(page.locator("ol.timeline")).to_contain_text("still looking", timeout=LIVE)
    assert page.evaluate("window.__csp || []") == []
    assert seen == {"console": [], "errors": []}
    # the listener does hear violations: an inline script is refused
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 3';"
                  " document.body.append(s); }")
    page.wait_for_function("(window.__csp || []).length > 0", timeout=5000)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert "script-src-elem inline" in page.evaluate("window.__csp")


def test_page_catches_up_after_the_server_restarts(server, browser):
    iid = server.open("queue-stuck")
    page, _seen = signed_in(browser, server)
    streams = []
    page.on("request", lambda r: streams.append(r) if "/live" in r.url else None)
    page.goto(f"{server.url}/incidents/{iid}")
    live(page)
    server.note(iid, "before the restart")
    expect(page.locator("ol.timeline")).to_contain_text("before the restart", timeout=LIVE)
    server.stop()
    expect(page.locator("#live-state")).to_have_text("· reconnecting", timeout=DEADLINE * 1000)
    server.note(iid, "while the server was down")
    server.note(iid, "also while it was down", actor="cy")
    server.start()  # the same port
    expect(page.locator("ol.timeline")).to_contain_text("also while it was down", timeout=DEADLINE * 1000)
    expect(page.locator("ol.timeline")).to_contain_text("while the server was down")
    live(page)
    sent = [r.all_headers().get("last-event-id") for r in streams]
    assert sent[0] is None and sent[-1] and sent[-1].isdigit(), sent  # the reconnect said where it was
    server.note(iid, "after the restart")
    expect(page.locator("ol.timeline")).to_contain_text("after the restart", timeout=LIVE)


def test_page_works_without_javascript(server, browser):
    iid = server.open("queue-stuck")
    server.note(iid, "seen without scripts")
    page = browser(java_script_enabled=False).new_page()
    page.goto(f"{server.url}/?token={VIEW}")
    expect(page.locator("article.incident", has_text=iid)).to_contain_text("Job queue stuck")
    page.get_by_role("link", name="Job queue stuck").click()
    expect(page.locator("h1")).to_have_text("Job queue stuck")
    expect(page.locator("ol.timeline")).to_contain_text("seen without scripts")
    expect(page.locator("#live-state")).to_be_hidden()


def test_a11y_smoke_one_h1_a_main_landmark_and_every_section_headed(server, browser):
    iid = server.open("calls-failing-one-region", "--param", "region=eu-west-1")
    done = server.open("queue-stuck")
    server.run("incident", "resolve", done, "--as", "ana")
    page, _ = signed_in(browser, server)
    for where in ("/", f"/incidents/{iid}", f"/incidents/{done}", "/incidents/INC-NOSUCH"):
        page.goto(f"{server.url}{where}")
        expect(page.locator("h1")).to_have_count(1)
        expect(page.get_by_role("main")).to_have_count(1)
        assert page.evaluate("document.documentElement.lang") == "en"
        unheaded = page.evaluate("""() => [...document.querySelectorAll('section')].filter(s => {
            const label = s.getAttribute('aria-labelledby');
            const heading = label && document.getElementById(label);
            return !heading || !/^H[1-6]$/.test(heading.tagName) || !s.contains(heading)
                   || !heading.textContent.trim(); }).map(s => s.outerHTML.slice(0, 80))""")
        assert unheaded == [], where
        # headings do not skip a level (h1 -> h3 without an h2)
        levels = page.evaluate("[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])")
        assert all(b - a <= 1 for a, b in pairwise(levels)), (where, levels)
        # every link has a name
        assert page.evaluate("[...document.links].filter(a => !a.textContent.trim()).length") == 0
    page.goto(f"{server.url}/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()


CONTRAST = """() => {
  const parse = c => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
                             if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!text || box.width <= 1 || box.height <= 1 || getComputedStyle(el).visibility === 'hidden') continue;
    const a = lum(parse(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) {
      low.push(el.tagName + '.' + el.className + ' ' + ratio.toFixed(2) + ' ' + el.textContent.trim().slice(0, 40));
    }
  }
  return low;
}"""


def test_screenshots_at_phone_and_desktop_width_in_light_and_dark(server, browser):
    """Written to test-output/status-page/ for a reviewer to look at; checked here for what can be
    checked by a program: nothing wider than the screen, text contrast at least 4.5:1 (WCAG AA)."""
    iid = server.open("calls-failing-one-region", "--param", "region=eu-west-1")
    server.run("incident", "ack", iid, "--as", "ana")
    server.note(iid, "Signalling error rate in eu-west-1 is 14%; https://grafana.example.com/d/rtc-signalling-"
                     "overview?orgId=1&var-region=eu-west-1&from=now-1h&to=now")
    server.note(iid, "Deploy 2026.11.30-3 of signalling went out at 09:52; rolling back", actor="bo")
    server.open("hostile", "--param", "what=the billing API (a very-long-unbroken-hostname-of-the-billing-"
                                      "service.internal.example.com)")
    done = server.open("disk-full", "--param", "host=db-7.example")
    server.run("incident", "resolve", done, "--as", "ana")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        for name, size in (("phone", {"width": 390, "height": 844}), ("desktop", {"width": 1280, "height": 900})):
            page, seen = signed_in(browser, server, viewport=size, color_scheme=scheme,
                                   is_mobile=name == "phone", device_scale_factor=2 if name == "phone" else 1)
            for what, where in (("front", "/"), ("incident", f"/incidents/{iid}")):
                page.goto(f"{server.url}{where}")
                live(page)
                page.screenshot(path=SHOTS / f"{what}-{name}-{scheme}.png", full_page=True)
                wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert wide <= 0, f"{what} at {name} width in {scheme}: {wide}px wider than the screen"
                assert page.evaluate(CONTRAST) == [], f"{what} at {name} width in {scheme}"
            assert seen == {"console": [], "errors": []}
    assert len(list(SHOTS.glob("*.png"))) >= 8
