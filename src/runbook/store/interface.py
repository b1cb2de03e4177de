"""The storage interface the engine depends on: what an incident store must do, whatever keeps it.

`Store` (SQLite, embedded, the default) and `PostgresStore` (a team's database server) keep the
same guarantees: append-only events after an expected sequence number (a writer that lost the
race gets `ConflictError`), the hash chain and the optional keyed chain and anchor, commits that
are durable when the call returns, the incidents summary kept in the same transaction, versioned
migrations, the alert ledger, simulations, drill schedule claims and a change feed.
`MemoryStore` keeps the subset simulations need, in memory.

What a store can do beyond that is declared in its `features` (as Django's database backends
declare theirs): callers read them, never probe a store with getattr or hasattr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from runbook.store.common import StoredEvent


@dataclass(frozen=True)
class StoreFeatures:
    """What a store declares it can do beyond the interface."""

    # a database kept beyond this process: events are hash-chained (checked on load, verified),
    # checkpoints are kept, other incidents in it are read (the flags they hold), and
    # `location` reopens it on another connection. Not the memory store of simulations.
    persistent: bool
    # `data_version()` counts other connections' commits, so a writer can tell that the state it
    # holds is still the log's end without reading it (SQLite's PRAGMA data_version)
    counts_commits: bool = False
    # `writing(incident)` holds the incident for one writer from its read to its append, so
    # writers queue instead of racing (PostgreSQL's row lock)
    holds_writers: bool = False
    # `listen(on_change)` wakes the caller when another connection appends (PostgreSQL's
    # LISTEN/NOTIFY); without it live views poll `changes_since`
    notifies: bool = False
    # `grant(role)` gives a responders' role least privilege (PostgreSQL); a SQLite file is
    # guarded by its file mode
    grants: bool = False
    # why the store cannot be written, when it cannot (reads work; the first write says why)
    readonly: str | None = None


@runtime_checkable
class IncidentStore(Protocol):
    path: str  # where the store is, as shown to people (":memory:" for MemoryStore; never a password)
    location: str  # what opens it again (`open_store(location)`)
    features: StoreFeatures
    key: bytes | None  # the chain key events are signed with, when one is configured
    key_created: str | None  # when that key was created (events appended since must be signed)
    key_missing: str | None  # why writing must stop: a configured chain key went missing

    def close(self) -> None: ...

    # the log: `append` checks that the log ends at `expected_seq` (and, when the caller passes
    # it, that event's hash `after_hash`, which spares the store reading the end first)
    def create_incident(self, incident: str, snapshot: dict, row: dict,
                        first_events: list[dict]) -> list[StoredEvent]: ...
    def append(self, incident: str, expected_seq: int, events: list[dict],
               after_hash: str | None = None) -> list[StoredEvent]: ...
    def events(self, incident: str, after: int = 0) -> list[StoredEvent]: ...
    def read_record(self, incident: str) -> tuple[dict | None, list[StoredEvent], dict | None]: ...
    def read_recent(self, incident: str, window: int) -> tuple[dict | None, dict | None, list[StoredEvent],
                                                             dict | None]: ...
    def checkpoint(self, incident: str) -> dict | None: ...
    def save_checkpoint(self, incident: str, seq: int, chain_hash: str, body: str, digest: str, mac: str) -> None: ...
    def last_seq(self, incident: str) -> int: ...
    def snapshot(self, incident: str) -> dict | None: ...

    # the summary projection and what checks it
    def incident(self, incident: str) -> dict | None: ...
    def incidents(self, status: str | None = None, open_only: bool = False, drills: bool | None = None,
                  playbook: str | None = None, since: str | None = None, limit: int | None = None,
                  resolved_since: str | None = None) -> list[dict]: ...
    def log_extents(self, incidents: list[str]) -> dict[str, tuple[int, int]]: ...
    def log_facts(self, incidents: list[str]) -> dict[str, tuple[int, int, dict]]: ...
    def hidden_by_summary(self, open_only: bool, drills: bool | None) -> list[dict]: ...
    def without_summary(self) -> list[str]: ...
    def has_record(self, incident: str) -> bool: ...
    def ids_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]: ...
    def ids_without_summary_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]: ...

    # live views: (position, incident, seq) of events appended after a position, oldest first
    def changes_since(self, cursor: int, limit: int = 500) -> list[tuple[int, str, int]]: ...
    def change_cursor(self) -> int: ...
    def listen(self, on_change: Callable[[str | None, int | None], None]): ...  # features.notifies; else None

    # drills
    def record_simulation(self, drill: str, playbook: str, runs: int, seed: int, created_at: str,
                          summary: dict) -> int: ...
    def simulations(self, drill: str | None = None) -> list[dict]: ...
    def schedule_state(self, drill: str) -> dict | None: ...
    def claim_occurrence(self, drill: str, scheduled: str, outcome: str, now: str) -> bool: ...
    def set_schedule_outcome(self, drill: str, outcome: str, incident: str | None, now: str) -> None: ...

    # the alert ledger of `runbook serve`
    def alerts(self, outcome: str | None = None, incident: str | None = None, pending: bool = False,
               limit: int | None = None, fingerprint: str | None = None) -> list[dict]: ...

    # scheduled maintenance windows (`runbook maintenance`)
    def maintenance(self, ending_after: str | None = None, window: int | None = None,
                    cancelled: bool = True) -> list[dict]: ...


class AlertLedger(Protocol):
    """The alert ledger's writes (database stores only; `runbook serve` needs one)."""

    def receive_alert(self, alert: dict, now: str, new_incident: Callable[[], str],
                      owner: dict | None) -> tuple[dict, bool]: ...
    def receive_alerts(self, alerts: list[dict], now: str, new_incident: Callable[[], str],
                       owner: dict | None) -> list[tuple[dict, bool]]: ...
    def reserve_again(self, fingerprint: str, starts_at: str, taken: str, draw: Callable[[], str]) -> str | None: ...
    def take_over_alert(self, fingerprint: str, starts_at: str, previous: dict | None, owner: dict) -> bool: ...
    def claim_alert_by_hand(self, fingerprint: str, starts_at: str, playbook: str, draw: Callable[[], str],
                            owner: dict) -> str | None: ...
    def settle_alert(self, fingerprint: str, starts_at: str, outcome: str, reason: str | None = None,
                     incident: str | None = "keep") -> None: ...
    def add_maintenance(self, window: dict) -> int: ...
    def cancel_maintenance(self, window: int, by: str, at: str) -> bool: ...
