"""Scheduled maintenance: windows over status page components, kept in the store's maintenance
table (written only through the store).

A window is shown on the public page (`runbook serve --public`) from when it is added until it
ends. While it runs, an alert whose playbook affects one of its components (by the catalog's
StatusPage mapping of services and symptoms) is kept in the alert ledger as "maintenance" instead
of opening an incident, unless its severity is at or above the window's `page_at`: planned work
does not page, a real emergency during it still does. Kept alerts are listed by `runbook alerts`
and can be opened by hand (`runbook incident open --alert`)."""

from __future__ import annotations

from datetime import datetime

from runbook.engine.clock import iso
from runbook.errors import CommandError, NotFoundError, UsageError


def components(catalog) -> dict:
    """Every status page component of the catalog by id."""
    return {c.id: c for page in catalog.models("StatusPage").values() for c in page.components}


def severity_ranks(catalog) -> list[str]:
    """Severity level ids, most severe first."""
    return [level.id for policy in catalog.models("SeverityPolicy").values() for level in policy.levels]


def add(engine, title: str, component_ids: tuple[str, ...], starts: datetime, ends: datetime, actor: str,
        page_at: str | None = None, body: str = "") -> dict:
    """Record a window; refused with one line saying what is wrong."""
    known = components(engine.catalog)
    if not known:
        raise UsageError("no StatusPage document in the catalog: a maintenance window names its components")
    if not component_ids:
        raise UsageError(f"name the components under maintenance (--component ID): {', '.join(sorted(known))}")
    unknown = [c for c in component_ids if c not in known]
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)}; the status page has {', '.join(sorted(known))}")
    if ends <= starts:
        raise UsageError("the window ends before it starts: --until must be after --start")
    if ends <= engine.clock.now():
        raise UsageError("the window is over already: --until is in the past")
    levels = severity_ranks(engine.catalog)
    if page_at is not None and page_at not in levels:
        raise UsageError(f"--page-at {page_at}: not a severity level ({', '.join(levels)})")
    page_at = page_at or (levels[0] if levels else None)  # by default the most severe level still pages
    if not title.strip():
        raise UsageError("the window's title is empty; it is shown on the public page")
    number = engine.store.add_maintenance({
        "title": title.strip(), "body": body.strip(), "components": list(dict.fromkeys(component_ids)),
        "starts_at": iso(starts), "ends_at": iso(ends), "page_at": page_at, "created_by": actor,
        "created_at": iso(engine.clock.now())})
    return engine.store.maintenance(window=number)[0]


def windows(engine, everything: bool = False) -> list[dict]:
    """Windows not over yet (cancelled ones included, marked), or `everything`."""
    return engine.store.maintenance(ending_after=None if everything else iso(engine.clock.now()))


def cancel(engine, window: int, actor: str) -> dict:
    rows = engine.store.maintenance(window=window)
    if not rows:
        raise NotFoundError(f"no maintenance window {window} (see `runbook maintenance list`)")
    if not engine.store.cancel_maintenance(window, actor, iso(engine.clock.now())):
        raise CommandError(f"maintenance window {window} was cancelled already, by {rows[0]['cancelled_by']}")
    return engine.store.maintenance(window=window)[0]


def holding(engine, playbook_id: str, symptom: str | None, labels: dict, windows_now: list[dict]) -> str | None:
    """Why an alert on `playbook_id` is kept without an incident (a window running now covers it and
    its severity is below the window's page_at), or None."""
    if not windows_now:
        return None
    playbook = engine.catalog.models("Playbook").get(playbook_id)
    if playbook is None:
        return None
    known = components(engine.catalog)
    severity = (playbook.severity_from.severity(labels) if playbook.severity_from else None) or playbook.severity
    levels = severity_ranks(engine.catalog)
    rank = levels.index(severity) if severity in levels else len(levels)
    for window in windows_now:
        affected = [c for c in window["components"]
                    if c in known and known[c].affected_by(playbook.service, symptom)]
        if not affected:
            continue
        page_at = window["page_at"]
        if page_at is not None and page_at in levels and rank <= levels.index(page_at):
            continue  # severe enough to page even during the window
        return (f"maintenance window {window['id']} ({window['title']}) covers {', '.join(affected)} until "
                f"{window['ends_at'][:16]}; {severity} is below the paging threshold"
                + (f" {page_at}" if page_at else " (none: nothing pages)"))
    return None


def running(engine) -> list[dict]:
    """The windows running now, not cancelled."""
    now = iso(engine.clock.now())
    return [w for w in engine.store.maintenance(ending_after=now, cancelled=False) if w["starts_at"] <= now]
