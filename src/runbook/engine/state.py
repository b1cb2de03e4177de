"""An incident's state is a pure fold of its events; nothing else is authoritative.

`fold(events, snapshot)` builds an `IncidentState`; `apply(state, event)` advances it by one
event, so readers can catch up incrementally. The fold never looks at the clock or the
playbook's flow: the engine records each step transition as an event when it decides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from runbook.engine.clock import parse
from runbook.engine.snapshot import Snapshot
from runbook.store import StoredEvent

PENDING, ACTIVE, DONE, SKIPPED, FAILED = "pending", "active", "done", "skipped", "failed"


class Event(NamedTuple):
    seq: int
    at: datetime
    actor: str
    type: str
    data: dict
    hash: str = ""

    @classmethod
    def from_stored(cls, stored: StoredEvent) -> "Event":
        return cls(stored.seq, parse(stored.ts), stored.actor, stored.type, stored.data, stored.hash)

    def to_dict(self) -> dict:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "type": self.type,
                "data": self.data, "hash": self.hash}


@dataclass
class StepState:
    id: str
    track: str
    status: str = PENDING
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str = ""
    approved_by: str | None = None
    approved_attempt: int = 0
    polls: int = 0
    last_poll: str = ""

    @property
    def approved(self) -> bool:
        return self.approved_by is not None and self.approved_attempt == self.attempt


@dataclass
class StepRun:
    step: str
    track: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = ""


@dataclass
class DegradationState:
    name: str
    applied: bool = False
    flags: dict = field(default_factory=dict)  # flag -> {"old": FlagState dict, "new": value}
    pending: dict | None = None  # the intent event's data while a change is in flight
    pending_seq: int = 0
    pending_at: datetime | None = None


@dataclass
class Escalation:
    count: int = 0
    level: int = 0  # 1-based level last notified
    round: int = 0
    last_due: datetime | None = None
    highest: int = 0
    unnotified: list = field(default_factory=list)  # escalated events with no notified result yet


@dataclass
class IncidentState:
    id: str
    snapshot: Snapshot
    title: str = ""
    service: str = ""
    severity: str = ""
    symptom: str | None = None
    drill: bool = False
    live: bool = False  # a drill declared live flips real flags, not the sandbox
    status: str = "open"
    opened_at: datetime | None = None
    opened_by: str = ""
    paging_since: datetime | None = None  # when the severity first became one that pages
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)  # track -> current step id (None: finished)
    runs: list[StepRun] = field(default_factory=list)
    degradations: dict[str, DegradationState] = field(default_factory=dict)
    escalation: Escalation = field(default_factory=Escalation)
    reminders: dict[str, int] = field(default_factory=dict)
    breaches: dict[str, datetime] = field(default_factory=dict)
    rises: set = field(default_factory=set)
    injects: int = 0
    actions_pending: dict[str, Event] = field(default_factory=dict)
    notes: list[Event] = field(default_factory=list)
    action_items: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    last_seq: int = 0
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # caches keyed by last_seq

    @property
    def playbook(self):
        return self.snapshot.playbook

    @property
    def sandboxed(self) -> bool:
        """Whether flag changes go to the sandbox file: drills, unless declared live."""
        return self.drill and not self.live

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    def current_steps(self) -> list[str]:
        """Steps that are current right now, main track first (tracks run side by side)."""
        return [step for track, step in self.current.items() if step is not None]


def new_state(incident: str, snapshot: Snapshot) -> IncidentState:
    state = IncidentState(incident, snapshot)
    for track in snapshot.playbook.tracks:
        state.current[track.id] = None
        for step in track.steps:
            state.steps[step.id] = StepState(step.id, track.id)
    for name in snapshot.playbook.degradations:
        state.degradations[name] = DegradationState(name)
    return state


def fold(incident: str, events, snapshot: Snapshot) -> IncidentState:
    state = new_state(incident, snapshot)
    for event in events:
        apply(state, event if isinstance(event, Event) else Event.from_stored(event))
    return state


def _finish_run(state: IncidentState, step_id: str, at: datetime, outcome: str) -> None:
    for run in reversed(state.runs):
        if run.step == step_id and run.finished_at is None:
            run.finished_at, run.outcome = at, outcome
            return


def _start_paging(state: IncidentState, at: datetime) -> None:
    level = state.snapshot.level(state.severity)
    if state.paging_since is None and (level is None or level.pages):
        state.paging_since = at


def apply(state: IncidentState, event: Event) -> None:
    data, at = event.data, event.at
    kind = event.type
    step = state.steps.get(data.get("step", "")) if "step" in data else None
    if kind == "opened":
        state.title, state.service = data["title"], data.get("service", "")
        state.severity, state.symptom, state.drill = data["severity"], data.get("symptom"), data.get("drill", False)
        state.live = data.get("live", False)
        state.opened_at, state.opened_by = at, event.actor
        _start_paging(state, at)
    elif kind == "step_started" and step:
        step.status, step.attempt, step.started_at, step.finished_at, step.reason = ACTIVE, data["attempt"], at, None, ""
        step.polls, step.last_poll = 0, ""
        state.current[step.track] = step.id
        state.runs.append(StepRun(step.id, step.track, step.attempt, at))
    elif kind in ("step_completed", "step_skipped", "step_failed") and step:
        step.status = {"step_completed": DONE, "step_skipped": SKIPPED, "step_failed": FAILED}[kind]
        step.finished_at, step.reason = at, data.get("reason", data.get("outcome", ""))
        _finish_run(state, step.id, at, step.status)
    elif kind == "track_finished":
        state.current[data["track"]] = None
    elif kind == "decision_made" and step:
        step.status, step.finished_at, step.reason = DONE, at, data["label"]
        _finish_run(state, step.id, at, f"chose {data['label']}")
    elif kind == "approval_granted" and step:
        step.approved_by, step.approved_attempt = event.actor, step.attempt
    elif kind == "check_polled" and step:
        step.polls = max(step.polls + 1, data.get("poll", 0))
        step.last_poll = data.get("summary", "")
    elif kind == "action_started":
        state.actions_pending[data["step"]] = event
    elif kind == "action_finished":
        state.actions_pending.pop(data["step"], None)
    elif kind == "degradation_started":
        deg = state.degradations.setdefault(data["degradation"], DegradationState(data["degradation"]))
        deg.pending, deg.pending_seq, deg.pending_at = data, event.seq, at
    elif kind == "flag_changed":
        deg = state.degradations.setdefault(data["degradation"], DegradationState(data["degradation"]))
        if data["op"] == "apply":
            deg.flags[data["flag"]] = {"old": data["old"], "new": data["new"]}
        else:
            deg.flags.pop(data["flag"], None)
    elif kind in ("degradation_applied", "degradation_restored", "degradation_failed"):
        deg = state.degradations.setdefault(data["degradation"], DegradationState(data["degradation"]))
        deg.pending, deg.pending_at = None, None
        if kind == "degradation_applied":
            deg.applied = True
        elif kind == "degradation_restored":
            deg.applied = False
        else:
            deg.applied = bool(deg.flags)
    elif kind == "acknowledged":
        state.acknowledged_at, state.acknowledged_by = at, event.actor
        state.status = "acknowledged" if state.status == "open" else state.status
    elif kind == "mitigated":
        state.mitigated_at = state.mitigated_at or at
        state.status = "mitigated" if state.status in ("open", "acknowledged") else state.status
    elif kind == "resolved":
        state.resolved_at, state.status = at, "resolved"
    elif kind == "severity_changed":
        state.severity = data["to"]
        _start_paging(state, parse(data["due_at"]) if "due_at" in data else at)
        if "rise" in data:
            state.rises.add(data["rise"])
    elif kind == "note_added":
        state.notes.append(event)
    elif kind == "action_item_added":
        state.action_items.append(event)
    elif kind == "escalated":
        esc = state.escalation
        esc.count += 1
        esc.level, esc.round, esc.last_due = data["level"], data["round"], parse(data["due_at"])
        esc.highest = max(esc.highest, data["level"])
        esc.unnotified.append(event)
    elif kind == "notified":
        state.escalation.unnotified = [e for e in state.escalation.unnotified
                                       if not (e.data["level"] == data["level"] and e.data["round"] == data["round"])]
    elif kind == "reminder_fired":
        state.reminders[data["reminder"]] = data["n"]
    elif kind == "drill_inject":
        state.injects = max(state.injects, data["n"])
    elif kind == "target_breached":
        state.breaches[data["target"]] = at
    state.events.append(event)
    state.last_seq = event.seq
