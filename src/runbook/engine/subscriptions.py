"""Subscribers to the public status page, kept in the store's subscribers table.

Email subscribers sign up on the public page and are active only once they follow the link sent
to them (double opt-in); every email carries an unsubscribe link. Webhook subscribers are added
by an operator (`runbook subscribers webhook URL`): the server posts to them, so the public may
not name one; each gets a secret its deliveries are signed with. A subscriber may follow some
components only. What is sent and retried is in serve/subscriptions.py."""

from __future__ import annotations

import re
import secrets

from runbook.engine.clock import iso
from runbook.engine.maintenance import components as known_components
from runbook.errors import CommandError, NotFoundError, UsageError

LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
EMAIL = re.compile(rf"[^@\s<>\"',;]{{1,64}}@{LABEL}(?:\.{LABEL})+")  # one address, nothing that splits a header


def _components(engine, wanted) -> list[str]:
    known = known_components(engine.catalog)
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)}; the status page has {', '.join(sorted(known))}")
    return list(dict.fromkeys(wanted))


def subscribe_email(engine, address: str, components=()) -> dict:
    """A new email subscriber, not confirmed yet (the confirmation is sent by the server)."""
    address = address.strip()
    if len(address) > 254 or not EMAIL.fullmatch(address):
        raise UsageError("that is not an email address like name@example.com")
    return engine.store.add_subscriber({"kind": "email", "address": address,
                                        "components": _components(engine, components),
                                        "token": secrets.token_urlsafe(24), "created_at": iso(engine.clock.now())})


def add_webhook(engine, url: str, components=()) -> dict:
    """A webhook subscriber, active at once (an operator added it), with its signing secret."""
    if not re.match(r"^https?://[^\s/]+", url or ""):
        raise UsageError(f"{url!r} is not an http:// or https:// address")
    now = iso(engine.clock.now())
    return engine.store.add_subscriber({
        "kind": "webhook", "address": url, "components": _components(engine, components),
        "token": secrets.token_urlsafe(24), "secret": secrets.token_urlsafe(32), "created_at": now,
        "confirmed_at": now})


def by_token(engine, token: str) -> dict:
    found = engine.store.subscribers(token=token) if token else []
    if not found:
        raise NotFoundError("this link is not (or no longer) valid")
    return found[0]


def confirm(engine, token: str) -> dict:
    subscriber = by_token(engine, token)
    if subscriber["unsubscribed_at"]:
        raise CommandError("this subscription was cancelled; subscribe again on the status page")
    engine.store.set_subscriber(subscriber["id"], "confirmed_at", iso(engine.clock.now()))
    return by_token(engine, token)


def unsubscribe(engine, token: str) -> dict:
    subscriber = by_token(engine, token)
    engine.store.set_subscriber(subscriber["id"], "unsubscribed_at", iso(engine.clock.now()))
    return subscriber


def remove(engine, number: int) -> dict:
    found = [s for s in engine.store.subscribers() if s["id"] == number]
    if not found:
        raise NotFoundError(f"no subscriber {number} (see `runbook subscribers list`)")
    if not engine.store.set_subscriber(number, "unsubscribed_at", iso(engine.clock.now())):
        raise CommandError(f"subscriber {number} was removed already")
    return found[0]


def listing(engine) -> list[dict]:
    """Every subscriber, without tokens or secrets (what a person may print)."""
    return [{k: v for k, v in s.items() if k not in ("token", "secret")} for s in engine.store.subscribers()]
