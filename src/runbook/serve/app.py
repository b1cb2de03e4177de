"""The HTTP side of `runbook serve`: Starlette routes on Uvicorn, every engine call on one thread.

Routes (JSON unless said otherwise):
  POST /alertmanager   Alertmanager webhook (payload version 4); bearer token required
  GET  /api/alerts     the alerts received, latest first (?outcome=unmatched); bearer token required
  GET  /healthz        "ok" when the incident database answers; no token, says nothing else

Status codes say what a sender should do: 200 taken (each alert's outcome in the body); 400 the
body cannot be read (the reason; nothing stored; do not retry as is); 401 no or wrong token;
413 body over the limit; 503 the incident database is busy or cannot be written (retry later:
Alertmanager does); 500 a bug (logged, retried by the sender too).

The engine and its SQLite connection are used from one worker thread only: requests wait their
turn there, so two deliveries of the same alert are never handled at once in this process;
across processes the store's alert ledger (one transaction per alert) keeps it to one incident.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from runbook.engine.clock import iso
from runbook.errors import RunbookError
from runbook.serve.alertmanager import PayloadError, parse
from runbook.text import one_line

log = logging.getLogger("runbook.serve")

DEFAULT_MAX_BODY = 1024 * 1024


class ServeConfig(NamedTuple):
    token: str  # intake token (Alertmanager's http_config.authorization credentials)
    max_body: int = DEFAULT_MAX_BODY
    tick_every: float = 1.0  # seconds between timer passes over the open incidents (0: no ticking)
    catalog_paths: tuple = ()  # reloaded on the timer pass when a file under them changes
    view_token: str | None = None  # the status page's viewer token; None: the page is off


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


class EngineThread:
    """One thread that owns the engine: every call runs there, in arrival order."""

    def __init__(self, make_engine: Callable):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runbook-engine")
        self._make = make_engine
        self.engine = None

    async def run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, function, args)

    def _call(self, function, args):
        if self.engine is None:
            self.engine = self._make()
        return function(self.engine, *args)

    def close(self):
        if self.engine is not None:
            self._pool.submit(self.engine.close).result()
        self._pool.shutdown(wait=True)


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


def _receive(engine, alerts):
    return [o.to_dict() for o in engine.receive_alerts(alerts)]


def _reload(engine, paths) -> None:
    from runbook.catalog.loader import load_catalog

    catalog = load_catalog([str(p) for p in paths])
    engine.catalog = catalog
    log.info("catalog changed: reloaded, %d playbooks%s", len(catalog.of_kind("Playbook")),
             f", {len(catalog.errors)} error(s): invalid documents are left out (run `runbook validate`)"
             if catalog.errors else "")


class TimerPass:
    """Fire what is due on the incidents that can still have timers: open ones, those in their
    follow-up phase, and those resolved in the last RESOLVED_WINDOW (a pager's resolve being
    retried). An incident whose log has not changed is skipped until its next timer is due
    (looked at again every RECHECK anyway), so an alert storm's thousand open incidents do not
    keep the engine thread busy."""

    RECHECK = timedelta(seconds=30)
    RESOLVED_WINDOW = timedelta(minutes=15)

    def __init__(self):
        self.known: dict[str, tuple[int, object, object]] = {}  # id -> (last seq, next due, checked at)

    def __call__(self, engine) -> int:
        now = engine.clock.now()
        rows = engine.store.incidents(open_only=True)
        rows += engine.store.incidents(status="resolved", resolved_since=iso(now - self.RESOLVED_WINDOW))
        fired = 0
        for row in rows:
            seen = self.known.get(row["id"])
            if (seen and seen[0] == row["last_seq"] and (seen[1] is None or now < seen[1])
                    and now - seen[2] < self.RECHECK):
                continue
            try:
                fired += len(engine.tick(row["id"]))
                self.known[row["id"]] = (engine.state(row["id"]).last_seq, engine.next_due(row["id"]), now)
            except RunbookError as exc:
                log.warning("timers of %s: %s", row["id"], one_line(str(exc)))
        live = {row["id"] for row in rows}
        self.known = {i: v for i, v in self.known.items() if i in live}
        engine.forget(live)  # the folded states of closed incidents go; memory stays flat for months
        return fired


def build_app(make_engine: Callable, config: ServeConfig) -> Starlette:
    """The server's app; `make_engine()` is called once, on the engine thread."""
    worker = EngineThread(make_engine)

    async def alertmanager(request: Request):
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
            outcomes = await worker.run(_receive, alerts)
        except RunbookError as exc:  # the store cannot take it now: the sender retries
            log.error("could not record a delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        for o in outcomes:
            if o["outcome"] != "repeat":
                log.info("alert %s %s: %s%s%s", one_line(o["alertname"] or o["fingerprint"]), o["status"],
                         o["outcome"], f" {o['incident']}" if o["incident"] else "",
                         f" ({one_line(o['reason'])})" if o["reason"] else "")
        return JSONResponse({"received": len(outcomes), "outcomes": outcomes})

    async def alerts(request: Request):
        if not authorized(request, config.token):
            return unauthorized()
        outcome = request.query_params.get("outcome") or None
        try:
            limit = int(request.query_params.get("limit", "200"))
        except ValueError:
            return JSONResponse({"error": "limit: expected a whole number"}, status_code=400)
        rows = await worker.run(lambda engine: engine.alerts(outcome=outcome, limit=max(1, min(limit, 10_000))))
        for row in rows:
            row.pop("owner", None)
        return JSONResponse(rows)

    async def health(request: Request):
        try:
            await worker.run(lambda engine: engine.store.incidents(open_only=True))
        except RunbookError as exc:
            return PlainTextResponse(f"unhealthy: {one_line(str(exc))}\n", status_code=503)
        return PlainTextResponse("ok\n")

    watcher = CatalogWatcher(config.catalog_paths) if config.catalog_paths else None
    timer_pass = TimerPass()

    async def ticking():
        while True:
            await asyncio.sleep(config.tick_every)
            try:
                if watcher is not None and watcher.changed():
                    await worker.run(_reload, watcher.paths)
                await worker.run(timer_pass)
            except RunbookError as exc:
                log.warning("timer pass failed: %s", one_line(str(exc)))
            except Exception:  # keep serving; the next pass tries again
                log.exception("timer pass failed")

    @asynccontextmanager
    async def lifespan(app):
        for outcome in await worker.run(lambda engine: engine.recover_alerts()):
            log.info("recovered a pending alert: %s %s", outcome.outcome, outcome.incident or "")
        task = asyncio.create_task(ticking()) if config.tick_every > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            await asyncio.get_running_loop().run_in_executor(None, worker.close)

    from runbook.serve import web

    page = web.routes(worker, config.view_token) if config.view_token else web.off_routes()
    app = Starlette(routes=[Route("/alertmanager", alertmanager, methods=["POST"]),
                            Route("/api/alerts", alerts, methods=["GET"]),
                            Route("/healthz", health, methods=["GET"]), *page],
                    lifespan=lifespan)
    app.state.worker = worker
    return app
