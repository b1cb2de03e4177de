"""Learning from incidents, read from the log: the review people write, action items across
incidents (with evidence when closed, reminders when overdue), and past incidents like this one.

Every figure here is read from events (review_written, action_item_*; the opened, mitigated,
degradation and note events); the search index the store keeps (search_docs) is a projection of
the log, rebuilt from it by `index` whenever it is behind (`reindex`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

from runbook.engine.clock import iso
from runbook.engine.events import ActionItemAdded, ActionItemClosed, ActionItemReminded
from runbook.engine.state import IncidentState
from runbook.errors import CommandError, NotFoundError, UsageError

# The postmortem sections people write (Google SRE / PagerDuty templates), in the export's order.
REVIEW_SECTIONS = {
    "summary": "Summary",
    "impact": "Impact",
    "trigger": "Trigger",
    "root-cause": "Root cause",
    "resolution": "Resolution",
    "recovery": "Recovery",
    "went-well": "What went well",
    "went-wrong": "What went wrong",
    "got-lucky": "Where we got lucky",
}
KINDS = ("prevent", "mitigate", "detect", "process")
PRIORITIES = ("P1", "P2", "P3", "P4")
EVIDENCE = ("link", "drill", "check")
ITEM_TYPES = ("action_item_added", "action_item_closed", "action_item_reminded")
# events after which an incident's words are rebuilt. Not every note while it runs: rebuilding is a
# second commit, which would make a note two to three times slower; mitigating and resolving take
# in every note so far, and notes after resolve (rare) are taken in as they come
WORD_TYPES = frozenset({"opened", "parameters_set", "mitigated", "resolved", "review_written", "alert_received",
                        "action_item_added"})


def changes_words(state: IncidentState, appended) -> bool:
    """Whether the events just appended change what the incident is found by, enough to rebuild now."""
    return any(e.type in WORD_TYPES or (e.type == "note_added" and state.resolved_at is not None)
               for e in appended)
TOP = 3
CANDIDATES = 20  # from each of the store's two reads (text matches, latest of the playbook)
MAX_TERMS = 40
SEARCH_ALL_BELOW = 200  # incidents: below that many, every word is searched for
COMMON = 0.05  # a word more incidents than this share hold is not searched for (it still scores)
OTHER_PLAYBOOK_SHARE = 0.3  # of the incident's words (weighed by rarity) another playbook's must share


# the review ----------------------------------------------------------------------------------

def check_section(section: str) -> str:
    if section not in REVIEW_SECTIONS:
        raise UsageError(f"unknown review section {section!r}; use one of: {', '.join(REVIEW_SECTIONS)}")
    return section


def review(state: IncidentState) -> dict[str, tuple[str, str, datetime]]:
    """Section -> (text, who wrote it, when): the latest of each, as written."""
    out = {}
    for e in state.events:
        if e.type == "review_written":
            out[e.record.section] = (e.record.text, e.actor, e.at)
    return out


# action items --------------------------------------------------------------------------------

@dataclass
class ActionItem:
    incident: str
    number: int
    text: str
    owner: str
    added_at: datetime
    added_by: str
    due: str | None = None
    priority: str | None = None
    kind: str | None = None
    ticket: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    evidence: str | None = None
    evidence_kind: str | None = None
    reminded_at: datetime | None = None

    @property
    def id(self) -> str:
        return f"{self.incident}#{self.number}"

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def overdue(self, today: date) -> bool:
        return self.open and self.due is not None and date.fromisoformat(self.due) < today

    def age_days(self, now: datetime) -> int:
        return ((self.closed_at or now) - self.added_at).days

    def to_dict(self, now: datetime) -> dict:
        return {"id": self.id, "incident": self.incident, "number": self.number, "text": self.text,
                "owner": self.owner, "due": self.due, "priority": self.priority, "kind": self.kind,
                "ticket": self.ticket, "status": "open" if self.open else "closed",
                "overdue": self.overdue(now.date()), "age_days": self.age_days(now),
                "added_at": iso(self.added_at), "added_by": self.added_by,
                "closed_at": iso(self.closed_at) if self.closed_at else None, "closed_by": self.closed_by,
                "evidence": self.evidence, "evidence_kind": self.evidence_kind,
                "reminded_at": iso(self.reminded_at) if self.reminded_at else None}


def items_from(events) -> list[ActionItem]:
    """The action items of events given as (incident, at, actor, record), in log order."""
    items: dict[tuple[str, int], ActionItem] = {}
    counts: dict[str, int] = {}
    for incident, at, actor, rec in events:
        if isinstance(rec, ActionItemAdded):
            counts[incident] = counts.get(incident, 0) + 1
            items[(incident, counts[incident])] = ActionItem(
                incident, counts[incident], rec.text, rec.owner or actor, at, actor, rec.due, rec.priority,
                rec.kind, rec.ticket)
        elif isinstance(rec, ActionItemClosed) and (incident, rec.item) in items:
            item = items[(incident, rec.item)]
            item.closed_at, item.closed_by, item.evidence, item.evidence_kind = at, actor, rec.evidence, \
                rec.evidence_kind
        elif isinstance(rec, ActionItemReminded) and (incident, rec.item) in items:
            items[(incident, rec.item)].reminded_at = at
    return list(items.values())


def incident_items(state: IncidentState) -> list[ActionItem]:
    return items_from((state.id, e.at, e.actor, e.record) for e in state.events if e.type in ITEM_TYPES)


def all_items(engine) -> list[ActionItem]:
    """Every action item of every incident, from the log (one indexed read of the item events)."""
    from runbook.engine.events import Event

    return items_from((s.incident, e.at, e.actor, e.record)
                      for s in engine.store.events_of_types(ITEM_TYPES) for e in (Event.from_stored(s),))


def parse_item_id(text: str) -> tuple[str, int]:
    """"INC-…#2" -> (incident as typed, 2)."""
    incident, _, number = text.rpartition("#")
    if not incident or not number.isdigit():
        raise UsageError(f"{text!r} is not an action item id; they look like INC-F28BE8#2 "
                           "(`runbook actions list` shows them)")
    return incident, int(number)


def check_item_fields(due: str | None, priority: str | None, kind: str | None) -> None:
    if due is not None:
        try:
            date.fromisoformat(due)
        except ValueError:
            raise UsageError(f"due date {due!r} is not a date; write it as 2026-12-24") from None
    if priority is not None and priority not in PRIORITIES:
        raise UsageError(f"unknown priority {priority!r}; use one of: {', '.join(PRIORITIES)}")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")


def item_of(state: IncidentState, number: int) -> ActionItem:
    for item in incident_items(state):
        if item.number == number:
            return item
    raise NotFoundError(f"{state.id} has no action item #{number}; it has "
                        f"{len(incident_items(state))} (`runbook actions list --incident {state.id}`)")


def close_records(state: IncidentState, number: int, evidence: str, evidence_kind: str) -> list:
    item = item_of(state, number)
    if not item.open:
        raise CommandError(f"action item {item.id} was already closed by {item.closed_by} at "
                           f"{item.closed_at:%Y-%m-%d %H:%M}")
    if evidence_kind not in EVIDENCE:
        raise UsageError(f"unknown evidence kind {evidence_kind!r}; use one of: {', '.join(EVIDENCE)}")
    if not evidence.strip():
        raise CommandError("closing an action item needs evidence: a link, a drill that passed or a check that "
                           "now holds (--evidence)")
    return [ActionItemClosed(number, evidence, evidence_kind)]


def remind_overdue(engine, actor: str) -> list[dict]:
    """Remind the owner of each overdue open item, once a day at most, through the notify hooks;
    each reminder is recorded on the item's incident (what was sent, how many notifiers took it)."""
    from runbook.pluginapi import EscalationNotice, Recipient

    now = engine.clock.now()
    sent = []
    for item in all_items(engine):
        if not item.overdue(now.date()) or (item.reminded_at and (now - item.reminded_at).days < 1):
            continue
        incident = engine.state(item.incident)  # a drill's item never reaches a real pager
        notice = EscalationNotice(
            item.incident, f"Overdue action item {item.id}: {item.text}", incident.severity, 0,
            (Recipient(item.owner, item.owner, via="action item owner"),),
            summary=f"due {item.due}; close it with evidence: runbook actions close {item.id} --evidence …",
            playbook=incident.playbook.id, service=incident.service, drill=incident.drill,
            sandboxed=incident.sandboxed)
        results = engine.plugins.notify(notice)[0] if engine.plugins is not None else []
        delivered = sum(1 for r in results if r.delivered)
        engine.command(item.incident, actor,
                       lambda state, item=item, n=delivered: [ActionItemReminded(item.number, item.owner,
                                                                                 item.due, n)])
        sent.append({"id": item.id, "owner": item.owner, "due": item.due, "delivered": delivered})
    return sent


# past incidents like this one ----------------------------------------------------------------

def terms(text: str) -> list[str]:
    """Lower-case words of letters and digits, each once, in order (what both dialects index)."""
    return list(dict.fromkeys(re.findall(r"[a-z0-9]+", text.lower())))


def words(state: IncidentState) -> str:
    """The incident's searchable words, from its log: playbook, service, title, symptom, parameters
    and labels, notes, the review, what mitigated it."""
    parts = [state.playbook.id, state.service, state.title, state.symptom or ""]
    symptom = next((s for s in state.playbook.symptoms if s.id == state.symptom), None) if state.symptom else None
    if symptom is not None:
        parts.append(symptom.summary)
    # a parameter or alert label also as one word of name and value ("regioneuwest1"): an exact
    # match of the value tells eu-west-1 from eu-central-1, which share two of their three words
    labels = dict(state.parameters)
    for e in state.events:
        if e.type == "alert_received":
            labels.update({k: v for k, v in e.record.labels.items() if k != "alertname"})
    parts += [f"{name} {value} {name}{''.join(terms(str(value)))}" for name, value in labels.items()]
    parts += [e.data.get("text", "") for e in state.events if e.type in ("note_added", "review_written")]
    parts += [a.record.text for a in state.events if a.type == "action_item_added"]
    fix = mitigation(state) if state.mitigated_at else None
    parts += [fix["step"], fix["degradation"]] if fix else []
    return " ".join(terms(" ".join(p for p in parts if p)))


def index(engine, state: IncidentState, after_command: bool = False) -> None:
    """Keep the incident's words in the store's search index (derived: a failure costs only a
    stale match until the next change or `runbook db reindex`). After a command on a big
    incident read from its checkpoint, it is left behind: its words are in the whole log, and a
    command must not read that (`runbook db reindex` does)."""
    from runbook.engine.state import History
    from runbook.store import StoreError

    store = engine.store
    if not store.features.searches_text or store.features.readonly or state.opened_at is None:
        return
    if after_command and isinstance(state.events, History) and not state.events.whole:
        return
    try:
        store.index_words(state.id, state.last_seq, state.playbook.id, iso(state.opened_at), state.drill,
                          state.mitigated_at is not None, words(state))
    except StoreError:
        pass


def reindex(engine) -> int:
    """Rebuild the words of every incident whose index is missing or behind its log; how many."""
    behind = engine.store.search_behind()
    for incident in behind:
        index(engine, engine.state(incident))
    return len(behind)


def mitigation(state: IncidentState) -> dict:
    """What mitigated the incident, from its log: the step or degradation, who, after how long."""
    event = next((e for e in state.events if e.type == "mitigated"), None)
    if event is None:
        return {"what": "", "who": "", "seconds": None, "step": "", "degradation": ""}
    rec = event.record
    degraded = [e.record.degradation for e in state.events
                if e.type == "degradation_applied" and e.seq <= event.seq]
    what = rec.degradation or (degraded[-1] if degraded else "")
    step = rec.step or ""
    if step and step in state.steps:
        title = state.playbook.step(step).title
        step = f"{step} ({title})" if title else step
    described = " · ".join(x for x in (f"step {step}" if step else "", f"degradation {what}" if what else "") if x)
    # who: the person whose act marked it (the mitigated event itself is often the engine's)
    acts = [e.actor for e in state.events if e.seq <= event.seq and e.type in (
        "step_completed", "degradation_applied", "decision_made", "mitigated")]
    who = acts[-1] if acts else event.actor
    return {"what": described or "a responder's mark (no step or degradation recorded)", "who": who,
            "step": rec.step or "", "degradation": what,
            "seconds": (event.at - state.opened_at).total_seconds()}


def similar(engine, incident: str, limit: int = TOP) -> list[dict]:
    """The past incidents most like `incident` (opened before it), best first, each with what
    mitigated it and its open action items.

    Candidates come from two indexed reads of the store: the best text matches (SQLite FTS5,
    PostgreSQL full-text search) of the incident's rarer words, and the latest incidents of its
    playbook. Words nearly every incident has (a playbook's title among thousands of its
    incidents) are left out of the text search: they would make it rank every incident, and they
    tell nothing apart. Each candidate scores the rarity (idf: how many incidents hold it) of
    the words it shares; the same playbook and a mitigation that worked count double each."""
    state = engine.state(incident)
    if not engine.store.features.searches_text:
        return []
    ranked = rank(engine.store, terms(words(state))[:MAX_TERMS], state.playbook.id, state.id, iso(state.opened_at))
    now = engine.clock.now()
    out = []
    for row in ranked[:limit]:
        past = engine.state(row["incident"])
        open_items = [i for i in incident_items(past) if i.open]
        out.append({"incident": past.id, "title": past.title, "playbook": past.playbook.id,
                    "opened_at": iso(past.opened_at), "status": past.status, "drill": past.drill,
                    "score": round(row["rank"], 3), "mitigation": mitigation(past),
                    "open_actions": [i.to_dict(now) for i in open_items]})
    return out


def rank(store, query: list[str], playbook: str, exclude: str, before: str) -> list[dict]:
    """The candidates of `similar`, best first (its text says how), each with its "rank"."""
    total, df = store.term_counts(query)
    rare = [t for t in query if df[t] <= COMMON * total] if total >= SEARCH_ALL_BELOW else query
    candidates = {row["incident"]: row for row in (
        store.search(rare, CANDIDATES, exclude=exclude, before=before)
        + store.latest_words(CANDIDATES, before, playbook=playbook, exclude=exclude))}
    idf = {t: math.log((total + 1) / (df[t] + 0.5)) for t in query}
    weight = sum(idf.values()) or 1
    found = []
    for row in candidates.values():
        share = sum(idf[t] for t in set(query) & set(row["words"].split())) / weight
        if row["playbook"] != playbook and share < OTHER_PLAYBOOK_SHARE:
            continue  # a word or two in common ("failing") is no likeness
        row["rank"] = share * (2 if row["playbook"] == playbook else 1) * (2 if row["mitigated"] else 1)
        found.append(row)
    found.sort(key=lambda row: row["opened_at"], reverse=True)  # on a tie, the latest first
    return sorted(found, key=lambda row: -row["rank"])


def repeat_warning(matches: list[dict]) -> str | None:
    """"repeat: action '…' from INC-… open 41 days" when the closest match has an open action item."""
    if not matches or not matches[0]["open_actions"]:
        return None
    item = max(matches[0]["open_actions"], key=lambda i: i["age_days"])
    return f"repeat: action '{item['text']}' from {item['incident']} open {item['age_days']} days"
