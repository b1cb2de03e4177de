"""Pages out, from the log: what a page says, the pagers told when the incident is acknowledged
and resolved, and what failed tried again.

A page is an intent (`escalated`) until its outcome is recorded (`notified`); an acknowledge or
resolve is owed to every plugin that opened an alert (a result naming a dedup key) until that
plugin's outcome is recorded (`pager_updated`). A failure for a passing reason is tried again
with backoff (engine/backoff.py), calling only the plugin that failed; an intent a crash left
without an outcome is sent by a tick after a grace, or at once by `resume`. So a page may be
sent twice, never not at all: pagers deduplicate by key, which makes that harmless.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from runbook.catalog.oncall import person_with
from runbook.engine import timers
from runbook.engine.backoff import STALE_INTENT
from runbook.engine.clock import iso, parse
from runbook.engine.effects import SYSTEM
from runbook.engine.events import Acknowledged, Escalated, Event, Notified, PagerReported, PagerUpdated
from runbook.engine.state import IncidentState
from runbook.errors import NotFoundError
from runbook.pluginapi import EscalationNotice, NotifyResult, PagerAlert, PagerUpdate, Recipient
from runbook.text import ACTOR_MAX, InvalidActor, check_actor, one_line

if TYPE_CHECKING:
    from runbook.engine.engine import Engine

NO_ANSWER = "no answer: the plugin is not loaded, or no longer configured"


def escalate(engine: Engine, incident: str, actor: str, level: int, rnd: int, due_at: datetime,
             reason: str, seen: int | None = None) -> list[Event]:
    """Page `level` (round `rnd`): record the intent, then send it. A timer's page passes `seen`,
    the number of pages in the log when the timer was read: if another process paged since, the
    timer is spent."""
    state = engine.state(incident)
    policy = timers.ladder(state)
    people = timers.recipients(state, policy.levels[level - 1], due_at)
    named = policy.id if state.playbook.escalation_by_severity else None
    # the count as the timer was read, not as `state` says now: it is the engine's live state, and
    # another process may have paged between the timer's reading and this one
    seen = state.escalation.count if seen is None else seen

    def build(s):
        if reason == "timer" and (s.acknowledged_at or s.resolved or s.escalation.count >= seen + 1
                                  or s.escalation.policy != policy.id):
            return []  # acknowledged (or paged by someone else, or another ladder) since the timer was read
        return [Escalated(level, rnd, iso(due_at), reason,
                          [{"id": r.id, "name": r.name, "via": r.via} for r in people], named)]
    events = engine.command(incident, actor, build)
    return events + send_page(engine, incident, events[0].seq) if events else events


def notice_summary(state: IncidentState, level: int) -> str:
    """What a page says: the title, the parameters people act on (region=eu-west-1), the level."""
    values = ", ".join(f"{name}={value}" for name, value in state.parameters.items())
    return f"{state.title}" + (f" ({values})" if values else "") + f" — escalation level {level}"



def page_key(state: IncidentState, page: Event) -> str:
    """The page's dedup key: one per escalation level and round (and ladder, when the playbook
    has one per severity), so each level opens its own alert and pages someone new, while a
    page sent twice is one alert: runbook-INC-x-L1, runbook-INC-x-L2, runbook-INC-x-L1-R2."""
    rec = page.record
    return (f"runbook-{state.id}" + (f"-{rec.policy}" if rec.policy else "") + f"-L{rec.level}"
            + (f"-R{rec.round + 1}" if rec.round else ""))


def page_recipients(state: IncidentState, page: Event) -> tuple[Recipient, ...]:
    """Who the page reached, with their contact handles from the snapshot's roster."""
    rec = page.record
    policy = timers.ladder(state, rec.policy)
    if policy is not None and 0 < rec.level <= len(policy.levels):
        return tuple(timers.recipients(state, policy.levels[rec.level - 1], parse(rec.due_at)))
    return tuple(Recipient(r["id"], r["name"], via=r.get("via", "")) for r in rec.recipients)


def notice(state: IncidentState, page: Event) -> EscalationNotice:
    rec = page.record
    return EscalationNotice(state.id, state.title, state.severity, rec.level, page_recipients(state, page),
                            summary=notice_summary(state, rec.level), playbook=state.playbook.id,
                            service=state.service, drill=state.drill, dedup_key=page_key(state, page),
                            round=rec.round, pager_severity=state.snapshot.pager_severity(state.severity),
                            sandboxed=state.sandboxed, urgency=state.snapshot.urgency(state.severity))


def update(state: IncidentState, action: str, plugin: str, by: str = "") -> PagerUpdate:
    """The `action` for `plugin`: every alert it opened for a page recorded before the action."""
    esc = state.escalation
    asked = esc.updates[action]
    alerts = tuple(PagerAlert(key, esc.pages[seq].record.level, esc.pages[seq].record.round,
                              page_recipients(state, esc.pages[seq]))
                   for key, seq in esc.alerts.get(plugin, {}).items() if seq < asked)
    return PagerUpdate(state.id, action, alerts, state.title, state.severity,
                       state.snapshot.pager_severity(state.severity), by, state.service, state.drill,
                       state.sandboxed)


def answered(results: list[NotifyResult], failures, only) -> list[NotifyResult]:
    """Every plugin asked gets an outcome, even one that no longer answers (so a retry never
    stays due for ever)."""
    if not only:
        return results
    heard = {r.plugin for r in results} | {f.plugin for f in failures}
    return results + [NotifyResult(plugin, False, NO_ANSWER, plugin=plugin) for plugin in only if plugin not in heard]


def send_page(engine: Engine, incident: str, seq: int, only=None, attempt: int = 1) -> list[Event]:
    """Send the page recorded as event `seq` (to the plugins in `only`, or all) and record the outcome."""
    state = engine.state(incident)
    page = state.escalation.pages[seq]
    results, failures = [], []
    if engine.plugins is not None:
        told = notice(state, page)
        results, failures = engine.plugins.notify(told, only=only) if only else engine.plugins.notify(told)
    results = answered(results, failures, only)
    rec = page.record
    return engine.command(incident, SYSTEM, lambda s: [Notified(rec.level, rec.round, [r.to_dict() for r in results],
                                                                 [f.to_dict() for f in failures], seq, attempt)])


def send_update(engine: Engine, incident: str, action: str, plugins, attempt: int = 1,
                by: str = "") -> list[Event]:
    """Tell each plugin in `plugins` about `action`, each about its own alerts; record the outcome."""
    state = engine.state(incident)
    results, failures = [], []
    for plugin in plugins:
        if engine.plugins is not None:
            got, failed = engine.plugins.notify_update(update(state, action, plugin, by), only=[plugin])
            results += got
            failures += failed
    results = answered(results, failures, plugins)
    return engine.command(incident, SYSTEM, lambda s: [PagerUpdated(action, [r.to_dict() for r in results],
                                                                     [f.to_dict() for f in failures], attempt)])


def tell_pagers(engine: Engine, incident: str, action: str, by: str = "") -> list[Event]:
    """After an acknowledge or resolve: tell every plugin holding alerts paged before it."""
    owed = timers.update_owed(engine.state(incident), action)
    return send_update(engine, incident, action, owed, by=by) if owed else []


def retry(engine: Engine, state: IncidentState, data: dict) -> list[Event]:
    """A `page_retry` timer (engine/timers.py): the page or update again, to the plugins named."""
    target = data["target"]
    if isinstance(target, int):
        return send_page(engine, state.id, target, only=data["plugins"], attempt=data["attempt"])
    return send_update(engine, state.id, target, data["plugins"], data["attempt"])


def settle(engine: Engine, incident: str, force: bool) -> list[Event]:
    """At resume: send the pages and updates a crash left without an outcome (at once when
    forced, else once their grace is over)."""
    out: list[Event] = []
    now = engine.clock.now()
    state = engine.state(incident)
    for page in list(state.escalation.unnotified):
        if (force or now - page.at >= STALE_INTENT) and not timers.page_moot(state, page.seq):
            out += send_page(engine, incident, page.seq)
    for action, at in (("acknowledge", state.acknowledged_at), ("resolve", state.resolved_at)):
        owed = timers.update_owed(engine.state(incident), action)
        if owed and (force or now - at >= STALE_INTENT):
            out += send_update(engine, incident, action, owed)
    return out


# pages in: what a pager's own app did with an alert runbook opened ----------------------------

_IGNORABLE = re.compile("[\ufe00-\ufe0f\u180b-\u180f\U000e0100-\U000e01ef]")  # variation selectors: invisible
KEY = re.compile(r"runbook-((?:INC|DRL)-[0-9A-Za-z]+)-")  # an incident's, or a live drill's
PAGER_ACTIONS = ("acknowledged", "resolved", "reassigned")


@dataclass(frozen=True)
class PagerReport:
    """One event from a pager's webhook, already verified as the pager's (its signature)."""

    pager: str  # the plugin's channel: "pagerduty"
    action: str  # one of PAGER_ACTIONS
    event_id: str
    key: str  # the dedup key runbook sent (the pager's incident key)
    agent_id: str = ""
    agent_name: str = ""
    pager_incident: str = ""
    to: tuple[str, ...] = ()  # reassigned to, as the pager names them
    occurred_at: str = ""


def from_pager(engine: Engine, report: PagerReport) -> tuple[str, str, list[Event]]:
    """Record what the pager says happened to one of runbook's alerts: (outcome, incident,
    events). The incident is the one whose log says it opened that dedup key at that pager,
    never one named by the payload alone. An acknowledgement (or a resolve, which means
    someone handled the page) acknowledges the incident as the roster person whose `pagerduty`
    id is the agent's, or as "NAME (PagerDuty)"; a resolve does not resolve runbook's incident,
    which restores degradations and is decided in runbook. Outcomes: "recorded", "repeat" (this
    event is in the log already), "unknown" (no incident opened that key)."""
    if report.action not in PAGER_ACTIONS:
        raise ValueError(f"unknown pager action {report.action!r}")
    found = KEY.match(report.key)
    if found is None:
        return "unknown", "", []
    try:
        state = engine.state(found[1])
    except NotFoundError:
        return "unknown", "", []
    if report.key not in state.escalation.alerts.get(report.pager, {}):
        return "unknown", state.id, []
    person = person_with(state.snapshot.rosters, report.pager, report.agent_id)
    actor = person.id if person is not None else _pager_actor(report)

    def build(s):
        if report.event_id in s.escalation.reported:
            return []
        events = [PagerReported(report.pager, report.action, report.event_id, report.key,
                                one_line(report.agent_name)[:200] or report.agent_id or "someone",
                                person.id if person is not None else None, report.pager_incident,
                                [one_line(name)[:200] for name in report.to], report.occurred_at)]
        if report.action in ("acknowledged", "resolved") and not s.acknowledged_at and not s.resolved:
            events.append(Acknowledged())
        return events
    events = engine.command(state.id, actor, build)
    if not events:
        return "repeat", state.id, []
    if any(e.type == "acknowledged" for e in events):
        events += tell_pagers(engine, state.id, "acknowledge", actor)  # the other pagers stop too
    return "recorded", state.id, events


def _pager_actor(report: PagerReport) -> str:
    """An actor name for an agent the roster does not know: their name as the pager gives it,
    made plain (no control, bidi or invisible characters) and short enough to be an actor."""
    label = {"pagerduty": "PagerDuty"}.get(report.pager, report.pager)
    suffix = f" ({label})"
    name = one_line("".join(c for c in report.agent_name if c == " " or unicodedata.category(c)[0] not in "CZ"))
    name = "".join(c for c in name if not _IGNORABLE.match(c)).strip()
    try:
        if not name.replace("\u3164", "").replace("\u115f", "").replace("\u1160", "").strip():
            raise InvalidActor("nothing visible")
        return check_actor(name[:ACTOR_MAX - len(suffix)].strip() + suffix)
    except InvalidActor:  # nothing plain left of the name
        plain = "".join(c for c in report.agent_id if c.isascii() and c.isalnum())[:32]
        return (plain or "someone") + suffix
