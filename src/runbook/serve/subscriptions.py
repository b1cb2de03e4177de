"""Subscriptions to the public page (`runbook serve --public`): sign-up, confirmation and
unsubscribe routes, and the delivery pass that sends each new public update to whoever follows
its components through the plugins' `notify_subscriber` hook (the built-in
default_plugins/subscriber_mail.py sends email by SMTP and signed webhooks), trying again after
a failure that may pass.

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

import json
import logging
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.routing import Route

from runbook.engine import backoff, subscriptions
from runbook.engine.clock import iso, parse
from runbook.errors import RunbookError
from runbook.pluginapi import SubscriberMessage
from runbook.serve.public import incident_json, message_page, page_json
from runbook.serve.public_state import PublicStatus, project
from runbook.text import one_line

log = logging.getLogger("runbook.serve")
CONFIRM = "confirm"  # the message id of a subscriber's confirmation email
FORM_LIMIT = 8192  # bytes of a subscribe form


def base_url(page) -> str:
    """The page's origin, for the links in emails (from the StatusPage's url)."""
    parts = urlsplit(page.url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def routes(service, page, email: bool) -> list:
    """The subscription routes; `email`: a mail server is configured, so people may sign up."""
    async def subscribe(request: Request):
        if not email:
            return message_page("Not available", "Email updates are not offered here; use the Atom or RSS feed.", 404)
        # the form is small and urlencoded: read it by hand (no multipart parser needed), bounded
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_LIMIT:
                return message_page("Not subscribed", "the form is too large", 413)
        try:
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=64)
        except ValueError:
            return message_page("Not subscribed", "the form has too many fields", 400)
        try:
            await service.commands.run(subscriptions.subscribe_email, (form.get("email") or [""])[0],
                                       form.get("component", []))
        except RunbookError as exc:
            return message_page("Not subscribed", one_line(str(exc)), 400)
        return message_page("Check your inbox", "We sent you a link: follow it to start getting updates.", 202)

    async def confirm(request: Request):
        try:
            await service.commands.run(subscriptions.confirm, request.query_params.get("token", ""))
        except RunbookError as exc:
            return message_page("Not confirmed", one_line(str(exc)), 404)
        return message_page("Subscribed", "You will get an email for each update from now on. "
                                          "Each one has a link to stop.")

    async def unsubscribe(request: Request):
        try:
            await service.commands.run(subscriptions.unsubscribe, request.query_params.get("token", ""))
        except RunbookError as exc:
            return message_page("Not found", one_line(str(exc)), 404)
        return message_page("Unsubscribed", "You will get no more updates.")

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


def deliver(engine, page, seen: dict | None = None) -> int:
    """One delivery pass: plan what is new, send what is due through the plugins'
    `notify_subscriber` (the built-in sends email and webhooks); how many were sent. `seen` keeps,
    from one pass to the next, what the last planning saw: while the log, the minute and the
    subscribers are as they were and nothing is due, a pass projects nothing."""
    seen = {} if seen is None else seen
    now = engine.clock.now()
    subscribers = {s["id"]: s for s in engine.store.subscribers()}
    key = (engine.change_cursor(), now.replace(second=0, microsecond=0),
           tuple((s["id"], s["confirmed_at"], s["unsubscribed_at"]) for s in subscribers.values()))
    due_now = engine.store.due_deliveries(iso(now))
    if key == seen.get("key") and not due_now:
        return 0
    status = project(engine, page)
    if key != seen.get("key"):
        plan(engine, status)
        seen["key"] = key
    updates = {u.id: (i, u) for i in status.incidents for u in i.updates}
    sent = 0
    for due in engine.store.due_deliveries(iso(now)):
        subscriber = subscribers.get(due["subscriber"])
        attempt = due["attempts"] + 1
        if subscriber is None or subscriber["unsubscribed_at"] or (due["message"] != CONFIRM
                                                                  and due["message"] not in updates):
            engine.store.settle_delivery(due["subscriber"], due["message"], attempt - 1, None, None,
                                         "nothing to send: unsubscribed or the update is gone")
            continue
        message = compose(status, subscriber, due["message"], updates.get(due["message"]))
        result, failures = engine.plugins.notify_subscriber(message) if engine.plugins else (None, [])
        if result is not None and result.delivered:
            engine.store.settle_delivery(subscriber["id"], due["message"], attempt, iso(engine.clock.now()), None,
                                         None)
            sent += 1
            continue
        why = one_line(result.detail if result is not None else
                       "; ".join(f.format() for f in failures) or f"no plugin sends {subscriber['kind']} messages")
        # a plugin that raised or overran may do better next time; one that said why decides
        again = result.retryable if result is not None else bool(failures)
        retry = iso(now + timedelta(seconds=backoff.delay(attempt))) if again and attempt < backoff.ATTEMPTS else None
        log.warning("could not send to subscriber %s: %s%s", subscriber["id"], why,
                    f"; retry {attempt} in {backoff.delay(attempt)}s" if retry else "; given up")
        engine.store.settle_delivery(subscriber["id"], due["message"], attempt, None, retry, why)
    return sent


def compose(status: PublicStatus, subscriber: dict, key: str, found) -> SubscriberMessage:
    """What to send: a webhook's JSON, or a message in words (an email's, or another kind's a
    plugin sends): the confirmation link, or an update with the link to stop."""
    base = base_url(status.page)
    if subscriber["kind"] == "webhook":
        incident, update = found
        body = json.dumps({"page": page_json(status), "incident": incident_json(status, incident),
                           "update_id": update.id}, ensure_ascii=False).encode()
        return SubscriberMessage("webhook", subscriber["address"], key, body=body, secret=subscriber["secret"])
    token = subscriber["token"]
    stop = f"{base}/unsubscribe?token={token}"
    if key == CONFIRM:
        return SubscriberMessage(
            subscriber["kind"], subscriber["address"], key, f"Confirm your subscription to {status.page.title}",
            f"Someone (we hope you) asked for updates from {status.page.title}.\n\n"
            f"To start getting them, follow this link:\n{base}/subscribe/confirm?token={token}\n\n"
            "If it was not you, ignore this email: nothing will be sent.\n")
    incident, update = found
    return SubscriberMessage(
        subscriber["kind"], subscriber["address"], key,
        f"[{status.page.title}] {incident.name}: {update.status.capitalize()}",
        f"{update.status.capitalize()} - {update.at:%Y-%m-%d %H:%M} UTC\n\n{update.body}\n\n"
        f"Status page: {status.page.url}\nStop these emails: {stop}\n", unsubscribe=stop)
