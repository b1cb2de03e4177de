"""Checkpoints: a big incident opens from its folded state, not from its first event.

Every EVERY events the engine stores the incident's folded state (everything but the log
itself) beside the log, bound to the hash chain: the checkpoint names the event it was folded
up to and that event's hash, and its digest covers the incident, that event, that hash and the
body, so it cannot be moved to another place in the chain or another incident, and an edit of
the body shows. With a chain key the digest is signed as events are. A reader then reads the
checkpoint, the opened event, the events after the checkpoint and a short window before it
(the timeline's last rows), checks that the event the checkpoint names is in the log with the
hash it names, and folds only what came after: a 100,000-event incident opens about as fast as
a 100-event one. A checkpoint that does not verify is not used: the state is folded from the
first event and the record is reported as altered. `runbook incident verify` folds from the
first event and compares the checkpoint with it as well.

The body is plain JSON of a closed set of types (the state's dataclasses, times, sets, tuples,
maps with keys that are not text, and the few events the state keeps by reference); anything
else is refused when writing, and a body naming anything else is refused when reading. No code
is ever loaded from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import types
import typing
from dataclasses import fields
from datetime import datetime

from runbook.engine.state import DegradationState, Delivery, Escalation, History, IncidentState, StepRun, StepState
from runbook.store import STATUS_RANK

FORMAT = 8  # the body's format: a checkpoint of another format is ignored (folded from the start); the
# state and the folds it was written by are pinned per format (tests/test_checkpoint_format.py)
EVERY = 500  # events between checkpoints
WINDOW = 256  # events before the checkpoint read with it: at least the timeline's rows (views.TIMELINE_ROWS)
SKIPPED_FIELDS = ("id", "snapshot", "events", "tampered", "derived", "base_seq", "base_summary")
CLASSES = {cls.__name__: cls for cls in (StepState, StepRun, DegradationState, Delivery, Escalation)}
TAG = "~"  # marks a value that is not plain JSON
# the summary's columns that the fold gives: a checkpoint's summary must have them (and `runbook
# incident verify` compares them with the fold's)
COMPARED = ("status", "severity", "drill", "title", "playbook", "service", "opened_at", "acknowledged_at",
            "mitigated_at", "resolved_at", "last_seq")


class CheckpointError(ValueError):
    """A state that cannot be written as a checkpoint, or a body that is not one."""


def every() -> int:
    """Events between checkpoints: EVERY, or RUNBOOK_CHECKPOINT_EVERY (tests set it low)."""
    value = os.environ.get("RUNBOOK_CHECKPOINT_EVERY", "")
    return int(value) if value.isdigit() and int(value) > 0 else EVERY


def digest(incident: str, seq: int, chain_hash: str, body: str) -> str:
    head = json.dumps([incident, seq, chain_hash], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{head}\n{body}".encode()).hexdigest()


# writing ----------------------------------------------------------------------------------------

def _encode(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str and k != TAG for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {TAG: "map", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if type(value) is tuple:
        return {TAG: "tuple", "v": [_encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {TAG: "set", "v": sorted((_encode(v) for v in value), key=repr)}
    from runbook.engine.events import Event

    if isinstance(value, Event):
        return {TAG: "event", "seq": value.seq, "at": value.at.isoformat(), "actor": value.actor,
                "type": value.type, "data": value.data, "hash": value.hash, "ts": value.ts}
    name = type(value).__name__
    if CLASSES.get(name) is type(value):
        return {TAG: name, "v": {f.name: _encode(getattr(value, f.name)) for f in fields(value)}}
    raise CheckpointError(f"a {name} in the state cannot be written to a checkpoint")


def body(state: IncidentState, summary: dict) -> str:
    """The checkpoint's body: the folded state without the log, and the summary row it folds to."""
    values = {f.name: _encode(getattr(state, f.name)) for f in fields(state) if f.name not in SKIPPED_FIELDS}
    return json.dumps({"format": FORMAT, "seq": state.last_seq, "state": values, "summary": summary},
                      separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def sign(key: bytes | None, value: str) -> str:
    from runbook.store import event_mac

    return event_mac(key, value) if key is not None else ""


# reading ----------------------------------------------------------------------------------------

def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    if tag == "time":
        return datetime.fromisoformat(value["v"])
    if tag == "map":
        return {_hashable(_decode(k)): _decode(v) for k, v in value["v"]}
    if tag == "tuple":
        return tuple(_decode(v) for v in value["v"])
    if tag == "set":
        return {_hashable(_decode(v)) for v in value["v"]}
    if tag == "event":
        from runbook.engine.events import Event, decode

        return Event(value["seq"], datetime.fromisoformat(value["at"]), value["actor"],
                     decode(value["type"], value["data"], value["seq"]), value["data"], value["hash"], value["ts"])
    cls = CLASSES.get(tag)
    if cls is None:
        raise CheckpointError(f"a checkpoint names an unknown kind of value {tag!r}")
    names = {f.name for f in fields(cls)}
    given = value["v"]
    if not isinstance(given, dict) or set(given) - names:
        raise CheckpointError(f"a checkpoint's {tag} has fields this runbook does not know")
    decoded = {k: _decode(v) for k, v in given.items()}
    _check_types(cls, decoded)
    return cls(**decoded)


def _hints(cls) -> dict:
    hints = _HINTS.get(cls)
    if hints is None:
        from runbook.engine.events import Event

        hints = _HINTS[cls] = typing.get_type_hints(cls, localns={"Event": Event, "History": History})
    return hints


_HINTS: dict = {}


def _fits(value, hint) -> bool:
    """Whether a decoded value is of the type a field declares (its outer type, and the values
    of a map of the state's classes): a body of the right shape but the wrong types would only
    fail later, in a screen or a command, far from the checkpoint that caused it."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is None:
        if hint is int:
            return type(value) is int
        if hint is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, hint) if isinstance(hint, type) else True
    if not isinstance(value, origin):
        return False
    args = typing.get_args(hint)
    if origin is dict and len(args) == 2 and args[1] in CLASSES.values():
        return all(_fits(v, args[1]) for v in value.values())
    return True


def _check_types(cls, values: dict) -> None:
    hints = _hints(cls)
    for name, value in values.items():
        if not _fits(value, hints[name]):
            raise CheckpointError(f"a checkpoint's {cls.__name__}.{name} is not of the type it must be")


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def load(text: str, incident: str, snapshot, first_event, recent: list, load_all) -> tuple[IncidentState, dict]:
    """The state a checkpoint body holds, with `recent` (the events from the window on, decoded) as
    its log so far, and the summary row it folds to. CheckpointError when the body is not one this
    runbook reads."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError("a checkpoint of another format")
        values = data["state"]
        names = {f.name for f in fields(IncidentState)} - set(SKIPPED_FIELDS)
        if not isinstance(values, dict) or set(values) - names:
            raise CheckpointError("a checkpoint with fields this runbook does not know")
        decoded = {k: _decode(v) for k, v in values.items()}
        _check_types(IncidentState, decoded)
        state = IncidentState(incident, snapshot, **decoded)
        summary = data["summary"]
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"a checkpoint that cannot be read ({type(exc).__name__})") from None
    if not summary_readable(summary) or state.last_seq != data.get("seq"):
        raise CheckpointError("a checkpoint whose summary or position is missing")
    first = recent[0].seq if recent else state.last_seq + 1
    state.events = History(recent, first, head=first_event, load=load_all)
    state.base_seq, state.base_summary = state.last_seq, summary
    return state, summary


def summary_readable(summary) -> bool:
    """Whether a checkpoint's summary row is one the summary can be folded on from."""
    return (isinstance(summary, dict) and all(column in summary for column in COMPARED)
            and type(summary["last_seq"]) is int and summary.get("status") in STATUS_RANK)


def altered(found: dict, incident: str, key: bytes | None, events) -> str | None:
    """What shows a stored checkpoint was altered, or None: its digest, its signature, or its place
    in the chain (`events` are those read with it: the event it names is missing from the log, or
    has another hash there). The one check the engine, the screens and `verify` all make."""
    seq = found["seq"]
    if not hmac.compare_digest(digest(incident, seq, found["chain_hash"], found["body"]), found["digest"]):
        return f"the checkpoint at event {seq} was altered: its content does not match its digest"
    mac = found.get("mac") or ""
    if key is not None and mac and not hmac.compare_digest(mac, sign(key, found["digest"])):
        return f"the checkpoint at event {seq} has a signature that does not match the chain key: altered"
    at = next((e for e in events if e.seq == seq), None)
    if at is None:
        last = events[-1].seq if events else 0
        return f"the checkpoint at event {seq} is past the log's end (event {last}): events were deleted"
    if at.hash != found["chain_hash"]:
        return (f"the checkpoint at event {seq} does not match the log: event {seq}'s hash differs "
                "(the log or the checkpoint was altered)")
    return None


def unsigned(found: dict, key: bytes | None) -> bool:
    """Without a signature where a chain key is: written before the key; not used, nor altered."""
    return key is not None and not found.get("mac")
