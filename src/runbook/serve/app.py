"""The HTTP side of `runbook serve`: Starlette routes on Uvicorn, every engine call through the
engine service (runbook/service.py).

Routes (JSON unless said otherwise):
  POST /alertmanager   Alertmanager webhook (payload version 4); bearer token required
  GET  /api/alerts     the alerts received, latest first (?outcome=unmatched), a page at a time
                       (?limit=, at most MAX_PAGE rows and about PAGE_BYTES; the next page's
                       address in the Link header, rel="next"); bearer token required
  GET  /healthz        "ok" when the incident database could take an append now (503 with why when
                       not: unreachable, or a lock runbook needs held elsewhere); no token
  POST /pagerduty      PagerDuty V3 webhooks (acknowledged, resolved, reassigned), verified by
                       their HMAC signature (serve/pagerduty.py)
  GET  /status, /api/v2/*.json, /history.atom, /history.rss   with --public: the public status
                       page, no token (serve/public.py)

Status codes say what a sender should do: 200 taken (each alert's outcome in the body; a
malformed alert is recorded as "rejected" with the reason, the others as usual); 400 the body
is not a delivery at all (not JSON, not version 4...: the reason; nothing stored; do not retry as
is); 401 no or wrong token; 408 the request did not arrive whole in time; 413 body over the limit;
503 the incident database is busy or cannot be written (retry later: Alertmanager does); 500 a
bug (logged, retried by the sender too).

Lanes: a delivery is recorded on the commands lane (the whole delivery in one transaction) and
answered as soon as it is durable; opening, joining or resolving the incidents it names, and the
timer pass, run on the ticks lane, which may wait on Prometheus, a pager or a flag backend; pages
and /api/alerts are read on the reads lane. So an alert is taken while a tick waits on a slow
check. Deliveries are recorded one after another in this process; across processes the store's
alert ledger keeps each alert to one incident.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from runbook.catalog.durations import format_duration
from runbook.engine.owner import DEFAULT_LEASE
from runbook.errors import RunbookError
from runbook.read_models import alert_rows
from runbook.serve.alertmanager import PayloadError, parse
from runbook.serve.pauses import CollectionsHeldOff
from runbook.service import EngineService
from runbook.text import one_line

log = logging.getLogger("runbook.serve")

DEFAULT_MAX_BODY = 1024 * 1024
CHAT_REFRESH = 5.0  # seconds: the chat's countdowns are brought up to date at least this often
DEFAULT_RETENTION = 30 * 86400  # the alert ledger forgets what it last heard of 30 days ago...
PRUNE_EVERY = 3600  # ...looked at once an hour (and at start)
REMIND_EVERY = 3600  # overdue action items looked at once an hour (each owner reminded at most once a day)
PAGE = 200  # /api/alerts rows by default
MAX_PAGE = 1000
PAGE_BYTES = 1024 * 1024  # a page ends after the row that takes it past this much JSON
MAX_VIEWERS = 1000  # live status-page streams at once: each holds a connection, a file descriptor and a queue


class ServeConfig(NamedTuple):
    token: str  # intake token (Alertmanager's http_config.authorization credentials)
    max_body: int = DEFAULT_MAX_BODY
    tick_every: float = 1.0  # seconds between timer passes over the open incidents (0: no ticking)
    catalog_paths: tuple = ()  # reloaded on the timer pass when a file under them changes
    view_token: str | None = None  # the status page's viewer token; None: the page is off
    pagerduty_secret: str | None = None  # the PagerDuty webhook subscription's secret; None: /pagerduty is off
    chat_every: float = 0.0  # seconds between passes of the team's chat (engine/chat.py); 0: no chat
    alert_retention: float = DEFAULT_RETENTION  # seconds an alert is kept after last heard of (0: for ever)
    lease: float = DEFAULT_LEASE  # seconds this server's lease on its work lasts unrenewed (0: holds none)
    public: object | None = None  # the StatusPage `--public` serves without a token; None: no public page
    email: bool = False  # a mail server is configured: the public page offers email subscriptions
    max_viewers: int = MAX_VIEWERS  # live status-page streams at once; 503 beyond


class CatalogWatcher:
    """Notices a change under the catalog's paths (a file added, removed, edited) by name, size
    and modification time, so a long-running server matches alerts against today's playbooks."""

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]
        self.seen = self.signature()

    def signature(self) -> tuple:
        found = []
        for root in self.paths:
            files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
            for path in files:
                if path.suffix in (".yaml", ".yml", ".json"):
                    try:
                        info = path.stat()
                    except OSError:
                        continue
                    found.append((str(path), info.st_size, info.st_mtime_ns))
        return tuple(found)

    def changed(self) -> bool:
        try:
            now = self.signature()
        except OSError:  # a directory unreadable for now (or no file descriptor free): as it was
            return False
        if now == self.seen:
            return False
        self.seen = now
        return True


class TooLarge(Exception):
    pass


def authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def unauthorized() -> JSONResponse:
    return JSONResponse({"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="runbook"'})


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _token(key: tuple) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _cursor(token: str) -> tuple | None:
    """The (last_seen, fingerprint, starts_at) a page cursor holds, or None when it is not one."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    if isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) and len(k) <= 200 for k in key):
        return tuple(key)
    return None


def _recover(engine) -> None:
    """Open the incidents of alerts a server that is gone left pending (at start; the timer
    passes do it too)."""
    try:
        for outcome in engine.recover_alerts():
            log.info("recovered a pending alert: %s %s", outcome.outcome, outcome.incident or "")
    except RunbookError as exc:
        log.warning("could not open the incidents of pending alerts yet: %s", one_line(str(exc)))


def _reload(paths):
    from runbook.catalog.loader import load_catalog

    catalog = load_catalog([str(p) for p in paths])
    log.info("catalog changed: reloaded, %d playbooks%s", len(catalog.of_kind("Playbook")),
             f", {len(catalog.errors)} error(s): invalid documents are left out (run `runbook validate`)"
             if catalog.errors else "")
    return catalog


class Server(uvicorn.Server):
    """Uvicorn's server that ends the status page's live streams first when it stops: a stream
    never ends on its own, and uvicorn waits for every response (up to its graceful timeout, then
    cancels them with a traceback) before the app's own shutdown closes the service."""

    def __init__(self, config: uvicorn.Config, service: EngineService):
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets=None) -> None:
        self.service.broadcaster.end()
        await super().shutdown(sockets)


def build_app(service: EngineService, config: ServeConfig) -> Starlette:
    """The server's app on `service`, which it closes when the server stops."""

    pauses = CollectionsHeldOff()

    async def alertmanager(request: Request):
        # the live streams make room for an alert being taken, and so do full garbage collections
        with service.broadcaster.first(), pauses.taking_delivery():
            return await take(request)

    async def take(request: Request):
        if not authorized(request, config.token):
            return unauthorized()
        try:
            body = await read_body(request, config.max_body)
        except ClientDisconnect:  # gone, or its body was late (the server answered 408): nobody to tell
            log.info("a delivery's sender left before its body arrived whole; nothing recorded")
            return PlainTextResponse("", status_code=408)
        except TooLarge:
            return JSONResponse({"error": f"the body is over {config.max_body} bytes (runbook serve --max-body)"},
                                status_code=413)
        try:
            alerts, _ = parse(body)
        except PayloadError as exc:
            log.warning("refused a delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=400)
        for each in alerts:
            if each.rejected:
                log.warning("rejected an alert: %s", one_line(each.rejected))
        try:
            outcomes = [o.to_dict() for o in await service.receive_alerts(alerts)]
        except RunbookError as exc:  # the store cannot take it now: the sender retries
            log.error("could not record a delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"received": len(outcomes), "outcomes": outcomes})

    async def alerts(request: Request):
        if not authorized(request, config.token):
            return unauthorized()
        outcome = request.query_params.get("outcome") or None
        try:
            limit = int(request.query_params.get("limit", str(PAGE)))
        except ValueError:
            return JSONResponse({"error": "limit: expected a whole number"}, status_code=400)
        limit = max(1, min(limit, MAX_PAGE))
        cursor = request.query_params.get("cursor")
        after = _cursor(cursor) if cursor else None
        if cursor and after is None:
            return JSONResponse({"error": "cursor: not one this server gave; follow the Link header (rel=\"next\") "
                                          "of the page before, or leave it out for the first page"}, status_code=400)
        rows = await service.reads.run(alert_rows, outcome=outcome, limit=limit + 1, after=after)
        page, size = [], 0
        for row in rows[:limit]:
            page.append(row)
            size += len(json.dumps(row, ensure_ascii=False))
            if size >= PAGE_BYTES:
                break
        headers = {}
        if len(page) < len(rows):
            last = page[-1]
            query = urlencode({**({"outcome": outcome} if outcome else {}), "limit": limit,
                               "cursor": _token((last["last_seen"], last["fingerprint"], last["starts_at"]))})
            headers["Link"] = f'</api/alerts?{query}>; rel="next"'
        return JSONResponse(page, headers=headers)

    async def health(request: Request):
        try:
            await service.reads.run(lambda engine: engine.health())
        except RunbookError as exc:
            return PlainTextResponse(f"unhealthy: {one_line(str(exc))}\n", status_code=503)
        return PlainTextResponse("ok\n")

    watcher = CatalogWatcher(config.catalog_paths) if config.catalog_paths else None

    async def prune():
        try:
            gone, _ = await service.ticks.run(lambda engine: engine.prune_alerts(config.alert_retention))
        except RunbookError as exc:  # e.g. a role without DELETE on the ledger: said once an hour, nothing else stops
            log.warning("could not forget old alerts (--alert-retention): %s", one_line(str(exc)))
            return
        if gone:
            log.info("forgot %d alert(s) last heard of over %s ago (--alert-retention)", gone,
                     format_duration(int(config.alert_retention)))

    async def remind():
        """Overdue action items' owners reminded through the notify plugins (at most once a day an
        item: the reminders are in the log, so several servers or a restart send no more)."""
        try:
            sent = await service.ticks.run(lambda engine: engine.remind_overdue())
        except RunbookError as exc:
            log.warning("could not remind the owners of overdue action items: %s", one_line(str(exc)))
            return
        for each in sent:
            log.info("reminded %s of overdue action item %s", one_line(str(each.get("owner", ""))), each.get("id"))

    async def ticking():
        pruned_at = reminded_at = None
        wait = config.tick_every
        while True:
            await asyncio.sleep(wait)
            now = asyncio.get_running_loop().time()
            if config.alert_retention and (pruned_at is None or now - pruned_at >= PRUNE_EVERY):
                pruned_at = now
                await prune()
            if reminded_at is None or now - reminded_at >= REMIND_EVERY:
                reminded_at = now
                await remind()
            try:
                if watcher is not None and watcher.changed():
                    catalog = await asyncio.get_running_loop().run_in_executor(None, _reload, watcher.paths)
                    service.set_catalog(catalog)
                await service.timers()
            except RunbookError as exc:
                log.warning("timer pass failed: %s", one_line(str(exc)))
            except Exception:  # keep serving; the next pass tries again
                log.exception("timer pass failed")
            wait = service.next_pass(config.tick_every)  # sooner when another server's lease ends first

    async def chatting():
        """Commands from the chat every `chat_every` seconds; the record out to the chat as soon as
        the broadcaster says something changed, and every few seconds anyway (countdowns)."""
        from runbook.engine.chat import Chat

        chat, lane, loop = Chat(), service.chat_lane(), asyncio.get_running_loop()
        changes, delivered = service.broadcaster.queue(), 0.0
        try:
            while True:
                try:
                    await lane.run(chat.receive)
                    changed = not changes.empty()
                    while not changes.empty():
                        changes.get_nowait()
                    if changed or loop.time() - delivered >= CHAT_REFRESH:
                        delivered = loop.time()
                        await lane.run(chat.deliver)
                except RunbookError as exc:
                    log.warning("chat pass failed: %s", one_line(str(exc)))
                except Exception:  # keep serving; the next pass tries again
                    log.exception("chat pass failed")
                await asyncio.sleep(config.chat_every)
        finally:
            service.broadcaster.drop(changes)

    async def delivering():
        """Send public updates to subscribers, on the ticks lane (it waits on mail servers and
        webhooks, as the timer pass waits on pagers)."""
        from runbook.serve.subscriptions import deliver

        seen: dict = {}  # what the last pass planned from: an idle pass projects nothing
        while True:
            await asyncio.sleep(config.tick_every)
            try:
                await service.ticks.run(deliver, config.public, seen)
            except RunbookError as exc:
                log.warning("subscription pass failed: %s", one_line(str(exc)))
            except Exception:  # keep serving; the next pass tries again
                log.exception("subscription pass failed")

    @asynccontextmanager
    async def lifespan(app):
        if config.lease > 0:  # held before the first alert is taken: others know this server is alive
            await asyncio.get_running_loop().run_in_executor(None, service.hold_lease, config.lease)
        service.ticks.submit(_recover)  # the server listens meanwhile: opening may wait on plugins
        tasks = [asyncio.create_task(ticking())] if config.tick_every > 0 else []
        if config.public is not None and config.tick_every > 0:
            tasks.append(asyncio.create_task(delivering()))
        if config.chat_every > 0:
            tasks.append(asyncio.create_task(chatting()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            pauses.close()
            await asyncio.get_running_loop().run_in_executor(None, service.close)

    from runbook.serve import pagerduty, web

    page = web.routes(service, config.view_token, config.max_viewers) if config.view_token else web.off_routes()
    if config.public is not None:
        from runbook.serve import public, subscriptions

        page = [*page, *public.routes(service, config.public, email=config.email),
                *subscriptions.routes(service, config.public, config.email)]
    app = Starlette(routes=[Route("/alertmanager", alertmanager, methods=["POST"]),
                            Route("/api/alerts", alerts, methods=["GET"]),
                            Route("/healthz", health, methods=["GET"]),
                            Route("/pagerduty", pagerduty.endpoint(service, config.pagerduty_secret, read_body,
                                                                   config.max_body, TooLarge), methods=["POST"]),
                            *page],
                    lifespan=lifespan)
    app.state.service = service
    return app
