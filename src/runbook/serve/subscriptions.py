"""Subscriptions to the public page (`runbook serve --public`): sign-up, confirmation and
unsubscribe routes, and the delivery pass that sends each new public update to whoever follows
its components, by email (SMTP) or signed webhook, trying again after a failure.

    POST /subscribe                  email=ADDRESS[&component=ID...]: sends a confirmation link
    GET  /subscribe/confirm?token=   the link in that email: the subscription is active from now
    GET|POST /unsubscribe?token=     the link in every email (POST: one-click, RFC 8058)

A delivery is a row per (subscriber, message) in the store, planned when the update is seen and
settled when it is sent; a failure is tried again 1 s, 2 s, 4 s ... later (at most 60 s apart,
12 attempts, engine/backoff.py), so a mail server that is down for a while loses nothing, and a
restart of the server sends what was not sent. Subscribers hear of updates posted after they
confirmed, never of older ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import urllib.request
from datetime import timedelta
from email.message import EmailMessage
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from runbook.engine import backoff, subscriptions
from runbook.engine.clock import iso, parse
from runbook.errors import RunbookError
from runbook.serve.public import PUBLIC_HEADERS, _templates, incident_json, page_json
from runbook.serve.public_state import PublicStatus, project
from runbook.text import one_line

log = logging.getLogger("runbook.serve")
CONFIRM = "confirm"  # the message id of a subscriber's confirmation email
TIMEOUT = 10  # seconds for one SMTP conversation or webhook post
FORM_LIMIT = 8192  # bytes of a subscribe form


class Mailer(NamedTuple):
    """Where email goes out: an SMTP server (RUNBOOK_SMTP=host:port) and the From address."""

    host: str
    port: int
    sender: str


def base_url(page) -> str:
    """The page's origin, for the links in emails (from the StatusPage's url)."""
    parts = urlsplit(page.url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def answer(title: str, text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_templates.get_template("public_message.html").render(title=title, text=text),
                        status_code=status, headers=PUBLIC_HEADERS)


def routes(service, page, mailer: Mailer | None) -> list:
    async def subscribe(request: Request):
        if mailer is None:
            return answer("Not available", "Email updates are not offered here; use the Atom or RSS feed.", 404)
        # the form is small and urlencoded: read it by hand (no multipart parser needed), bounded
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_LIMIT:
                return answer("Not subscribed", "the form is too large", 413)
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=64)
        try:
            await service.commands.run(subscriptions.subscribe_email, (form.get("email") or [""])[0],
                                       form.get("component", []))
        except RunbookError as exc:
            return answer("Not subscribed", one_line(str(exc)), 400)
        return answer("Check your inbox", "We sent you a link: follow it to start getting updates.", 202)

    async def confirm(request: Request):
        try:
            await service.commands.run(subscriptions.confirm, request.query_params.get("token", ""))
        except RunbookError as exc:
            return answer("Not confirmed", one_line(str(exc)), 404)
        return answer("Subscribed", "You will get an email for each update from now on. Each one has a link to stop.")

    async def unsubscribe(request: Request):
        try:
            await service.commands.run(subscriptions.unsubscribe, request.query_params.get("token", ""))
        except RunbookError as exc:
            return answer("Not found", one_line(str(exc)), 404)
        return answer("Unsubscribed", "You will get no more updates.")

    return [Route("/subscribe", subscribe, methods=["POST"]),
            Route("/subscribe/confirm", confirm, methods=["GET"]),
            Route("/unsubscribe", unsubscribe, methods=["GET", "POST"])]


def follows(subscriber: dict, components) -> bool:
    return not subscriber["components"] or bool(set(subscriber["components"]) & set(components))


def plan(engine, status: PublicStatus) -> None:
    """Record the deliveries that are due: a confirmation for each new email subscriber, each
    update posted after a subscriber confirmed to those who follow one of its components."""
    rows = []
    for subscriber in engine.store.subscribers():
        if subscriber["unsubscribed_at"]:
            continue
        if subscriber["confirmed_at"] is None:
            rows.append((subscriber["id"], CONFIRM))
            continue
        since = parse(subscriber["confirmed_at"])
        for incident in status.incidents:
            if follows(subscriber, incident.components):
                rows += [(subscriber["id"], update.id) for update in incident.updates if update.at >= since]
    if rows:
        engine.store.plan_deliveries(rows, iso(engine.clock.now()))


def deliver(engine, page, mailer: Mailer | None) -> int:
    """One delivery pass: plan what is new, send what is due; how many were sent."""
    status = project(engine, page)
    plan(engine, status)
    now = engine.clock.now()
    updates = {u.id: (i, u) for i in status.incidents for u in i.updates}
    subscribers = {s["id"]: s for s in engine.store.subscribers()}
    sent = 0
    for due in engine.store.due_deliveries(iso(now)):
        subscriber = subscribers.get(due["subscriber"])
        attempt = due["attempts"] + 1
        if subscriber is None or subscriber["unsubscribed_at"] or (due["message"] != CONFIRM
                                                                  and due["message"] not in updates):
            engine.store.settle_delivery(due["subscriber"], due["message"], attempt - 1, None, None,
                                         "nothing to send: unsubscribed or the update is gone")
            continue
        try:
            send(status, subscriber, due["message"], updates.get(due["message"]), mailer)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            why = one_line(str(exc)) or type(exc).__name__
            retry = None if attempt >= backoff.ATTEMPTS else iso(now + timedelta(seconds=backoff.delay(attempt)))
            log.warning("could not send to subscriber %s: %s%s", subscriber["id"], why,
                        "" if retry else f"; gave up after {attempt} attempts")
            engine.store.settle_delivery(subscriber["id"], due["message"], attempt, None, retry, why)
            continue
        engine.store.settle_delivery(subscriber["id"], due["message"], attempt, iso(engine.clock.now()), None, None)
        sent += 1
    return sent


def send(status: PublicStatus, subscriber: dict, message: str, found, mailer: Mailer | None) -> None:
    base = base_url(status.page)
    if subscriber["kind"] == "webhook":
        incident, update = found
        body = json.dumps({"page": page_json(status), "incident": incident_json(status, incident),
                           "update_id": update.id}, ensure_ascii=False).encode()
        signature = hmac.new(subscriber["secret"].encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(subscriber["address"], data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Runbook-Signature": f"sha256={signature}",
            "User-Agent": "runbook-status"})
        # the address an operator gave (`runbook subscribers webhook`), never one from the public
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            reply.read()
        return
    if mailer is None:
        raise ValueError("no SMTP server configured (RUNBOOK_SMTP)")
    email = EmailMessage()
    email["From"], email["To"] = mailer.sender, subscriber["address"]
    token = subscriber["token"]
    stop = f"{base}/unsubscribe?token={token}"
    if message == CONFIRM:
        email["Subject"] = f"Confirm your subscription to {status.page.title}"
        email.set_content(f"Someone (we hope you) asked for updates from {status.page.title}.\n\n"
                          f"To start getting them, follow this link:\n{base}/subscribe/confirm?token={token}\n\n"
                          "If it was not you, ignore this email: nothing will be sent.\n")
    else:
        incident, update = found
        email["Subject"] = f"[{status.page.title}] {incident.name}: {update.status.capitalize()}"
        email["List-Unsubscribe"] = f"<{stop}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(f"{update.status.capitalize()} - {update.at:%Y-%m-%d %H:%M} UTC\n\n{update.body}\n\n"
                          f"Status page: {status.page.url}\nStop these emails: {stop}\n")
    with smtplib.SMTP(mailer.host, mailer.port, timeout=TIMEOUT) as smtp:
        smtp.send_message(email)
