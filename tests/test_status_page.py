"""The status page of `runbook serve` over HTTP (Starlette's test client) on a real SQLite store:
who may look, what the headers promise, and that hostile text in any field a person or an alert
can fill arrives as text. A real browser drives the same pages in test_status_page_browser.py.
"""

from __future__ import annotations

import html
import html.parser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine.intake import Alert
from runbook.serve import web
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.store import Store

HERE = Path(__file__).parent
TOKEN = "t0ken-for-the-intake-tests"
VIEW = "v1ewer-token-for-the-status-page"
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
roles:
  commander: {title: Incident commander}
symptoms:
  - {id: trouble, summary: Trouble, match: {labels: {alertname: Trouble}}}
steps:
  - id: tell
    kind: communicate
    title: "Tell {what}"
    channel: "#status"
    template: "We look at {what} now."
  - id: look
    title: "Look at {what}"
    instructions: "Inspect {what} closely."
"""


@pytest.fixture
def engine(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "hostile.yaml").write_text(HOSTILE_PLAYBOOK)
    catalog = load_catalog([str(tmp_path / "catalog"), str(HERE / "serve_catalog"),
                            str(HERE / "fixtures" / "catalog" / "playbooks")])
    assert not catalog.errors
    eng = Engine(Store(str(tmp_path / "incidents.db"), key=None), VirtualClock(), None, catalog)
    yield eng
    eng.store.close()


def client_for(engine, view_token=VIEW):
    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0, view_token=view_token))
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def client(engine):
    with client_for(engine) as c:
        yield c


@pytest.fixture
def viewer(engine):
    """A client that holds the viewer's cookie, as a browser does after the token link."""
    with client_for(engine) as c:
        assert c.get(f"/?token={VIEW}").status_code == 303
        yield c


class Tags(html.parser.HTMLParser):
    """Every start tag and its attributes, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    @staticmethod
    def text_of(page: str) -> str:
        """The page's text as a reader gets it (no markup, entities decoded)."""
        parts = []
        reader = html.parser.HTMLParser()
        reader.handle_data = parts.append
        reader.feed(page)
        return "".join(parts)


def assert_inert(page: str) -> None:
    """No element or attribute came from the hostile text: the one script is ours, from /static."""
    tags = Tags(page).tags
    assert [a.get("src") for t, a in tags if t == "script"] in ([], ["/static/live.js"])
    assert not [t for t, a in tags if t == "img"]
    assert not [(t, a) for t, a in tags if any(name.startswith("on") for name in a)]


def test_every_page_needs_the_viewer_token(client, engine):
    iid = engine.open("queue-stuck", "ana").id
    engine.resolve(iid, "ana")
    for path in ("/", f"/incidents/{iid}", f"/incidents/{iid}/postmortem.md", "/live"):
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer nope"}):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert iid not in answer.text
        wrong = client.get(f"{path}?token=wrong-{VIEW}")
        assert wrong.status_code in (401,) and "set-cookie" not in wrong.headers
    assert "Viewer token needed" in client.get("/").text


def test_the_token_link_trades_the_token_for_a_cookie_and_keeps_the_rest_of_the_address(client, engine):
    iid = engine.open("queue-stuck", "ana").id
    answer = client.get(f"/incidents/{iid}?x=1&token={VIEW}&y=two%20words")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/incidents/{iid}?x=1&y=two+words"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{web.COOKIE}=") and VIEW not in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert client.cookies[web.COOKIE] == web.cookie_value(VIEW) != VIEW
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and iid in page.text
    assert client.get("/").status_code == 200


def test_a_cookie_made_for_another_token_is_refused(engine):
    with client_for(engine) as c:
        c.cookies.set(web.COOKIE, web.cookie_value("some-other-viewer-token"))
        assert c.get("/").status_code == 401
        c.cookies.set(web.COOKIE, VIEW)  # the token itself is not the cookie either
        assert c.get("/").status_code == 401


def test_bearer_viewer_token_works_without_a_cookie(client, engine):
    iid = engine.open("queue-stuck", "ana").id
    page = client.get("/", headers={"Authorization": f"Bearer {VIEW}"})
    assert page.status_code == 200 and iid in page.text and "set-cookie" not in page.headers


def test_every_answer_carries_the_security_headers(viewer, engine):
    iid = engine.open("queue-stuck", "ana").id
    engine.resolve(iid, "ana")
    answers = [viewer.get("/"), viewer.get(f"/incidents/{iid}"), viewer.get(f"/incidents/{iid}/postmortem.md"),
               viewer.get("/incidents/INC-NOSUCH"), viewer.get("/incidents/INC-NOSUCH/postmortem.md"),
               viewer.get(f"/?token={VIEW}")]
    with client_for(engine) as stranger:  # the stream itself never ends: its refusal carries them too
        answers += [stranger.get("/"), stranger.get("/live")]
    for answer in answers:
        headers = answer.headers
        assert headers["content-security-policy"] == web.CSP, answer.url
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_static_files_carry_the_security_headers_and_may_be_cached(client):
    for path, kind in (("/static/page.css", "text/css"), ("/static/live.js", "javascript"),
                       ("/static/favicon.svg", "image/svg+xml")):
        answer = client.get(path)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == web.CSP
        assert "cache-control" not in answer.headers


def test_pages_hold_no_inline_script_or_style(viewer, engine):
    iid = engine.open("queue-stuck", "ana").id
    for path in ("/", f"/incidents/{iid}"):
        tags = Tags(viewer.get(path).text).tags
        assert [a["src"] for t, a in tags if t == "script"] == ["/static/live.js"]
        assert not [t for t, a in tags if t == "style" or "style" in a]


def test_hostile_text_in_every_field_is_shown_as_text(viewer, engine):
    iid = engine.open("hostile", "ana", params={"what": HOSTILE}).id
    engine.complete(iid, "ana", "tell")  # the status update posted, with the parameter in it
    actor = '"><img src=x onerror="window.__pwned=3">'  # names are typed by people too
    engine.note(iid, actor, HOSTILE)
    engine.acknowledge(iid, actor)
    for path in ("/", f"/incidents/{iid}"):
        page = viewer.get(path).text
        assert_inert(page)
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=&#34;" in page
    page = viewer.get(f"/incidents/{iid}").text
    escaped = web._templates.from_string("{{ x }}").render(x=HOSTILE)
    # instructions are Markdown, rendered with raw HTML off: the markup is text there too
    assert f"<p>Inspect {html.escape(HOSTILE)} closely.</p>" in page
    for where in (f"<h1>Trouble with {escaped}</h1>", f"what={escaped}", f"We look at {escaped} now.",
                  f"note: {escaped}",
                  "acknowledged by &#34;&gt;&lt;img src=x onerror=&#34;window.__pwned=3&#34;&gt;"):
        assert where in page, where


def test_hostile_alert_labels_and_summary_are_shown_as_text(viewer, engine):
    labels = {"alertname": "QueueStuck", "service": "jobs", "team": HOSTILE}
    outcome = engine.receive_alerts([Alert("fe11", "firing", "2026-11-30T10:00:00Z", labels,
                                           annotations={"summary": HOSTILE})])[0]
    iid = outcome.incident
    assert iid
    again = engine.receive_alerts([Alert("fe11", "firing", "2026-11-30T11:00:00Z", labels,
                                         annotations={"summary": HOSTILE})])[0]
    assert again.outcome == "attached"
    page = viewer.get(f"/incidents/{iid}").text
    assert_inert(page)
    assert "&lt;script&gt;window.__pwned=1" in page
    assert_inert(viewer.get("/").text)


def test_an_incident_id_is_escaped_in_links_and_attributes_too(viewer, engine):
    """Ids are generated, but an id given to the engine is not checked there: the page must hold."""
    odd = 'INC-"><script>x</script>'
    engine.open("queue-stuck", "ana", incident=odd)
    page = viewer.get("/").text
    assert_inert(page)
    hrefs = [a["href"] for t, a in Tags(page).tags if t == "a" and "href" in a]
    assert "/incidents/INC-%22%3E%3Cscript%3Ex%3C%2Fscript%3E" in hrefs
    assert not [h for h in hrefs if "<" in h or '"' in h]


def test_control_and_bidi_characters_are_shown_as_escapes(viewer, engine):
    iid = engine.open("queue-stuck", "ana").id
    engine.note(iid, "ana", "red \x1b[31m and \u202eevil")
    page = viewer.get(f"/incidents/{iid}").text
    assert "\x1b" not in page and "\u202e" not in page
    assert "\\x1b[31m" in page and "\\u202e" in page


def test_unknown_incident_is_a_404_page_not_a_traceback(viewer):
    answer = viewer.get("/incidents/INC-NOSUCH")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in answer.text and "INC-NOSUCH" in answer.text
    assert "Traceback" not in answer.text
    assert viewer.get("/incidents/INC-NOSUCH/postmortem.md").status_code == 404


def test_postmortem_is_markdown_for_viewers_only(viewer, client, engine):
    iid = engine.open("hostile", "ana", params={"what": "the <b>cache</b>"}).id
    engine.note(iid, "ana", "restarted it")
    engine.resolve(iid, "ana")
    answer = viewer.get(f"/incidents/{iid}/postmortem.md")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
    assert "restarted it" in answer.text and "<b>" not in answer.text
    assert client.get(f"/incidents/{iid}/postmortem.md").status_code == 401
    assert f'href="/incidents/{iid}/postmortem.md"' in viewer.get(f"/incidents/{iid}").text


def test_front_page_lists_open_then_recently_resolved_incidents(viewer, engine):
    still = engine.open("queue-stuck", "ana").id
    done = engine.open("hostile", "ana", params={"what": "billing"}).id
    engine.resolve(done, "ana")
    old = engine.open("hostile", "ana", params={"what": "long ago"}).id
    engine.resolve(old, "ana")
    engine.clock.advance(days=web.RESOLVED_DAYS, hours=1)
    newer = engine.open("hostile", "ana", params={"what": "lately"}).id
    engine.resolve(newer, "ana")
    page = viewer.get("/").text
    assert "Open incidents (1)" in page and still in page
    assert "Resolved in the last 7 days (1)" in page and newer in page
    assert done not in page and old not in page


def test_the_page_is_off_without_a_viewer_token_and_says_how_to_turn_it_on(engine):
    with client_for(engine, view_token=None) as c:
        for path in ("/", "/incidents/INC-ANY"):
            answer = c.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 404
            assert "RUNBOOK_VIEW_TOKEN" in answer.text and "--view-token-file" in answer.text
        assert c.get("/healthz").text == "ok\n"


def test_serve_refuses_a_viewer_token_equal_to_the_intake_token(tmp_path):
    env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "HOME": str(tmp_path),
           "RUNBOOK_SERVE_TOKEN": TOKEN, "RUNBOOK_VIEW_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(web.__file__).parents[2]),
                                                    os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "runbook", "--catalog", str(HERE / "serve_catalog"), "serve",
                           "--port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "the viewer token is the intake token" in done.stderr
    assert "listening" not in done.stderr


def test_separators_keep_their_spaces_between_template_blocks(viewer, engine):
    iid = engine.open("calls-failing-one-region", "ana", params={"region": "eu-west-1"}).id
    resolved = engine.open("queue-stuck", "ana").id
    engine.resolve(resolved, "ana")
    pages = [viewer.get("/").text, viewer.get(f"/incidents/{iid}").text]
    engine.acknowledge(iid, "bo")
    pages += [viewer.get("/").text, viewer.get(f"/incidents/{iid}").text, viewer.get(f"/incidents/{resolved}").text]
    for page in pages:
        text = " ".join(Tags.text_of(page).split())
        assert not re.findall(r"\S·|·\S", text), re.findall(r".{20}(?:\S·|·\S).{20}", text)


MARKDOWN_PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: markdown
title: Markdown instructions
service: web
severity: SEV2
escalation: rtc-default
steps:
  - id: look
    title: Look at the pods
    instructions: |
      Check the **pods** first:

      ```
      kubectl -n chat get pods
      ```

      - then the [dashboard](https://grafana.example/d/chat)
      - <b>not bold</b> <script>window.__pwned=1</script>
      - ![logo](https://evil.example/x.png) [click](javascript:alert(1))
"""


def test_instructions_are_rendered_as_safe_markdown(viewer, engine, tmp_path):
    from runbook.catalog.loader import load_catalog

    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "markdown.yaml").write_text(MARKDOWN_PLAYBOOK)
    engine.catalog = load_catalog([str(tmp_path / "md"), str(HERE / "fixtures" / "catalog" / "playbooks")])
    iid = engine.open("markdown", "ana").id
    page = viewer.get(f"/incidents/{iid}").text
    assert "<strong>pods</strong>" in page
    assert "<pre><code>kubectl -n chat get pods\n</code></pre>" in page
    assert '<a href="https://grafana.example/d/chat">dashboard</a>' in page
    assert "&lt;b&gt;not bold&lt;/b&gt; &lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert_inert(page)  # no image from the Markdown either
    hrefs = [a.get("href", "") for t, a in Tags(page).tags if t == "a"]
    assert not [h for h in hrefs if h.startswith("javascript")]


def test_the_front_page_shows_parameters_shares_in_words_and_next_steps_as_not_done(viewer, engine):
    iid = engine.open("calls-failing-one-region", "ana", params={"region": "eu-west-1"}).id
    text = " ".join(Tags.text_of(viewer.get("/").text).split())
    assert "region: eu-west-1" in text
    card = text[text.index(iid):]
    assert "next step “" in card and "not done yet)" in card
    assert ": All clear (" not in card  # a step's title alone never reads as the incident's state
    detail = " ".join(Tags.text_of(viewer.get(f"/incidents/{iid}").text).split())
    assert "next step “" in detail and "not done yet)" in detail


def test_posts_on_a_cadence_show_an_update_due_and_the_next_update_as_recorded(tmp_path):
    """/ and the incident's page say which update is due for a person (since when, why: as the
    post_due event recorded it) and when each other posts next; /live carries the post_due."""
    from runbook.broadcaster import changes_after

    clock = VirtualClock()
    engine = Engine(Store(str(tmp_path / "incidents.db"), key=None), clock, None,
                    load_catalog([str(HERE / "lang_catalog")]))
    try:
        iid = engine.open("checkout-outage", "ana", params={"impact": "EU"}).id
        engine.approve(iid, "ana", "status")
        engine.complete(iid, "ana", "status")
        engine.skip(iid, "ana", "support", "not in this test")
        engine.complete(iid, "ana", "written", message="Checkout is slow.")
        engine.skip(iid, "ana", "execs", "not in this test")
        clock.advance(hours=1)
        engine.tick(iid)
        with client_for(engine) as viewer:
            assert viewer.get(f"/?token={VIEW}").status_code == 303
            pages = [Tags.text_of(viewer.get(path).text) for path in ("/", f"/incidents/{iid}")]
        for text in pages:
            assert ("Update due: “Post the words approved for customers” since 10:00:00 UTC (repeat 1): it is "
                    "written when posted (compose: true)") in text
            assert "Next update: “Update the status page” at 10:30:00 UTC (every 30m)" in text
        lines = [change.line for change in changes_after(engine, 0)]
        assert any(f"{iid} · runbook: update due: step written (repeat 1) was not posted: it is written when posted"
                   in line for line in lines), lines
        engine.post(iid, "ana", "written", message="Checkout is back.")
        engine.resolve(iid, "ana")
        with client_for(engine) as viewer:
            assert viewer.get(f"/?token={VIEW}").status_code == 303
            text = Tags.text_of(viewer.get(f"/incidents/{iid}").text)
        assert "Update due" not in text and "Next update" not in text  # posts stop at resolve
    finally:
        engine.store.close()
