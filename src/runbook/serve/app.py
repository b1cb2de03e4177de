"""The HTTP side of `runbook serve`: Starlette routes on Uvicorn, every engine call through the
engine service (runbook/service.py).

Routes (JSON unless said otherwise):
  POST /alertmanager   Alertmanager webhook (payload version 4); bearer token required
  GET  /api/alerts     the alerts received, latest first (?outcome=unmatched); bearer token required
  GET  /healthz        "ok" when the incident database answers; no token, says nothing else

Status codes say what a sender should do: 200 taken (each alert's outcome in the body); 400 the
body cannot be read (the reason; nothing stored; do not retry as is); 401 no or wrong token;
413 body over the limit; 503 the incident database is busy or cannot be written (retry later:
Alertmanager does); 500 a bug (logged, retried by the sender too).

Lanes: a delivery is recorded on the commands lane (the whole delivery in one transaction) and
answered as soon as it is durable; opening, joining or resolving the incidents it names, and the
timer pass, run on the ticks lane, which may wait on Prometheus, a pager or a flag backend; pages
and /api/alerts are read on the reads lane. So an alert is taken while a tick waits on a slow
check. Deliveries are recorded one after another in this process; across processes the store's
alert ledger keeps each alert to one incident.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from runbook.errors import RunbookError
from runbook.read_models import alert_rows
from runbook.serve.alertmanager import PayloadError, parse
from runbook.service import EngineService
from runbook.text import one_line

log = logging.getLogger("runbook.serve")

DEFAULT_MAX_BODY = 1024 * 1024
MAX_VIEWERS = 1000  # live status-page streams at once: each holds a connection, a file descriptor and a queue


class ServeConfig(NamedTuple):
    token: str  # intake token (Alertmanager's http_config.authorization credentials)
    max_body: int = DEFAULT_MAX_BODY
    tick_every: float = 1.0  # seconds between timer passes over the open incidents (0: no ticking)
    catalog_paths: tuple = ()  # reloaded on the timer pass when a file under them changes
    view_token: str | None = None  # the status page's viewer token; None: the page is off
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
        now = self.signature()
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

    async def alertmanager(request: Request):
        with service.broadcaster.first():  # the live streams make room for an alert being taken
            return await take(request)

    async def take(request: Request):
        if not authorized(request, config.token):
            return unauthorized()
        try:
            body = await read_body(request, config.max_body)
        except TooLarge:
            return JSONResponse({"error": f"the body is over {config.max_body} bytes (runbook serve --max-body)"},
                                status_code=413)
        try:
            alerts, _ = parse(body)
        except PayloadError as exc:
            log.warning("refused a delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=400)
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
            limit = int(request.query_params.get("limit", "200"))
        except ValueError:
            return JSONResponse({"error": "limit: expected a whole number"}, status_code=400)
        rows = await service.reads.run(alert_rows, outcome=outcome, limit=max(1, min(limit, 10_000)))
        return JSONResponse(rows)

    async def health(request: Request):
        try:
            await service.reads.run(lambda engine: engine.change_cursor())
        except RunbookError as exc:
            return PlainTextResponse(f"unhealthy: {one_line(str(exc))}\n", status_code=503)
        return PlainTextResponse("ok\n")

    watcher = CatalogWatcher(config.catalog_paths) if config.catalog_paths else None

    async def ticking():
        while True:
            await asyncio.sleep(config.tick_every)
            try:
                if watcher is not None and watcher.changed():
                    catalog = await asyncio.get_running_loop().run_in_executor(None, _reload, watcher.paths)
                    service.set_catalog(catalog)
                await service.timers()
            except RunbookError as exc:
                log.warning("timer pass failed: %s", one_line(str(exc)))
            except Exception:  # keep serving; the next pass tries again
                log.exception("timer pass failed")

    @asynccontextmanager
    async def lifespan(app):
        service.ticks.submit(_recover)  # the server listens meanwhile: opening may wait on plugins
        task = asyncio.create_task(ticking()) if config.tick_every > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            await asyncio.get_running_loop().run_in_executor(None, service.close)

    from runbook.serve import web

    page = web.routes(service, config.view_token, config.max_viewers) if config.view_token else web.off_routes()
    app = Starlette(routes=[Route("/alertmanager", alertmanager, methods=["POST"]),
                            Route("/api/alerts", alerts, methods=["GET"]),
                            Route("/healthz", health, methods=["GET"]), *page],
                    lifespan=lifespan)
    app.state.service = service
    return app
