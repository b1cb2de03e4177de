"""Whether an incident's record can be trusted: the hash chain, the summary, the snapshot, the key.

- The chain: each event's SHA-256 covers its content and the previous event's hash, so an
  edited, inserted or removed event in the middle breaks it.
- The summary: the incidents table counts the events appended; fewer events in the log than it
  counts means events were deleted from the end (which the chain alone cannot see).
- The snapshot: the playbook text and the documents the incident runs on are hashed into the
  first event, so editing what the steps do breaks the link.
- The key (optional): with a chain key in the config directory, each event's hash is also signed
  (HMAC-SHA256); a chain recomputed from scratch by someone without the key no longer verifies.

Without the key, the chain proves the log was not altered by someone who did not also recompute
every later hash and the summary; it cannot prove that nobody with write access to the database
rewrote it all consistently.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

from runbook.engine.snapshot import documents_hash
from runbook.store import GENESIS, StoredEvent, event_hash, event_mac


class Integrity(NamedTuple):
    ok: bool
    problems: tuple[str, ...]
    summary: str

    def warning(self, incident: str) -> str:
        return f"WARNING: the log of {incident} does not verify: {'; '.join(self.problems)}"


def chain(events: list[StoredEvent]) -> str | None:
    """The first broken link of the hash chain, or None."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, 1):
        if event.seq != expected_seq:
            return f"event {expected_seq} is missing (found event {event.seq} after event {expected_seq - 1})"
        if event.prev_hash != prev:
            return (f"event {event.seq} ({event.type}) does not link to event {event.seq - 1}: "
                    "its previous-hash differs")
        digest = event_hash(event.incident, event.seq, event.ts, event.actor, event.type, event.data,
                            event.prev_hash)
        if digest != event.hash:
            return f"event {event.seq} ({event.type} at {event.ts}) was altered: its content does not match its hash"
        prev = event.hash
    return None


def check(store, incident: str, events: list[StoredEvent] | None = None) -> Integrity:
    """Every check at once; `events` may be passed when the caller has read them already."""
    events = store.events(incident) if events is None else events
    problems: list[str] = []
    broken = chain(events)
    if broken:
        problems.append(broken)
    row = store.incident(incident) or {}
    counted = row.get("last_seq")
    if counted is not None and counted != len(events):
        if counted > len(events):
            problems.append(f"the summary counts {counted} events but the log holds {len(events)}: "
                            f"events after {len(events)} were deleted")
        else:
            problems.append(f"the log holds {len(events)} events but the summary counts {counted}: "
                            "events were added outside runbook")
    notes = []
    problems += _snapshot(store.snapshot(incident), events, notes)
    signed = _signatures(getattr(store, "key", None), events, problems)
    if signed:
        notes.append(signed)
    if problems:
        return Integrity(False, tuple(problems), "; ".join(problems))
    last = events[-1].hash[:12] if events else GENESIS[:12]
    text = f"{len(events)} events, hash chain intact (last {last}), summary agrees, snapshot intact"
    return Integrity(True, (), text + "".join(f"; {n}" for n in notes))


def quick(store, incident: str, stored: dict, events: list[StoredEvent]) -> list[str]:
    """The checks cheap enough for every load: the summary's count and the snapshot."""
    problems = []
    row = store.incident(incident) or {}
    if row.get("last_seq") is not None and row["last_seq"] != len(events):
        problems.append(f"the summary counts {row['last_seq']} events but the log holds {len(events)}")
    return problems + _snapshot(stored, events, [])


def _snapshot(stored: dict | None, events: list[StoredEvent], notes: list[str]) -> list[str]:
    if stored is None:
        return ["the playbook snapshot the incident runs on is missing"]
    if not events or events[0].type != "opened":
        return []  # the chain check has said what is wrong with the first event
    opened = events[0].data
    text_hash = hashlib.sha256(stored["text"].encode("utf-8")).hexdigest()
    problems = []
    if text_hash != stored["hash"] or stored["hash"] != opened.get("snapshot"):
        problems.append("the playbook snapshot was altered: its text does not match the hash recorded at open")
    if opened.get("documents"):
        if documents_hash(stored["documents"]) != opened["documents"]:
            problems.append("the playbook snapshot was altered: the documents the incident runs on do not "
                            "match the hash recorded at open")
    else:
        notes.append("the snapshot's documents are not covered (opened by runbook 0.1)")
    return problems


def _signatures(key: bytes | None, events: list[StoredEvent], problems: list[str]) -> str:
    if key is None:
        signed = sum(1 for e in events if e.mac)
        return f"{signed} events signed, not checked (no chain key here)" if signed else ""
    first = next((i for i, e in enumerate(events) if e.mac), None)
    if first is None:
        return "no event is signed (appended before the chain key existed)"
    for event in events[first:]:
        if not event.mac:
            problems.append(f"event {event.seq} ({event.type}) is not signed although earlier events are: "
                            "written without the key, or its signature removed")
            return ""
        if not hmac.compare_digest(event.mac, event_mac(key, event.hash)):
            problems.append(f"event {event.seq} ({event.type}) has a signature that does not match the chain key: "
                            "the chain was recomputed or the event altered")
            return ""
    return f"{len(events) - first} events signed with the chain key" + \
        (f" (the first {first} before it existed)" if first else "")
