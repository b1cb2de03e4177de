"""Event records: the base class, the registry, the envelope read back from the log, the fold."""


from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import ClassVar, NamedTuple

from runbook.engine.clock import parse
from runbook.engine.state import DegradationState, IncidentState, new_state
from runbook.errors import RunbookError


class EventFormatError(RunbookError):
    """A stored event that no record describes: an unknown type, a missing or unknown field."""

    exit_code = 1


class EventRecord:
    """The base of every event record; subclasses become frozen dataclasses (in place, on first use:
    `_prepare`) registered by `@record`."""

    type: ClassVar[str] = ""
    loud: ClassVar[str | None] = None  # "warning" / "error": announced on screen with the bell
    tone: ClassVar[str] = ""  # the timeline line's style family: "", note, warning, error, flag, reminder
    _keys: ClassVar[tuple[tuple[str, str, bool], ...]] = ()  # (attribute, stored key, required)
    __slots__ = ()

    def fold(self, state: IncidentState, event: Event) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def project(self, ts: str) -> dict:
        """Columns of the store's incident summary this event sets (none by default)."""
        return {}

    def to_data(self) -> dict:
        return {key: getattr(self, attr) for attr, key, _ in self._keys}

    def __new__(cls, *args, **kwargs):
        if "_keys" not in cls.__dict__:
            _prepare(cls)
        return object.__new__(cls)

    @classmethod
    def from_data(cls, data: dict) -> EventRecord:
        if "_keys" not in cls.__dict__:
            _prepare(cls)
        known = {key for _, key, _ in cls._keys}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EventFormatError(f"a {cls.type} event has unknown field{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(map(repr, unknown))}; expected: {', '.join(sorted(known)) or 'none'}")
        missing = [key for _, key, required in cls._keys if required and key not in data]
        if missing:
            raise EventFormatError(f"a {cls.type} event lacks {', '.join(map(repr, missing))}")
        return cls(**{attr: data[key] for attr, key, _ in cls._keys if key in data})


RECORDS: dict[str, type[EventRecord]] = {}


def record(type_name: str, *, loud: str | None = None, tone: str = "", keys: dict | None = None):
    """Register a record class for `type_name`; `keys` renames attributes in the stored data
    (`from` is a Python keyword). Refuses a class without its own fold and describe."""

    def register(cls):
        for method in ("fold", "describe"):
            if method not in cls.__dict__:
                raise TypeError(f"event record {cls.__name__} ({type_name}) must define {method}()")
        if type_name in RECORDS:
            raise TypeError(f"event type '{type_name}' is registered twice")
        cls.type, cls.loud, cls.tone = type_name, loud, tone
        cls._renames = keys or {}
        RECORDS[type_name] = cls
        return cls

    return register


def _prepare(cls) -> None:
    """Make `cls` a frozen dataclass, in place, the first time one is made or read: defining the
    dataclass code of every record up front cost a fresh process (a TUI's first frame) tens of
    milliseconds for the many types an incident never uses."""
    dataclass(frozen=True)(cls)
    cls._keys = tuple((f.name, cls._renames.get(f.name, f.name),
                       f.default is MISSING and f.default_factory is MISSING) for f in fields(cls))


class Event(NamedTuple):
    """An event as read back or appended: its place in the log, who and when, and its record."""

    seq: int
    at: datetime
    actor: str
    record: EventRecord
    data: dict
    hash: str = ""
    ts: str = ""  # the time as the log stores it (the summary's columns keep this text)

    @property
    def type(self) -> str:
        return self.record.type

    @classmethod
    def from_stored(cls, stored) -> Event:
        return cls(stored.seq, parse(stored.ts), stored.actor, decode(stored.type, stored.data, stored.seq),
                   stored.data, stored.hash, stored.ts)

    def to_dict(self) -> dict:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "type": self.type,
                "data": self.data, "hash": self.hash}


def decode(type_name: str, data: dict, seq: int | None = None) -> EventRecord:
    where = f"event {seq}: " if seq is not None else ""
    cls = RECORDS.get(type_name)
    if cls is None:
        raise EventFormatError(f"{where}unknown event type '{type_name}' (written by a newer runbook, or altered)")
    if not isinstance(data, dict):
        raise EventFormatError(f"{where}the data of a {type_name} event is not an object")
    try:
        return cls.from_data(data)
    except EventFormatError as exc:
        raise EventFormatError(f"{where}{exc}") from None


def apply(state: IncidentState, event: Event) -> None:
    event.record.fold(state, event)
    state.events.append(event)
    state.last_seq = event.seq


def fold(incident: str, events, snapshot) -> IncidentState:
    state = new_state(incident, snapshot)
    for event in events:
        apply(state, event if isinstance(event, Event) else Event.from_stored(event))
    return state


# fold helpers --------------------------------------------------------------------------------

def finish_run(state: IncidentState, step_id: str, at: datetime, outcome: str) -> None:
    for run in reversed(state.runs):
        if run.step == step_id and run.finished_at is None:
            run.finished_at, run.outcome = at, outcome
            return


def start_paging(state: IncidentState, at: datetime) -> None:
    level = state.snapshot.level(state.severity)
    if state.paging_since is None and (level is None or level.pages):
        state.paging_since = at


def follow_ladder(state: IncidentState, at: datetime) -> None:
    """The escalation ladder follows the severity: a severity whose policy differs from the one in
    force brings its own ladder, which starts at level 1 from `at` (its levels name other people,
    so "the same level" would mean nothing). The same policy keeps its place."""
    policy = state.playbook.escalation_for(state.severity)
    esc = state.escalation
    if policy != esc.policy:
        esc.policy, esc.since, esc.last_due = policy, at, None
        esc.level = esc.round = esc.paged = esc.reached = 0


def degradation(state: IncidentState, name: str) -> DegradationState:
    return state.degradations.setdefault(name, DegradationState(name))


def finish_step(state: IncidentState, step_id: str, at: datetime, status: str, reason: str,
                 outcome: str | None = None) -> None:
    step = state.steps.get(step_id)
    if step is None:
        return
    step.status, step.finished_at, step.reason = status, at, reason
    finish_run(state, step_id, at, outcome or status)
