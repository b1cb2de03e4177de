"""Whether an incident's record can be trusted: the hash chain, the summary, the snapshot, the key.

- The chain: each event's SHA-256 covers its content and the previous event's hash, so an
  edited, inserted or removed event in the middle breaks it. Every broken link is named.
- The events: the first is `opened`, and every event is of a type this runbook knows.
- The summary: the incidents row must exist, and every column it keeps for listing (status,
  severity, drill, title, playbook, service, the times, the count of events) must be what the log
  folds to; fewer events than it counts means events were deleted from the end (which the chain
  alone cannot see).
- The snapshot: the playbook text and the documents the incident runs on are hashed into the
  first event, so editing what the steps do breaks the link.
- The key (optional): with a chain key, each event's hash is also signed (HMAC-SHA256), and
  every event appended at or after the key's creation must carry a signature; the summary keeps
  a signed anchor of the log's end (its count and last hash). A chain recomputed by someone
  without the key fails, and so do signatures stripped and the last events deleted.

What is not proven: without the key, a log rewritten consistently (every later hash and the
summary) by someone with write access to the database; with the key, an incident whose every
time was moved before the key's creation, its signatures and anchor stripped and its chain and
summary recomputed, verifies as "appended before the chain key existed" (its times show when that
was, and verify says it is unsigned).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import NamedTuple

from runbook.engine import checkpoint
from runbook.engine.events.base import EventFormatError, decode, fold
from runbook.engine.snapshot import Snapshot, documents_hash
from runbook.store import FIRST_COLUMNS, GENESIS, STATUS_RANK, StoredEvent, anchor_mac, event_hash, event_mac

LISTED = 20  # broken links named one by one before "and N more"
SNAPSHOT_ALTERED = "the playbook snapshot was altered"  # a restore then refuses too: its values come from it


class Integrity(NamedTuple):
    ok: bool
    problems: tuple[str, ...]
    summary: str

    def warning(self, incident: str) -> str:
        return f"WARNING: the log of {incident} does not verify: {'; '.join(self.problems)}"


def chain(events: list[StoredEvent]) -> str | None:
    """The first broken link of the hash chain, or None (`broken_links` names them all)."""
    broken = broken_links(events)
    return broken[0] if broken else None


def broken_links(events: list[StoredEvent], prev: str = GENESIS, expected: int = 1) -> list[str]:
    """Every broken link of the hash chain (the first LISTED, then how many more); `prev` and
    `expected` for a stretch of the log that starts later than the first event."""
    problems = []
    for event in events:
        if event.seq != expected:
            gone = f"event {expected} is" if event.seq == expected + 1 else f"events {expected} to {event.seq - 1} are"
            problems.append(f"{gone} missing (found event {event.seq} after event {expected - 1})")
        elif event.prev_hash != prev:
            problems.append(f"event {event.seq} ({event.type}) does not link to event {event.seq - 1}: "
                            "its previous-hash differs")
        if _altered(event):
            problems.append(f"event {event.seq} ({event.type} at {event.ts}) was altered: "
                            "its content does not match its hash")
        prev, expected = event.hash, event.seq + 1
    if len(problems) > LISTED:
        problems = problems[:LISTED] + [f"and {len(problems) - LISTED} more broken links"]
    return problems


def altered_since(incident: str, events, prev: str | None) -> str | None:
    """What shows that folded events (engine Events, in order, following the event whose hash is
    `prev`; None: from the first) are not what the chain holds: an event whose content does not
    match its hash, or that does not link to the one before it. None when they match."""
    from runbook.engine.clock import iso

    prev = GENESIS if prev is None else prev
    for event in events:
        if event_hash(incident, event.seq, event.ts or iso(event.at), event.actor, event.type, event.data,
                      prev) != event.hash:
            return (f"event {event.seq} ({event.type}) was altered: its content does not match its hash, or it "
                    f"does not link to event {event.seq - 1}")
        prev = event.hash
    return None


def verified_fold(incident: str, events: list[StoredEvent], snapshot) -> tuple:
    """The state of what verifies in a log that cannot be folded whole (an event of a type this
    runbook does not know, or one that does not read): every event whose content matches its hash
    and that reads, folded in order; the others are left out. (state, what was left out, in one
    line each). Its `last_seq` is the log's end, so what is appended next follows the last event.
    A damaged incident can still restore its degradations from this state, and says so."""
    from runbook.engine.events.base import Event, apply
    from runbook.engine.state import new_state

    state, left_out = new_state(incident, snapshot), []
    for stored in events:
        if event_hash(incident, stored.seq, stored.ts, stored.actor, stored.type, stored.data,
                      stored.prev_hash) != stored.hash:
            left_out.append(f"event {stored.seq} ({stored.type}) does not match its hash")
            continue
        try:
            event = Event.from_stored(stored)
            apply(state, event)
        except (EventFormatError, ValueError, KeyError, TypeError, AttributeError) as exc:
            left_out.append(str(exc) if isinstance(exc, EventFormatError) else
                            f"event {stored.seq} ({stored.type}) cannot be folded ({type(exc).__name__})")
    if events:
        state.last_seq = events[-1].seq
    return state, left_out


def first_event(events) -> str | None:
    """What is wrong with the start of the log: an incident always has its `opened` event first."""
    if not events:
        return "the log holds no events (an incident always has at least its opened event): they were deleted"
    if events[0].type != "opened" or events[0].seq != 1:
        return (f"the log does not start with the opened event (its first is event {events[0].seq}, "
                f"{events[0].type}): the opened event was deleted or altered")
    return None


def folded_summary(pairs, start: dict | None = None) -> dict:
    """The summary row the store keeps, as the log folds to it: `pairs` are (ts, record) in order,
    the first the `opened` record, or the ones after a checkpoint whose row is `start`; the same
    rules as the store's projection (the first time wins for the *_at columns, status only moves
    forward, severity takes the latest)."""
    pairs = list(pairs)
    if start is None:
        ts, opened = pairs[0]
        row = {"status": "open", "severity": opened.severity, "drill": int(bool(opened.drill)),
               "title": opened.title, "playbook": opened.playbook, "service": opened.service, "opened_at": ts,
               "acknowledged_at": None, "mitigated_at": None, "resolved_at": None, "last_seq": 0}
    else:
        row = dict(start)
    for ts, rec in pairs:
        for column, value in rec.project(ts).items():
            if column in FIRST_COLUMNS:
                row[column] = row[column] or value
            elif column == "status":
                row[column] = max(row[column], value, key=STATUS_RANK.__getitem__)
            else:
                row[column] = value
    row["last_seq"] += len(pairs)
    return row


def summary_problems(row: dict | None, pairs, count: int, start: dict | None = None) -> list[str]:
    """How the summary row differs from the log of `count` events, each column by name (`pairs`
    and `start` as for folded_summary; None: the log cannot be folded)."""
    if row is None:
        return ["missing from the summary: the incidents table has no row for it (record altered; it is left "
                "out of every listing)"]
    problems = []
    counted = row.get("last_seq")
    if counted is None:
        problems.append(f"the summary has no event count (the log holds {count})")
    elif counted > count:
        problems.append(f"the summary counts {counted} events but the log holds {count}: "
                        f"events after {count} were deleted")
    elif counted < count:
        problems.append(f"the log holds {count} events but the summary counts {counted}: "
                        "events were added outside runbook")
    if pairs is None:
        return problems
    folded = folded_summary(pairs, start)
    for column in checkpoint.COMPARED[:-1]:
        said = row.get(column)
        if column == "service" and not said and not folded[column]:
            continue
        if said != folded[column]:
            problems.append(f"the summary says {column} {said!r} but the log says {folded[column]!r}")
    return problems


def check(store, incident: str, events: list[StoredEvent] | None = None) -> Integrity:
    """Every check at once; `events` may be passed when the caller has read them already."""
    stored, read, row = store.read_record(incident)
    events = read if events is None else events
    problems: list[str] = []
    problems += broken_links(events)
    start = first_event(events)
    if start:
        problems.append(start)
    records = []
    for event in events:
        try:
            records.append((event.ts, decode(event.type, event.data, event.seq)))
        except EventFormatError as exc:
            problems.append(str(exc))
    readable = not start and len(records) == len(events)
    problems += summary_problems(row, records if readable else None, len(events))
    notes: list[str] = []
    problems += _snapshot(stored, events, notes)
    signed = _signatures(store, incident, row, events, problems)
    if signed:
        notes.append(signed)
    found = store.checkpoint(incident)
    if found is not None:
        problems += _checkpoint(store, incident, found, stored, events, records if readable else None)
    if problems:
        return Integrity(False, tuple(problems), "; ".join(problems))
    last = events[-1].hash[:12]
    text = f"{len(events)} events, hash chain intact (last {last}), summary agrees, snapshot intact"
    return Integrity(True, (), text + "".join(f"; {n}" for n in notes))


def recent(store, incident: str) -> Integrity:
    """The checks of `check` from the incident's checkpoint on, for every screen that shows an
    incident: the checkpoint's digest (and signature) and its place in the chain, the chain after
    it, the summary folded on from it, the snapshot, the signatures read. Without a checkpoint, or
    with one that does not verify, it is `check`. `check` (`runbook incident verify`) walks the
    whole log, and compares the checkpoint with the fold of the events before it."""
    stored, found, events, row = store.read_recent(incident, 0)
    key = store.key
    if (found is None or checkpoint.altered(found, incident, key, events) or checkpoint.unsigned(found, key)
            or first_event(events)):
        return check(store, incident)  # which names what is wrong
    seq = found["seq"]
    tail = [e for e in events if e.seq >= seq]
    problems = broken_links(tail, tail[0].prev_hash, seq)
    try:
        start = json.loads(found["body"])["summary"]
        if not checkpoint.summary_readable(start):
            return check(store, incident)
        pairs = [(e.ts, decode(e.type, e.data, e.seq)) for e in tail[1:]]
    except (ValueError, KeyError, TypeError, RecursionError, EventFormatError):
        return check(store, incident)
    problems += summary_problems(row, pairs, events[-1].seq, start)
    notes: list[str] = []
    problems += _snapshot(stored, events, notes)
    signed = _signatures(store, incident, row, events, problems)
    if signed:
        notes.append(signed)
    if problems:
        return Integrity(False, tuple(problems), "; ".join(problems))
    text = (f"{events[-1].seq} events, hash chain intact from the checkpoint at event {seq} (last "
            f"{events[-1].hash[:12]}), summary agrees, snapshot intact; `runbook incident verify` checks from "
            "the first event")
    return Integrity(True, (), text + "".join(f"; {n}" for n in notes))


def _checkpoint(store, incident: str, found: dict, stored: dict | None, events: list[StoredEvent],
                records: list | None) -> list[str]:
    """What is wrong with the incident's checkpoint: altered (digest, signature), not at its place
    in the chain, or not what the events before it fold to."""
    altered = checkpoint.altered(found, incident, store.key, events)
    if altered:
        return [altered]
    seq = found["seq"]
    at = next(e for e in events if e.seq == seq)
    if stored is None or records is None:
        return []  # the log cannot be folded; its problems are named already
    try:
        kept = json.loads(found["body"])
        if kept.get("format") != checkpoint.FORMAT:
            return []  # written by another runbook: not used, so nothing is shown from it
        before = events[:events.index(at) + 1]
        state = fold(incident, before, Snapshot.load(stored))
        again = json.loads(checkpoint.body(state, folded_summary(records[:len(before)])))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, EventFormatError,
            checkpoint.CheckpointError) as exc:
        return [f"the checkpoint at event {seq} cannot be checked: {exc}"]
    if kept.get("state") != again["state"] or kept.get("summary") != again["summary"] or kept.get("seq") != seq:
        return [f"the checkpoint at event {seq} is not what the events before it fold to: it was altered "
                "(what screens show of the incident came from it)"]
    return []


def quick(store, incident: str, row: dict | None, stored: dict, events: list[StoredEvent], state=None,
          columns: bool = True) -> list[str]:
    """The checks cheap enough for every load: the summary against the fold, the snapshot, and
    with a chain key the signatures and the anchor (an HMAC per event), so that a record rewritten
    without the key (a step's command among it) runs nothing. The chain's hashes are left to
    `check`: an edit they alone show changes no snapshot that steps run from.

    A state read from a checkpoint folds the summary on from the checkpoint's row, and `events`
    are those read with it (the opened event, then the window and what came after). `columns`
    False: leave out the summary's columns that differ from the fold (what the engine acts on is the
    fold: a summary a responder edited is for `show` and `list` to warn of, and must not stop a
    timer or a flip); its count of events still shows events deleted from the end."""
    base = state.base_seq if state is not None and state.base_summary is not None else 0
    count = events[-1].seq if base and events else len(events)
    if state is None:
        pairs, start = None, None
    elif not base:
        pairs, start = [(e.ts, loaded.record) for e, loaded in zip(events, state.events)], None
    else:  # folded from the checkpoint's summary row on: the events after it
        after = {e.seq: e for e in state.events[base:]}
        pairs = [(e.ts, after[e.seq].record) for e in events if e.seq > base and e.seq in after]
        start = state.base_summary
    problems = summary_problems(row, pairs if columns else None, count, start) + _snapshot(stored, events, [])
    if store.key is not None:
        _signatures(store, incident, row, events, problems)
    return problems


def _snapshot(stored: dict | None, events: list[StoredEvent], notes: list[str]) -> list[str]:
    if stored is None:
        return ["the playbook snapshot the incident runs on is missing (deleted from the snapshots table)"]
    if not events or events[0].type != "opened":
        return []  # first_event has said what is wrong with the first event
    opened = events[0].data
    text_hash = hashlib.sha256(stored["text"].encode("utf-8")).hexdigest()
    problems = []
    if text_hash != stored["hash"] or stored["hash"] != opened.get("snapshot"):
        problems.append(f"{SNAPSHOT_ALTERED}: its text does not match the hash recorded at open")
    if opened.get("documents"):
        if documents_hash(stored["documents"]) != opened["documents"]:
            problems.append(f"{SNAPSHOT_ALTERED}: the documents the incident runs on do not "
                            "match the hash recorded at open")
    else:
        notes.append("the snapshot's documents are not covered (opened by runbook 0.1)")
    return problems


def one_event_verifies(store, event: StoredEvent) -> bool:
    """Whether `event` is as it was appended, on its own: its content matches its hash, and its
    signature the chain key (one appended since the key was created must be signed). Its link to
    the event before it is the chain's check (`broken_links`), made when the incident is read."""
    if _altered(event):
        return False
    return store.key is None or not (_forged(store.key, event) or _unsigned(store.key_created or "", event))


def _altered(event: StoredEvent) -> bool:
    """Its content does not match its hash."""
    return event_hash(event.incident, event.seq, event.ts, event.actor, event.type, event.data,
                      event.prev_hash) != event.hash


def _forged(key: bytes, event: StoredEvent) -> bool:
    """Signed, but not under `key`."""
    return bool(event.mac) and not hmac.compare_digest(event.mac, event_mac(key, event.hash))


def _unsigned(created: str, event: StoredEvent) -> bool:
    """Not signed, though appended after the chain key was `created`."""
    return not event.mac and event.ts >= created


def _named(events: list[StoredEvent]) -> str:
    shown = ", ".join(f"{e.seq} ({e.type})" for e in events[:5])
    return shown + (f" and {len(events) - 5} more" if len(events) > 5 else "")


def _signatures(store, incident: str, row: dict | None, events: list[StoredEvent], problems: list[str]) -> str:
    key = store.key
    if key is None:
        missing = store.key_missing
        signed = sum(1 for e in events if e.mac)
        if missing:
            return f"signatures not checked: {missing}"
        return f"{signed} events signed, not checked (no chain key here)" if signed else ""
    created = store.key_created or ""
    forged = [e for e in events if _forged(key, e)]
    if forged:
        more = f" (and {len(forged) - 1} later event{'s' if len(forged) > 2 else ''}: {_named(forged[1:])})" \
            if len(forged) > 1 else ""
        problems.append(f"event {forged[0].seq} ({forged[0].type}) has a signature that does not match the chain "
                        f"key{more}: the chain was recomputed or the event altered")
    unsigned = [e for e in events if _unsigned(created, e)]
    if unsigned:
        problems.append(f"event{'s' if len(unsigned) > 1 else ''} {_named(unsigned)} "
                        f"{'are' if len(unsigned) > 1 else 'is'} not signed although appended after the chain key "
                        f"was created ({created}): written without the key, or the signatures removed")
    if row is not None and events:
        anchor = row.get("last_mac")
        if anchor:
            last = events[-1]
            if not hmac.compare_digest(anchor, anchor_mac(key, incident, last.seq, last.hash)):
                problems.append(f"the summary's signed anchor does not match the log's last event ({last.seq}): "
                                "events were deleted from the end, or the log rewritten")
        elif any(e.mac for e in events) or any(e.ts >= created for e in events):
            problems.append("the summary's signed anchor of the log's end is missing although the chain key "
                            "existed: removed (with signatures stripped or the last events deleted), or last "
                            "written without the key")
    signed = sum(1 for e in events if e.mac)
    if problems:
        return ""
    if not signed:
        return f"no event is signed (all appended before the chain key was created, {created})"
    before = len(events) - signed
    return f"{signed} events signed with the chain key" + \
        (f" (the first {before} before it existed, {created})" if before else "") + ", log end anchored" * bool(
            row and row.get("last_mac"))
