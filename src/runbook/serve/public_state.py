"""What the public status page says, projected from the incident logs through a StatusPage document.

Only two things in a log reach the public:
- the messages communicate steps posted for customers on the page's channel (MessagePosted, as
  posted: text, time and phase), and
- component states, from the page's mapping of the incident's service and symptom (as recorded
  at open) and of the degradations applied and their shares (as the log records them).
Nothing else is read: no title, parameter, note, name, command, severity or incident id. The
public id of an incident is a digest of its id, so it links updates without naming it. Drills
never reach the public.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import NamedTuple

from runbook.catalog.statuspage import Component, StatusPage, worst
from runbook.engine.clock import iso, parse
from runbook.errors import RunbookError
from runbook.text import shown

# a component state as Statuspage's incident impact and page indicator say it
IMPACT = {"operational": "none", "under_maintenance": "maintenance", "degraded_performance": "minor",
          "partial_outage": "major", "major_outage": "critical"}
DESCRIPTION = {"none": "All Systems Operational", "maintenance": "Service Under Maintenance",
               "minor": "Minor Service Outage", "major": "Partial System Outage", "critical": "Major Service Outage"}
WORDS = {"operational": "Operational", "under_maintenance": "Under maintenance",
         "degraded_performance": "Degraded performance", "partial_outage": "Partial outage",
         "major_outage": "Major outage"}
MAINTENANCE = "under_maintenance"
PHASES = ("investigating", "identified", "monitoring", "resolved")


class Affected(NamedTuple):
    component: str  # component id
    name: str
    old: str
    new: str


class PublicUpdate(NamedTuple):
    id: str
    status: str  # investigating, identified, monitoring, resolved
    body: str
    at: datetime
    affected: tuple[Affected, ...]


class PublicIncident(NamedTuple):
    id: str
    name: str
    status: str
    impact: str
    created_at: datetime
    updated_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    updates: tuple[PublicUpdate, ...]  # newest first
    components: tuple[str, ...]  # ids of the components it affected
    last_update_at: datetime | None  # of its latest public update (the cadence reminder reads it)


class ComponentNow(NamedTuple):
    component: Component
    status: str
    updated_at: datetime | None
    says: tuple[str, ...]  # what its degradations mean for users now, in plain words
    days: tuple[tuple[str, str], ...]  # (YYYY-MM-DD, worst state that day), oldest first


class Maintenance(NamedTuple):
    """A scheduled maintenance window as the public sees it: its title and words, its times, its
    components (by id of this page); never who scheduled it or its paging threshold."""

    id: str
    name: str
    body: str
    status: str  # scheduled, in_progress or completed
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    components: tuple[str, ...]


class PublicStatus(NamedTuple):
    page: StatusPage
    now: datetime
    updated_at: datetime
    components: tuple[ComponentNow, ...]
    incidents: tuple[PublicIncident, ...]  # newest first, within the history window
    maintenances: tuple[Maintenance, ...] = ()  # not over yet, earliest first

    @property
    def indicator(self) -> str:
        states = [c.status for c in self.components]
        worse = [s for s in states if s != MAINTENANCE]
        if MAINTENANCE in states and worst(*worse) == "operational":
            return IMPACT[MAINTENANCE]
        return IMPACT[worst(*worse)]

    @property
    def unresolved(self) -> tuple[PublicIncident, ...]:
        return tuple(i for i in self.incidents if i.resolved_at is None)


def public_id(text: str) -> str:
    """An opaque, stable id: it links one incident's updates without naming the incident."""
    return hashlib.sha256(f"runbook public {text}".encode()).hexdigest()[:12]


def timeline(state, page: StatusPage) -> list[tuple[datetime, dict]]:
    """(when, {component id: state}) at each change the log records, for the components this
    incident affects; the last entry is operational for each once resolved."""
    hit = [c for c in page.components if c.affected_by(state.service, state.symptom)
           or any(name in c.degradations for name in state.playbook.degradations)]
    if not hit:
        return []
    shares: dict[str, int | None] = {}  # degradation applied -> its share (None: whole)
    out, open_ = [], False

    def snapshot() -> dict:
        states = {}
        for c in hit:
            found = [c.open] if open_ and c.affected_by(state.service, state.symptom) else []
            for name, share in shares.items():
                entry = c.degradation_state(name, share)
                if entry is not None:
                    found.append(entry.state)
            states[c.id] = worst(*found) if found else "operational"
        return states

    for event in state.events:
        kind = event.type
        if kind == "opened":
            open_ = True
        elif kind == "degradation_applied":
            shares[event.record.degradation] = event.record.share
        elif kind == "degradation_restored":
            shares.pop(event.record.degradation, None)
        elif kind == "resolved":
            open_, shares = False, {}
        else:
            continue
        now = snapshot()
        if not out or out[-1][1] != now:
            out.append((event.at, now))
    return out


def at(changes: list, when: datetime, component: str) -> str:
    found = "operational"
    for moment, states in changes:
        if moment > when:
            break
        found = states.get(component, found)
    return found


def incident_of(state, page: StatusPage, changes: list) -> PublicIncident | None:
    """The public face of one incident: None when nothing of it was posted publicly."""
    names = {c.id: c.name for c in page.components}
    posted = [e for e in state.messages if page.is_public(e.record)]
    if not posted:
        return None
    # the opened event's hash is in the key: no one can go from the public id back to the
    # incident id by trying every id, as the ids are short
    secret = f"{state.id} {state.events[0].hash}"
    touched = tuple(c for c in names if any(states.get(c, "operational") != "operational" for _, states in changes))
    updates, before = [], {c: "operational" for c in touched}
    for event in posted:
        record = event.record
        status = record.status if record.status in PHASES else "investigating"
        now = {c: at(changes, event.at, c) for c in touched}
        affected = tuple(Affected(c, names[c], before[c], now[c]) for c in touched)
        before = now
        updates.append(PublicUpdate(public_id(f"{secret} {event.seq}"), status, shown(record.text.strip()),
                                    event.at, affected))
    reached = worst(*(s for _, states in changes for s in states.values()))
    status = "resolved" if state.resolved else updates[-1].status
    monitoring = next((u.at for u in updates if u.status == "monitoring"), None)
    affected_names = [names[c] for c in touched]
    name = (f"{WORDS[reached]}: {', '.join(affected_names)}" if affected_names and reached != "operational"
            else "Service disruption")
    last = state.events[-1].at if state.events else state.opened_at
    return PublicIncident(public_id(secret), name, status, IMPACT[reached], state.opened_at, last,
                          monitoring, state.resolved_at, tuple(reversed(updates)), touched, updates[-1].at)


def project(engine, page: StatusPage) -> PublicStatus:
    """The page now: every incident that is open or resolved within the history window, drills
    left out, read from its log. The page's document as the catalog has it now (a server reloads
    an edited catalog), else as it was at start."""
    page = engine.catalog.models("StatusPage").get(page.id, page)
    now = engine.clock.now()
    start = (now - timedelta(days=page.history_days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = {r["id"]: r for r in engine.list(open_only=True, drills=False)}
    rows.update({r["id"]: r for r in engine.list(resolved_since=iso(start), drills=False)})
    days = [(start + timedelta(days=n)).date() for n in range((now.date() - start.date()).days + 1)]
    daily = {c.id: dict.fromkeys(days, "operational") for c in page.components}
    current = {c.id: ["operational"] for c in page.components}
    changed: dict[str, datetime] = {}
    says: dict[str, list[str]] = {c.id: [] for c in page.components}
    incidents, updated = [], None
    for incident in rows:
        try:
            state = engine.state(incident)
        except RunbookError:  # a record too damaged to load says nothing in public
            continue
        if state.drill:
            continue
        changes = timeline(state, page)
        for n, (moment, states) in enumerate(changes):
            until = changes[n + 1][0] if n + 1 < len(changes) else now
            for component, value in states.items():
                changed[component] = max(changed.get(component, moment), moment)
                day = max(moment.date(), start.date())
                while day <= until.date() and day in daily[component]:
                    daily[component][day] = worst(daily[component][day], value)
                    day += timedelta(days=1)
        if changes and not state.resolved:
            for component, value in changes[-1][1].items():
                current[component].append(value)
            for c in page.components:
                says[c.id] += [entry.says for name, deg in state.degradations.items() if deg.applied
                               and (entry := c.degradation_state(name, deg.share)) is not None and entry.says]
        public = incident_of(state, page, changes)
        if public is not None:
            incidents.append(public)
            updated = max(updated or public.updated_at, public.updated_at)
    windows = maintenances(engine, page, now)
    under = {c for w in windows if w.status == "in_progress" for c in w.components}
    components = []
    for c in page.components:
        state_now = worst(*current[c.id])
        if state_now == "operational" and c.id in under:
            state_now = MAINTENANCE
        components.append(ComponentNow(c, state_now, changed.get(c.id),
                                       tuple(shown(s) for s in dict.fromkeys(says[c.id])),
                                       tuple((d.isoformat(), daily[c.id][d]) for d in days)))
    updated = max([updated or start, *changed.values()])
    incidents.sort(key=lambda i: i.created_at, reverse=True)
    return PublicStatus(page, now, updated, tuple(components), tuple(incidents), windows)


def maintenances(engine, page: StatusPage, now: datetime) -> tuple[Maintenance, ...]:
    """The windows over this page's components that are not over and not cancelled."""
    ours = {c.id for c in page.components}
    out = []
    for row in engine.store.maintenance(ending_after=iso(now), cancelled=False):
        components = tuple(c for c in row["components"] if c in ours)
        if not components:
            continue
        starts, ends = parse(row["starts_at"]), parse(row["ends_at"])
        out.append(Maintenance(public_id(f"maintenance {row['id']}"), shown(row["title"]), shown(row["body"] or ""),
                               "in_progress" if starts <= now else "scheduled", starts, ends,
                               parse(row["created_at"]), components))
    return tuple(out)
