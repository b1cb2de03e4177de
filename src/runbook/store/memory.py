"""The store's interface without a database, for simulations: thousands of throw-away incidents
on a virtual clock, driven through the real engine, where only a summary is kept.

It keeps the summary projection (status, the first acknowledgement...) and honours the same
filters as the database stores, so the engine's listings mean the same on every store."""

from __future__ import annotations

from runbook.store.common import (
    FIRST_COLUMNS,
    LATEST_COLUMNS,
    STATUS_RANK,
    ConflictError,
    FencedError,
    StoredEvent,
    StoreError,
    lease_seconds,
    lease_shift,
    summary_updates,
)
from runbook.store.interface import StoreFeatures


class MemoryStore:
    path = location = ":memory:"
    features = StoreFeatures(persistent=False)
    key = key_created = key_missing = None

    def __init__(self):
        self._events: dict[str, list[StoredEvent]] = {}
        self._snapshots: dict[str, dict] = {}
        self._rows: dict[str, dict] = {}
        self._changes: list[tuple[int, str, int]] = []
        self._schedule: dict[str, dict] = {}
        self._simulations: list[dict] = []
        self._leases: dict[str, str] = {}
        self._incident_leases: dict[str, tuple[str, int]] = {}

    def close(self) -> None:
        pass

    def listen(self, on_change):
        return None

    def forget(self, incident: str) -> None:
        for table in (self._events, self._snapshots, self._rows):
            table.pop(incident, None)

    def create_incident(self, incident, snapshot, row, first_events):
        if incident in self._rows:
            raise ConflictError(f"incident {incident} already exists")
        self._snapshots[incident] = snapshot
        ts = first_events[0]["ts"]
        self._rows[incident] = {"id": incident, "playbook": row["playbook"], "title": row["title"],
                                "service": row["service"], "severity": row["severity"], "status": "open",
                                "drill": int(row["drill"]), "opened_at": ts, "acknowledged_at": None,
                                "mitigated_at": None, "resolved_at": None, "last_seq": 0, "updated_at": ts,
                                "last_mac": None}
        self._events[incident] = []
        return self._append(incident, first_events)

    def append(self, incident, expected_seq, events, after_hash=None, request=None, retried=False, fence=None):
        # no hash chain here (`_append`): the sequence number alone says where the log ends
        log = self._events.get(incident)
        if log is None:
            raise StoreError(f"incident {incident} does not exist")
        if fence is not None and self._incident_leases.get(incident) != tuple(fence):
            raise FencedError(f"incident {incident}: this server's lease on its timers was taken over")
        if len(log) != expected_seq:
            raise ConflictError(f"incident {incident} changed: expected event {expected_seq}, found {len(log)}")
        return self._append(incident, events)

    def _append(self, incident, events):
        # Simulated incidents are never kept or verified, so the hash chain (a JSON encoding and
        # a SHA-256 per event, the largest single cost of a simulated run) is left empty.
        log = self._events[incident]
        updates = summary_updates(events)
        out = []
        for event in events:
            stored = StoredEvent(incident, len(log) + 1, event["ts"], event["actor"], event["type"], event["data"],
                                 "", "")
            log.append(stored)
            out.append(stored)
            self._changes.append((len(self._changes) + 1, incident, stored.seq))
        row = self._rows[incident]
        row.update(last_seq=len(log), updated_at=events[-1]["ts"])
        for column in FIRST_COLUMNS:
            if column in updates and row[column] is None:
                row[column] = updates[column]
        if "status" in updates and STATUS_RANK.get(row["status"], 0) < STATUS_RANK[updates["status"]]:
            row["status"] = updates["status"]
        for column in LATEST_COLUMNS:
            if column in updates:
                row[column] = updates[column]
        return out

    def events(self, incident, after=0):
        return list(self._events.get(incident, ())[after:])

    def last_seq(self, incident):
        return len(self._events[incident]) if incident in self._events else -1

    def snapshot(self, incident):
        return self._snapshots.get(incident)

    def incident(self, incident):
        row = self._rows.get(incident)
        return dict(row) if row is not None else None

    def incidents(self, status=None, open_only=False, drills=None, playbook=None, since=None, limit=None,
                  resolved_since=None):
        rows = [row for row in self._rows.values()
                if (not status or row["status"] == status)
                and (not open_only or row["status"] not in ("resolved", "closed"))
                and (drills is None or row["drill"] == int(drills))
                and (not playbook or row["playbook"] == playbook)
                and (not since or row["opened_at"] >= since)
                and (not resolved_since or (row.get("resolved_at") or "") >= resolved_since)]
        rows.sort(key=lambda row: row["id"])
        rows.sort(key=lambda row: row["opened_at"], reverse=True)  # newest first, ties by id
        return [dict(row) for row in rows[:limit or None]]

    def log_extents(self, incidents):
        return {i: (len(self._events[i]), len(self._events[i])) for i in incidents if self._events.get(i)}

    def read_record(self, incident):
        return self.snapshot(incident), self.events(incident), self.incident(incident)

    def read_recent(self, incident, window):
        return self.snapshot(incident), None, self.events(incident), self.incident(incident)

    def checkpoint(self, incident):
        return None  # simulations fold a few events: no checkpoints

    def save_checkpoint(self, incident, seq, chain_hash, body, digest, mac):
        pass

    def log_facts(self, incidents):
        return {i: (n, last, {}) for i, (n, last) in self.log_extents(incidents).items()}

    def hidden_by_summary(self, open_only, drills):
        return []  # nothing outside this process can edit a summary kept in memory

    def without_summary(self):
        return []

    def has_record(self, incident):
        return incident in self._rows or incident in self._events

    def ids_without_summary_starting_with(self, text, heads=()):
        return []

    def ids_starting_with(self, text, heads=()):
        starts = [(head + text).upper() for head in ("", *heads)]
        return sorted(i for i in self._rows if i.upper().startswith(tuple(starts)))

    def changes_since(self, cursor, limit=500):
        return self._changes[int(cursor):int(cursor) + int(limit)]

    def changed_events(self, cursor, limit=500):
        return [(position, self.events(incident, after=seq - 1)[0])
                for position, incident, seq in self.changes_since(cursor, limit)]

    def health(self):
        pass

    def change_cursor(self):
        return len(self._changes)

    # drills --------------------------------------------------------------------------------

    def record_simulation(self, drill, playbook, runs, seed, created_at, summary):
        self._simulations.append({"id": len(self._simulations) + 1, "drill": drill, "playbook": playbook,
                                  "runs": runs, "seed": seed, "created_at": created_at, "summary": summary})
        return len(self._simulations)

    def simulations(self, drill=None):
        return sorted((dict(s) for s in self._simulations if not drill or s["drill"] == drill),
                      key=lambda s: (s["created_at"], s["id"]))

    def schedule_state(self, drill):
        state = self._schedule.get(drill)
        return dict(state) if state else None

    def claim_occurrence(self, drill, scheduled, outcome, now):
        state = self._schedule.get(drill)
        if state is not None and state["last_scheduled"] is not None and state["last_scheduled"] >= scheduled:
            return False
        self._schedule[drill] = {"drill": drill, "last_scheduled": scheduled, "last_outcome": outcome,
                                 "incident": state["incident"] if state else None, "updated_at": now}
        return True

    def set_schedule_outcome(self, drill, outcome, incident, now):
        state = self._schedule.get(drill)
        if state is not None:
            state.update(last_outcome=outcome, updated_at=now, incident=incident or state["incident"])

    def alerts(self, outcome=None, incident=None, pending=False, limit=None, fingerprint=None, after=None):
        return []  # simulations receive no alerts: the ledger belongs to `runbook serve`

    def renew_lease(self, holder, host, pid, seconds, now, prune_after=None):
        if prune_after:
            before = lease_shift(now, -prune_after)
            self._leases = {h: e for h, e in self._leases.items() if e >= before}
        running = self.lease_live(holder, now)
        self._leases[holder] = lease_shift(now, seconds)
        return bool(running)

    def lease_clock(self, now):
        return now

    def lease_expiry(self, holder):
        return self._leases.get(holder)

    def lease_live(self, holder, now):
        end = self._leases.get(holder)
        return None if end is None else end > now

    def running_leases(self, host, now):
        return []  # simulations run no servers

    def next_lease_end(self, holder, now):
        ends = [e for h, e in self._leases.items() if h != holder and e > now]
        return lease_seconds(min(ends), now) if ends else None

    def take_incident(self, incident, holder, now):
        held = self._incident_leases.get(incident)
        if held is not None and held[0] != holder and self.lease_live(held[0], now):
            return None
        if held is None or held[0] != holder:
            held = self._incident_leases[incident] = (holder, held[1] + 1 if held else 1)
        return held[1]

    def release_incident(self, incident, holder):
        held = self._incident_leases.get(incident)
        if held is not None and held[0] == holder:
            self._incident_leases[incident] = ("", held[1])

    def incident_holder(self, incident, now):
        held = self._incident_leases.get(incident)
        if held is None or not self.lease_live(held[0], now):
            return None
        host, pid, _ = held[0].rsplit(" ", 2)
        return held[0], host, int(pid)

    def may_lease(self):
        return True

    def prune_incident_leases(self, before):
        gone = [i for i in self._incident_leases if (self.incident(i) or {}).get("status") in ("resolved", "closed")
                and (self.incident(i) or {}).get("resolved_at", before) < before]
        for incident in gone:
            del self._incident_leases[incident]
        return len(gone)

    def maintenance(self, ending_after=None, window=None, cancelled=True):
        return []  # simulations have no maintenance windows
