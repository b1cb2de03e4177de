"""The status page of `runbook serve`: read-only HTML for everyone who is not at the terminal.

    GET /                         open incidents, those resolved in the last 7 days, open action items
    GET /incidents/{id}           one incident: targets, tracks and current steps, degradations,
                                  the escalation ladder with who is on call, status updates posted
                                  by communicate steps, past incidents like it (seen before), its
                                  action items, roles, the timeline
    GET /incidents/{id}/postmortem.md   the postmortem export (text, once resolved)
    GET /live                     server-sent events: one per event appended to any incident, by
                                  anyone; a reconnect sends Last-Event-ID and catches up from there.
                                  Every viewer is fed by the service's one broadcaster: a thousand
                                  viewers cost one watcher of the log, not a thousand pollers.
                                  At most --max-viewers streams at once (default 1000): 503 beyond;
                                  each stream ends when the server stops
    GET /static/...               the style sheet and the one script (no inline script anywhere)

Every page needs the viewer token (RUNBOOK_VIEW_TOKEN; not the intake token): as a bearer header,
or `?token=` on the first visit, which is answered with a redirect that drops it from the address
and an HttpOnly cookie. Nothing on the page writes.

The page renders the views the TUI renders (runbook/views.py: every text already through
runbook.text), through Jinja2 with autoescaping on, under a content security policy that allows
scripts and styles only from /static: a label holding `<script>` is text, and could not run
even if it were not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runbook.broadcaster import changes_after
from runbook.engine.clock import iso
from runbook.errors import NotFoundError, RunbookError
from runbook.read_models import action_item_rows, similar_incidents
from runbook.text import one_line, shown
from runbook.views import build_view

log = logging.getLogger("runbook.serve")

HERE = Path(__file__).parent
COOKIE = "runbook_view"
RESOLVED_DAYS = 7
MAX_OPEN = 200  # open incidents shown in full on the front page (an alert storm can open thousands)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY"}

_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                         trim_blocks=True, lstrip_blocks=True)


def duration(seconds: float | None) -> str:
    """12s, 4m05s, 3h02m, 2d04h: short and exact enough for a glance."""
    if seconds is None:
        return ""
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m{s % 60:02d}s"
    elif s < 86400:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return f"-{text}" if seconds < 0 else text


# instructions are Markdown (code blocks, lists, links): rendered with raw HTML off, so markup in
# them is shown as text, and without images (nothing is fetched from elsewhere)
_markdown = MarkdownIt("commonmark", {"html": False}).disable("image")
_templates.filters["markdown"] = lambda text: Markup(_markdown.render(text))
_templates.filters["duration"] = duration
_templates.filters["utc"] = lambda at: f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else ""
_templates.filters["hm"] = lambda at: f"{at:%H:%M:%S}" if at else ""
# an incident id as one path segment of a link: ids are generated, but an id given to the engine
# is not checked there, and a link must still lead to that incident and nothing else
_templates.filters["segment"] = lambda text: quote(str(text), safe="")


class Update(NamedTuple):
    """A status update a communicate step posted: where it went and what it said."""

    step: str
    title: str
    post_to: str
    at: datetime | None
    text: str


class Resolved(NamedTuple):
    id: str
    title: str
    severity: str
    drill: bool
    opened_at: datetime
    resolved_at: datetime | None
    phase: str  # follow-up (work left after resolve), closed, or resolved
    followup_left: int
    followup_steps: int


class Static(StaticFiles):
    """/static: the style sheet, the script and the icon, under the same headers as the pages
    (nosniff keeps a browser from taking them for anything else), but cacheable."""

    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.update({k: v for k, v in HEADERS.items() if k != "Cache-Control"})
        return response


def cookie_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the token itself is not stored in browsers."""
    return hmac.new(token.encode(), b"runbook status page cookie", hashlib.sha256).hexdigest()


def viewer(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), cookie_value(token).encode())


def page(name: str, status: int = 200, **context) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**context), status_code=status, headers=HEADERS)


def updates(state) -> tuple[Update, ...]:
    """The messages communicate steps posted, newest first, as they were posted (the record of each:
    its text, title and where it went), never filled again from today's values."""
    out = []
    for event in state.messages:
        posted = event.record
        where = " · ".join(x for x in (posted.channel, posted.audience) if x)
        out.append(Update(one_line(posted.step), one_line(posted.title or posted.step), one_line(where), event.at,
                          shown(posted.text)))
    return tuple(reversed(out))


def followup_counts(state) -> tuple[int, int]:
    track = state.playbook.followup
    if track is None:
        return 0, 0
    left = sum(1 for s in track.steps if state.steps[s.id].status not in ("done", "skipped"))
    return left, len(track.steps)


def overview(engine) -> dict:
    """What / shows: a view of each open incident (follow-up ones too), then those resolved lately."""
    now = engine.clock.now()
    cursor = engine.change_cursor()
    open_views, resolved = [], []
    since = iso(now - timedelta(days=RESOLVED_DAYS))
    rows = engine.list(open_only=True)
    for row in rows[:MAX_OPEN]:
        try:
            open_views.append(build_view(engine.state(row["id"]), now))
        except RunbookError as exc:
            log.warning("status page: %s: %s", row["id"], one_line(str(exc)))
    for row in engine.list(resolved_since=since):
            try:
                state = engine.state(row["id"])
            except RunbookError:
                continue
            left, total = followup_counts(state)
            resolved.append(Resolved(one_line(state.id), one_line(state.title), one_line(state.severity),
                                     state.drill, state.opened_at, state.resolved_at, state.phase, left, total))
    return {"incidents": open_views, "more": max(0, len(rows) - MAX_OPEN), "resolved": resolved, "cursor": cursor,
            "now": now, "actions": action_item_rows(engine)}


def detail(engine, incident: str) -> dict:
    incident = engine.resolve_id(incident)
    now = engine.clock.now()
    cursor = engine.change_cursor()
    state = engine.state(incident)
    check = engine.integrity(incident, full=False)
    view = build_view(state, now, "" if check.ok else check.warning(state.id))
    left, total = followup_counts(state)
    return {"view": view, "updates": updates(state), "cursor": cursor, "now": now,
            "followup_left": left, "followup_steps": total, "seen": similar_incidents(engine, incident),
            "items": action_item_rows(engine, incident=incident, open_only=False)}


def postmortem(engine, incident: str) -> str:
    from runbook.engine.metrics import export_markdown

    state = engine.state(engine.resolve_id(incident))
    return export_markdown(state)


def routes(service, token: str, max_viewers: int) -> list:
    """The status page's routes: pages read on the service's reads lane, /live fed by its broadcaster
    to at most `max_viewers` streams at once."""

    def denied(request: Request) -> Response:
        return page("denied.html", status=401)

    def admit(request: Request):
        """None when the viewer may look; else the answer: a redirect that swaps ?token= for the
        cookie, or 401."""
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), token.encode()):
                return denied(request)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303, headers=HEADERS)
            response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict", path="/",
                                secure=request.url.scheme == "https", max_age=30 * 86400)
            return response
        return None if viewer(request, token) else denied(request)

    async def home(request: Request):
        if (answer := admit(request)) is not None:
            return answer
        return page("home.html", **await service.reads.run(overview))

    async def incident(request: Request):
        if (answer := admit(request)) is not None:
            return answer
        try:
            data = await service.reads.run(detail, request.path_params["incident"])
        except RunbookError as exc:  # no such incident, an ambiguous start, a record too damaged to load
            return page("missing.html", status=404 if isinstance(exc, NotFoundError) else 409,
                        message=one_line(str(exc)))
        return page("incident.html", **data)

    async def export(request: Request):
        if (answer := admit(request)) is not None:
            return answer
        try:
            text = await service.reads.run(postmortem, request.path_params["incident"])
        except RunbookError as exc:
            return PlainTextResponse(one_line(str(exc)) + "\n", headers=HEADERS,
                                     status_code=404 if isinstance(exc, NotFoundError) else 409)
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8", headers=HEADERS)

    async def live(request: Request):
        if not viewer(request, token):
            return denied(request)
        if service.broadcaster.queues() >= max_viewers:  # counted and joined in one turn of the loop
            return PlainTextResponse(f"too many live viewers: this server streams to at most {max_viewers} "
                                     "(runbook serve --max-viewers); the page still works, reload it for news\n",
                                     status_code=503, headers={**HEADERS, "Retry-After": "60"})
        raw = (request.headers.get("last-event-id") or request.query_params.get("after") or "").strip()
        changes = service.broadcaster.queue()  # before reading where the log ends: nothing falls between
        try:
            now = await service.reads.run(lambda engine: engine.change_cursor())
        except BaseException:
            service.broadcaster.drop(changes)
            raise
        # a position that is not a number, or ahead of the database (restored from a backup,
        # another database): follow from now rather than wait for a position that never comes
        cursor = int(raw) if raw.isdigit() and int(raw) <= now else now

        async def stream():
            nonlocal cursor
            try:
                yield "retry: 1000\n\n"
                while cursor < now:  # a reconnect catches up on what it missed
                    missed = await service.reads.run(changes_after, cursor)
                    if not missed:
                        break
                    cursor = missed[-1].position
                    yield "".join(change.sse for change in missed)
                while True:
                    batch = await changes.get()  # the broadcaster sends an empty one as the heartbeat
                    if batch is None:  # the server is stopping: end the stream, the browser reconnects
                        return
                    if not batch.changes:
                        yield b": still here\n\n"
                    elif batch.changes[0].position > cursor:  # the usual case: the bytes every viewer shares
                        cursor = batch.changes[-1].position
                        yield batch.sse
                    elif fresh := [change.sse for change in batch.changes if change.position > cursor]:
                        cursor = batch.changes[-1].position  # caught up past part of it on connecting
                        yield "".join(fresh)
            finally:
                service.broadcaster.drop(changes)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={**HEADERS, "X-Accel-Buffering": "no"})

    return [Route("/", home, methods=["GET"]),
            Route("/incidents/{incident}", incident, methods=["GET"]),
            Route("/incidents/{incident}/postmortem.md", export, methods=["GET"]),
            Route("/live", live, methods=["GET"]),
            Mount("/static", app=Static(directory=HERE / "static"), name="static")]


def off_routes() -> list:
    """Without a viewer token the page is off, and says how to turn it on."""
    async def off(request: Request):
        return PlainTextResponse("the status page is off: start runbook serve with RUNBOOK_VIEW_TOKEN set "
                                 "(or --view-token-file)\n", status_code=404, headers=HEADERS)
    return [Route("/", off, methods=["GET"]), Route("/incidents/{incident}", off, methods=["GET"])]
