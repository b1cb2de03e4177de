"""An incident's state is a pure fold of its events; nothing else is authoritative.

The state's shape lives here; how each event type moves it is declared with the event's record
in `engine/events.py` (`fold`, `apply`), so readers can catch up incrementally. The fold never
looks at the clock or the playbook's flow: the engine records each step transition as an event
when it decides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from runbook.engine.snapshot import Snapshot
from runbook.errors import RecordError

if TYPE_CHECKING:
    from runbook.engine.events import Event

PENDING, ACTIVE, DONE, SKIPPED, FAILED = "pending", "active", "done", "skipped", "failed"


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
    approved_at: datetime | None = None
    approved_content: dict | None = None  # what the approval covered, rendered (None: an older log's approval)
    approved_digest: str | None = None
    polls: int = 0
    last_poll: str = ""
    output: str = ""  # the tail of the last run's stdout and stderr (action or check)
    exit_code: int | None = None  # of that run; None when it never ran or did not exit
    ran: bool = False  # whether the step's automation ran at all
    captures: dict = field(default_factory=dict)  # name -> value its last run captured (none: no match)
    last_outcome: str = ""  # the last poll's class: holds, not-yet or broken
    due_at: datetime | None = None  # a plain timed wait (for:) came due in this attempt
    retry_at: datetime | None = None  # a failed automation runs again then (retry:)
    retries: int = 0  # automatic retries in this visit

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
    pending_by: str = ""
    # a staged degradation (rollout:): the stage applied (0-based; -1 none), its share, since when
    stage: int = -1
    share: int | None = None
    stage_at: datetime | None = None
    held: bool = False  # a responder holds it at this stage: it does not advance by itself
    held_by: str = ""  # ...who, and why (StageSteered)
    held_reason: str = ""
    unwinding: bool = False  # a staged restore: one stage down after each hold, until restored
    applied_by: str = ""  # who started its current application (its first stage, for a staged one)
    checks: dict = field(default_factory=dict)  # check name -> (outcome, value, detail, at) in this stage
    checked_at: datetime | None = None  # the last time the stage's checks ran
    awaiting: str | None = None  # a mitigating step done short of the stage that mitigates (MitigationAwaited)

    @property
    def touched(self) -> bool:
        """Applied fully, or partly (some of its flags changed and not restored)."""
        return self.applied or bool(self.flags)


@dataclass
class Delivery:
    """One plugin's latest try at one page or pager update (notified / pager_updated events)."""

    plugin: str
    channel: str
    attempts: int
    last_at: datetime
    delivered: bool
    retryable: bool = False  # failed for a passing reason: tried again with backoff (engine/backoff.py)
    detail: str = ""


@dataclass
class Escalation:
    """Where paging stands. A playbook may give each severity its own escalation policy (ladder);
    a severity change that brings another ladder starts it at level 1 from the change."""

    count: int = 0  # pages on every ladder
    level: int = 0  # 1-based level last notified on the ladder in force
    round: int = 0
    last_due: datetime | None = None
    highest: int = 0  # the highest level paged on any ladder (a metric)
    unnotified: list = field(default_factory=list)  # escalated events with no notified result yet
    policy: str | None = None  # id of the ladder in force: the escalation policy of the current severity
    since: datetime | None = None  # when that ladder came into force (at open, or by a severity change)
    paged: int = 0  # pages on the ladder in force
    reached: int = 0  # the highest level paged on the ladder in force
    pages: dict = field(default_factory=dict)  # seq -> escalated event, every page on every ladder
    deliveries: dict = field(default_factory=dict)  # (page seq, or "acknowledge"/"resolve", plugin) -> Delivery
    alerts: dict = field(default_factory=dict)  # plugin -> {dedup key: page seq}: alerts it opened at a pager
    updates: dict = field(default_factory=dict)  # "acknowledge"/"resolve" -> seq of the event that asks for it
    reported: dict = field(default_factory=dict)  # a pager's event id -> seq of the pager_reported event
    by_pager: bool = False  # levels after the first are left to the pager's own escalation (RUNBOOK_ESCALATION)


@dataclass
class IncidentState:
    id: str
    snapshot: Snapshot
    title: str = ""
    service: str = ""
    severity: str = ""
    severity_source: str | None = None  # where the opening severity came from (None: the playbook's default)
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
    from_incident: str | None = None  # the incident that handed off to this one
    handoffs: list = field(default_factory=list)  # (step, playbook, incident opened) per handoff made
    # per handoff to someone who is not a playbook: step, to, contact, instructions, resolves, at, by
    handed_to: list = field(default_factory=list)
    resolved_by_handoff: str | None = None  # resolved by a handoff step: the incident that carries on
    closed_at: datetime | None = None  # the follow-up phase finished (or was closed by hand)
    holders: dict = field(default_factory=dict)  # role id -> who holds it now (role_assigned events)
    members: dict = field(default_factory=dict)  # role held by several (many: true) -> its holders, in order
    signals: dict = field(default_factory=dict)  # signal name -> (who gave it, when)
    parameters: dict = field(default_factory=dict)  # name -> value, as set at open or since
    parameter_sources: dict = field(default_factory=dict)  # name -> param, label, form or default
    labels: dict = field(default_factory=dict)  # the alert labels given at open (when: {label: ...} reads them)
    stale: dict = field(default_factory=dict)  # parameter -> why its value is stale (a later capture of it missed)
    steps: dict[str, StepState] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)  # track -> current step id (None: finished)
    runs: list[StepRun] = field(default_factory=list)
    degradations: dict[str, DegradationState] = field(default_factory=dict)
    escalation: Escalation = field(default_factory=Escalation)
    reminders: dict[str, int] = field(default_factory=dict)
    breaches: dict[str, datetime] = field(default_factory=dict)
    rises: set = field(default_factory=set)
    alert_changes: list = field(default_factory=list)  # (when, firing) as the alert's source reported it
    injects: int = 0
    guard_checked_at: datetime | None = None  # a drill's guard checks last ran
    actions_pending: dict[str, Event] = field(default_factory=dict)
    background: dict[str, Event] = field(default_factory=dict)  # step -> background_started not stopped yet
    messages: list[Event] = field(default_factory=list)  # message_posted events, oldest first: what was posted
    posts_due: dict = field(default_factory=dict)  # step -> (repeat, why, due at): a cadence's post awaiting a person
    chat_root: str | None = None  # the chat's id of the incident's thread root (engine/chat.py)
    chat_upto: int = 0  # events up to this seq are in the chat
    chat_received: set = field(default_factory=set)  # the chat's ids of the commands taken from it
    events: list[Event] | History = field(default_factory=list)  # a History when read from a checkpoint
    last_seq: int = 0
    tampered: str = ""  # what the quick checks at load found wrong with the record (engine/integrity.py)
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # caches keyed by last_seq
    # the checkpoint it was read from or last wrote (engine/checkpoint.py): its event, and the
    # store's summary row as the log folds to it there
    base_seq: int = field(default=0, repr=False, compare=False)
    base_summary: dict | None = field(default=None, repr=False, compare=False)

    @property
    def notes(self) -> list[Event]:
        """The notes, oldest first (read from the whole log: an export, the postmortem)."""
        return [e for e in self.events if e.type == "note_added"]

    @property
    def action_items(self) -> list[Event]:
        return [e for e in self.events if e.type == "action_item_added"]

    @property
    def playbook(self):
        return self.snapshot.playbook

    @property
    def sandboxed(self) -> bool:
        """Whether flag changes go to the sandbox file: drills, unless declared live."""
        return self.drill and not self.live

    @property
    def alert_firing(self) -> bool:
        """Whether the symptom's alert still fires (as far as its source said; firing until told)."""
        return self.alert_changes[-1][1] if self.alert_changes else True

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def in_followup(self) -> bool:
        """Resolved, with the playbook's follow-up steps still to do."""
        return self.resolved and not self.closed and self.playbook.followup is not None

    @property
    def phase(self) -> str:
        """response, follow-up (after resolve, until closed), closed, or resolved (no follow-up phase)."""
        if self.closed:
            return "closed"
        if self.in_followup:
            return "follow-up"
        return "resolved" if self.resolved else "response"

    def current_steps(self) -> list[str]:
        """Steps that are current right now, main track first (tracks run side by side); in the
        follow-up phase only the follow-up steps are."""
        followup = self.in_followup
        return [step for track, step in self.current.items()
                if step is not None and (not followup or track == "followup")]


class History:
    """An incident's events in order, as `state.events` holds them when the state was read from a
    checkpoint: the opened event and the recent events (those after the checkpoint and a window
    before it) are at hand, and the rest is read from the log the first time something walks the
    whole of it (an export, the postmortem, the metrics). Length, the last events and the first
    cost nothing more; any other position reads the rest once."""

    __slots__ = ("_first", "_head", "_load", "_recent")

    def __init__(self, recent: list, first: int, head=None, load=None):
        self._recent = list(recent)  # the events from seq `first` on, contiguous
        self._first = first
        self._head = head  # the opened event (seq 1)
        self._load = load  # () -> every event of the log, oldest first

    def append(self, event) -> None:
        self._recent.append(event)

    def __len__(self) -> int:
        return self._first - 1 + len(self._recent)

    @property
    def whole(self) -> bool:
        """Whether every event is at hand (walking them reads nothing more)."""
        return self._first == 1

    def __bool__(self) -> bool:
        return len(self) > 0

    def _all(self) -> list:
        if self._first > 1:
            earlier = [e for e in self._load() if e.seq < self._first]
            if [e.seq for e in earlier] != list(range(1, self._first)):
                raise RecordError(f"the log lost events before event {self._first} after its checkpoint was "
                                  "written; `runbook incident verify` names every problem")
            self._recent = earlier + self._recent
            self._first, self._head, self._load = 1, None, None
        return self._recent

    def __getitem__(self, index):
        size, offset = len(self), self._first - 1
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step > 0 and start >= offset:
                return self._recent[start - offset:stop - offset:step] if stop > start else []
            return self._all()[index]
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("event index out of range")
        if index >= offset:
            return self._recent[index - offset]
        if index == 0 and self._head is not None:
            return self._head
        return self._all()[index]

    def __iter__(self):
        return iter(self._all())

    def __reversed__(self):
        recent = list(self._recent)
        yield from reversed(recent)
        if len(self) > len(recent):
            yield from reversed(self._all()[:len(self) - len(recent)])

    def __eq__(self, other) -> bool:
        return isinstance(other, (list, History)) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"History({len(self)} events, from event {self._first} at hand)"


def new_state(incident: str, snapshot: Snapshot) -> IncidentState:
    state = IncidentState(incident, snapshot)
    for track in snapshot.playbook.tracks:
        state.current[track.id] = None
        for step in track.steps:
            state.steps[step.id] = StepState(step.id, track.id)
    for name in snapshot.playbook.degradations:
        state.degradations[name] = DegradationState(name)
    return state
