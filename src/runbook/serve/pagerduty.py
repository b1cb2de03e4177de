"""PagerDuty's acknowledgements coming back: `POST /pagerduty` takes PagerDuty's V3 webhooks.

Each delivery is verified first: `X-PagerDuty-Signature` holds one or more `v1=HEX` signatures
(several while a secret is rotated), each the HMAC-SHA256 of the raw body with a subscription's
secret; one must match `RUNBOOK_PAGERDUTY_WEBHOOK_SECRET`. Then `incident.acknowledged`,
`incident.resolved` and `incident.reassigned` are recorded on the incident whose log says it
opened that incident key (engine/pages.py `from_pager`); other event types are answered and
ignored. PagerDuty retries a delivery that got no 2xx answer, so the answers say what to do:
200 taken (recorded, a repeat, ignored, or a key runbook never opened); 400 not a V3 webhook
(no signature header, not JSON): do not retry; 403 no signature matches; 413 too large; 503 the
incident database cannot take it now: retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from runbook.engine.pages import PAGER_ACTIONS, PagerReport
from runbook.errors import RunbookError
from runbook.text import one_line

log = logging.getLogger("runbook.serve")

SECRET_ENV = "RUNBOOK_PAGERDUTY_WEBHOOK_SECRET"
SIGNATURE = "x-pagerduty-signature"


class WebhookError(Exception):
    """A delivery that is not a PagerDuty V3 webhook runbook can read."""


def signed(body: bytes, header: str, secret: str) -> bool:
    """Whether one of the header's v1 signatures is the body's HMAC-SHA256 under `secret`,
    compared in constant time."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")]
    return any(hmac.compare_digest(expected.encode(), part.encode()) for part in given)


def _text(value, what: str, limit: int = 500) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookError(f"{what}: expected text, got {type(value).__name__}")
    return value[:limit]


def report(body: bytes) -> PagerReport | None:
    """The PagerReport a verified delivery carries, or None for an event runbook does not act on."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookError(f"the body is not JSON runbook can read ({one_line(str(exc))[:120]})") from None
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, dict):
        raise WebhookError("no 'event' object: not a V3 webhook (set up a V3 webhook subscription)")
    kind = _text(event.get("event_type"), "event.event_type")
    action = kind.removeprefix("incident.")
    if not kind.startswith("incident.") or action not in PAGER_ACTIONS:
        return None
    data = event.get("data")
    if not isinstance(data, dict):
        raise WebhookError(f"{kind}: no 'data' object")
    agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
    assignees = data.get("assignees") if isinstance(data.get("assignees"), list) else []
    event_id = _text(event.get("id"), "event.id", 200)
    if not event_id:
        raise WebhookError(f"{kind}: no event.id")
    return PagerReport(
        pager="pagerduty", action=action, event_id=event_id,
        key=_text(data.get("incident_key"), "data.incident_key", 300),
        agent_id=_text(agent.get("id"), "event.agent.id", 100),
        agent_name=_text(agent.get("summary"), "event.agent.summary", 200),
        pager_incident=_text(data.get("id"), "data.id", 100),
        to=tuple(_text(a.get("summary"), "data.assignees[].summary", 200) for a in assignees[:20]
                 if isinstance(a, dict)),
        occurred_at=_text(event.get("occurred_at"), "event.occurred_at", 64))


def endpoint(service, secret: str | None, read_body, max_body: int, too_large):
    """The route's function: `read_body(request, limit)` reads the body or raises `too_large`."""

    async def pagerduty(request: Request):
        if not secret:
            return JSONResponse({"error": f"the PagerDuty webhook is off: set {SECRET_ENV} to the webhook "
                                          "subscription's secret"}, status_code=404)
        try:
            body = await read_body(request, max_body)
        except too_large:
            return JSONResponse({"error": f"the body is over {max_body} bytes"}, status_code=413)
        header = request.headers.get(SIGNATURE, "")
        if not header:
            return JSONResponse({"error": "no X-PagerDuty-Signature header: not a V3 webhook"}, status_code=400)
        if not signed(body, header, secret):
            log.warning("refused a PagerDuty delivery: no signature matches (%s?)", SECRET_ENV)
            return JSONResponse({"error": "no signature matches this server's secret"}, status_code=403)
        try:
            found = report(body)
        except WebhookError as exc:
            log.warning("refused a PagerDuty delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=400)
        if found is None:
            return JSONResponse({"outcome": "ignored"})
        try:
            outcome, incident, _ = await service.commands.run(lambda engine: engine.pager_report(found))
        except RunbookError as exc:
            log.error("could not record a PagerDuty delivery: %s", one_line(str(exc)))
            return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "5"})
        log.info("PagerDuty %s of %s: %s %s", found.action, one_line(found.key)[:120], outcome, incident)
        return JSONResponse({"outcome": outcome, "incident": incident or None})

    return pagerduty
