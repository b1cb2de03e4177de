"""The embedded incident store (SQLite, the default): incidents as append-only event logs.

sqlite-utils creates and migrates the schema; reads and appends go straight through the
sqlite3 connection, so a command on an up-to-date database never imports sqlite-utils (its
import and plugin scan would be a third of the start-up of a short command).

Durability: every connection uses WAL with synchronous=FULL, so an event whose append
returned survives kill -9 and power loss; a busy timeout lets several processes share the
file. Appends take the write lock up front (BEGIN IMMEDIATE) and check the expected sequence
number, so two writers never interleave or duplicate events: the loser gets a
`ConflictError`, re-reads and retries. Events carry a SHA-256 hash chained to the previous
event of the same incident. The `incidents` table is a small projection kept in the same
transaction for fast listing; the `snapshots` table keeps the documents an incident was
opened with.

A database the user cannot write (the file, or the directory SQLite keeps its WAL files in)
is opened read-only: reads work, the first write says why it cannot, and nothing is migrated.
Every SQLite failure leaves this module as a `StoreError` naming the database and what to do.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.store.common import (ALERT_COLUMNS, ALERT_JSON, FIRST_COLUMNS, GENESIS, LATEST_COLUMNS, STATUS_RANK,
                                  STILL_OPEN, ChainKeyError, ConflictError, StoredEvent, StoreError, alert_row,
                                  anchor_mac, chain_events, data_json, default_path, is_postgres_url, like_prefix,
                                  CHECKPOINT_COLUMNS, EVENT_COLUMNS, STATUS_TYPES, checkpoint_from,
                                  checkpoint_upsert, log_facts_from, missing_chain_key, read_chain_key,
                                  recent_events_sql, stored_events, summary_updates)

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_MS = 30_000
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_LOCK = threading.Lock()


def _writers(path: str) -> threading.RLock:
    """The lock this process's writers to the database at `path` take in turn (see Store._Tx)."""
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(os.path.realpath(path), threading.RLock())
def _guarded(method):
    """Turn SQLite's failures inside a Store method into one StoreError that names the database."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
    return guarded


def _code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of a failure (SQLITE_READONLY...), 0 when it has none."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def _why_readonly(path: str) -> str | None:
    """Why this process may not write the database at `path` (or create it), or None."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return "the file is not writable by you"
    if not os.access(directory, os.W_OK):
        return f"its directory {directory} is not writable by you"
    return None


def _migration_1(db: sqlite_utils.Database) -> None:
    db["events"].create({"incident": str, "seq": int, "ts": str, "actor": str, "type": str, "data": str,
                         "prev_hash": str, "hash": str}, pk=("incident", "seq"), not_null={"ts", "type", "hash"})
    db["incidents"].create({"id": str, "playbook": str, "title": str, "service": str, "severity": str,
                            "status": str, "drill": int, "opened_at": str, "acknowledged_at": str,
                            "mitigated_at": str, "resolved_at": str, "last_seq": int, "updated_at": str},
                           pk="id")
    db["incidents"].create_index(["status", "opened_at"])
    db["incidents"].create_index(["playbook", "opened_at"])
    db["snapshots"].create({"incident": str, "playbook": str, "hash": str, "text": str, "documents": str},
                           pk="incident")


def _migration_2(db: sqlite_utils.Database) -> None:
    # "newest first" listings sort on opened_at; without this index they scan and sort every row
    db["incidents"].create_index(["opened_at"], index_name="idx_incidents_opened_at")


def _migration_3(db: sqlite_utils.Database) -> None:
    db["simulations"].create({"id": int, "drill": str, "playbook": str, "runs": int, "seed": int,
                              "created_at": str, "summary": str}, pk="id")
    db["simulations"].create_index(["drill", "created_at"])


def _migration_4(db: sqlite_utils.Database) -> None:
    db["drill_schedule"].create({"drill": str, "last_scheduled": str, "last_outcome": str, "incident": str,
                                 "updated_at": str}, pk="drill")


def _migration_5(db: sqlite_utils.Database) -> None:
    db["events"].add_column("mac", str)


def _migration_6(db: sqlite_utils.Database) -> None:
    db["incidents"].add_column("last_mac", str)
    # listing checks each summary against its log cheaply: "has a resolved event", "the opened event"
    db["events"].create_index(["type", "incident"], index_name="idx_events_type_incident")


def _migration_7(db: sqlite_utils.Database) -> None:
    # the alert ledger of `runbook serve`: one row per alert occurrence (fingerprint, start time)
    db["alerts"].create({"fingerprint": str, "starts_at": str, "status": str, "ends_at": str, "alertname": str,
                         "labels": str, "annotations": str, "generator_url": str, "receiver": str,
                         "first_seen": str, "last_seen": str, "deliveries": int, "playbook": str,
                         "symptom": str, "incident": str, "outcome": str, "reason": str, "owner": str},
                        pk=("fingerprint", "starts_at"), not_null={"status", "first_seen", "outcome"})
    db["alerts"].create_index(["last_seen"], index_name="idx_alerts_last_seen")
    db["alerts"].create_index(["incident"], index_name="idx_alerts_incident")


def _migration_8(db: sqlite_utils.Database) -> None:
    # the folded state of each incident at its latest checkpoint (engine/checkpoint.py)
    db["checkpoints"].create({"incident": str, "seq": int, "chain_hash": str, "body": str, "digest": str,
                              "mac": str}, pk="incident", not_null={"seq", "chain_hash", "body", "digest"})


MIGRATIONS = ((1, "events, incidents projection, snapshots", _migration_1),
              (2, "index incidents by opening time", _migration_2),
              (3, "summaries of simulated drill runs", _migration_3),
              (4, "drill schedule: the last occurrence each drill fired or skipped", _migration_4),
              (5, "events: a keyed signature of each event's hash", _migration_5),
              (6, "incidents: a signed anchor of the log's end; events indexed by type", _migration_6),
              (7, "alerts received by runbook serve", _migration_7),
              (8, "checkpoints: big incidents open from their folded state", _migration_8))

class _AlertLedger:
    """The alerts `runbook serve` received (SQLite): one row per occurrence of an alert, keyed on
    its fingerprint (a hash of its labels) and its start time, so a repeat or a retry of the same
    delivery finds its row and a new occurrence of the same alert gets a new one."""

    @_guarded
    def receive_alert(self, alert: dict, now: str, new_incident, owner: dict | None) -> tuple[dict, bool]:
        """Record one delivery of `alert`: `receive_alerts` of that one alert."""
        return self.receive_alerts([alert], now, new_incident, owner)[0]

    @_guarded
    def receive_alerts(self, alerts: list[dict], now: str, new_incident, owner: dict | None) -> list[tuple[dict, bool]]:
        """Record one delivery of `alerts` (each a dict of ALERT_COLUMNS: fingerprint, starts_at, status,
        labels... and the playbook/symptom it matched, if any) all in one transaction (an alert storm's
        delivery is one commit, not one per alert); for each alert, in order:

        Seen before: its row is updated (last_seen, deliveries, a move from firing to resolved)
        and returned as it was before, with False. New: when an earlier occurrence of the same
        fingerprint is linked to an incident still open, the new one is linked to it
        (outcome 'attached'); else a firing alert with a playbook reserves an incident id drawn
        from `new_incident()` that no incident and no other alert holds (outcome 'pending',
        `owner` recorded until the incident exists); else it is kept as 'unmatched' (or
        'resolved' when runbook first hears of it resolved). Returns (row, True)."""
        with self._write():
            return [self._receive_one(alert, now, new_incident, owner) for alert in alerts]

    def _receive_one(self, alert: dict, now: str, new_incident, owner: dict | None) -> tuple[dict, bool]:
        key = [alert["fingerprint"], alert["starts_at"]]
        found = self.conn.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE fingerprint = ? "
                                  "AND starts_at = ?", key).fetchone()
        if found is not None:
            before = alert_row(found)
            resolving = alert["status"] == "resolved" and before["status"] != "resolved"
            self.conn.execute("UPDATE alerts SET last_seen = ?, deliveries = deliveries + 1, "
                              "status = CASE WHEN ? THEN 'resolved' ELSE status END, "
                              "ends_at = CASE WHEN ? THEN ? ELSE ends_at END "
                              "WHERE fingerprint = ? AND starts_at = ?",
                              [now, resolving, resolving, alert.get("ends_at"), *key])
            return before, False
        linked = self.conn.execute(
            "SELECT a.incident FROM alerts a JOIN incidents i ON i.id = a.incident WHERE a.fingerprint = ? "
            f"AND i.status IN ({', '.join('?' * len(STILL_OPEN))}) ORDER BY a.starts_at DESC LIMIT 1",
            [alert["fingerprint"], *STILL_OPEN]).fetchone()
        row = {name: alert.get(name) for name in ALERT_COLUMNS}
        row.update(first_seen=now, last_seen=now, deliveries=1, owner=None)
        if linked:
            row.update(incident=linked[0], outcome="attached")
        elif alert["status"] == "resolved":
            row.update(incident=None, outcome="resolved",
                       reason=row.get("reason") or "resolved before runbook saw it fire")
        elif alert.get("playbook") and new_incident:
            row.update(incident=self._unused_id(new_incident), outcome="pending", owner=owner)
        else:
            row.update(incident=None, outcome="unmatched")
        values = [json.dumps(row[n], ensure_ascii=False) if n in ALERT_JSON and row[n] is not None else row[n]
                  for n in ALERT_COLUMNS]
        self.conn.execute(f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(ALERT_COLUMNS))})", values)
        return row, True

    def _unused_id(self, draw) -> str:
        for _ in range(100):
            candidate = draw()
            if not self.conn.execute("SELECT 1 FROM incidents WHERE id = ? UNION ALL SELECT 1 FROM alerts "
                                     "WHERE incident = ? LIMIT 1", [candidate, candidate]).fetchone():
                return candidate
        raise ConflictError("could not draw an unused incident id in 100 tries")

    @_guarded
    def reserve_again(self, fingerprint: str, starts_at: str, taken: str, draw) -> str | None:
        """A pending alert's reserved id turned out to be taken by an incident opened elsewhere:
        reserve another (None when the row no longer holds `taken`)."""
        with self._write():
            fresh = self._unused_id(draw)
            cursor = self.conn.execute("UPDATE alerts SET incident = ? WHERE fingerprint = ? AND starts_at = ? "
                                       "AND incident = ? AND outcome = 'pending'",
                                       [fresh, fingerprint, starts_at, taken])
            return fresh if cursor.rowcount == 1 else None

    @_guarded
    def take_over_alert(self, fingerprint: str, starts_at: str, previous: dict | None, owner: dict) -> bool:
        """Make `owner` the one to open a pending alert's incident, if `previous` still holds it
        (its owner is gone); False when someone else took it or it is no longer pending."""
        with self._write():
            cursor = self.conn.execute(
                "UPDATE alerts SET owner = ? WHERE fingerprint = ? AND starts_at = ? AND outcome = 'pending' "
                "AND owner IS ?", [json.dumps(owner), fingerprint, starts_at,
                                    json.dumps(previous) if previous is not None else None])
            return cursor.rowcount == 1

    @_guarded
    def settle_alert(self, fingerprint: str, starts_at: str, outcome: str, reason: str | None = None,
                     incident: str | None = "keep") -> None:
        """Set a row's outcome (and reason); the owner is cleared."""
        sets, params = ["outcome = ?", "reason = ?", "owner = NULL"], [outcome, reason]
        if incident != "keep":
            sets.append("incident = ?")
            params.append(incident)
        with self._write():
            self.conn.execute(f"UPDATE alerts SET {', '.join(sets)} WHERE fingerprint = ? AND starts_at = ?",
                              [*params, fingerprint, starts_at])

    @_guarded
    def changes_since(self, cursor: int, limit: int = 500) -> list[tuple[int, str, int]]:
        """(position, incident, seq) of each event appended after `position` (the events table's
        rowid, which only grows: the log is append-only), oldest first; for live views."""
        return [tuple(row) for row in self.conn.execute(
            "SELECT rowid, incident, seq FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
            [int(cursor), int(limit)]).fetchall()]

    @_guarded
    def change_cursor(self) -> int:
        """The position of the last event appended (0 when there is none)."""
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]

    @_guarded
    def claim_alert_by_hand(self, fingerprint: str, starts_at: str, playbook: str, draw, owner: dict) -> str | None:
        """A responder opens an incident for an alert no playbook took: reserve an incident id for
        it, as the intake does (outcome 'pending'), only while it is still unmatched or failed.
        The id, or None when it already has an incident (someone was quicker)."""
        with self._write():
            fresh = self._unused_id(draw)
            cursor = self.conn.execute(
                "UPDATE alerts SET outcome = 'pending', incident = ?, playbook = ?, owner = ?, reason = NULL "
                "WHERE fingerprint = ? AND starts_at = ? AND outcome IN ('unmatched', 'failed', 'resolved')",
                [fresh, playbook, json.dumps(owner), fingerprint, starts_at])
            return fresh if cursor.rowcount == 1 else None

    @_guarded
    def alerts(self, outcome: str | None = None, incident: str | None = None, pending: bool = False,
               limit: int | None = None, fingerprint: str | None = None) -> list[dict]:
        """Received alerts, the latest seen first; filtered by outcome, by incident, by fingerprint,
        or only those still 'pending' (an incident reserved, not yet opened)."""
        where, params = [], []
        if fingerprint:
            where.append("fingerprint = ?")
            params.append(fingerprint)
        if outcome:
            where.append("outcome = ?")
            params.append(outcome)
        if pending:
            where.append("outcome = 'pending'")
        if incident:
            where.append("incident = ?")
            params.append(incident)
        sql = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY last_seen DESC, fingerprint"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [alert_row(r) for r in self.conn.execute(sql, params).fetchall()]


class Store(_AlertLedger):
    def __init__(self, path: str | None = None, key: bytes | None | str = "auto", key_created: str | None = None):
        self.path = path or default_path()
        if is_postgres_url(self.path):
            raise StoreError("a PostgreSQL URL names a team database, not a SQLite file: open it with "
                             "runbook.store.open_store")
        if key == "auto":
            found = read_chain_key()
            self.key, self.key_created = (found.key, found.created) if found else (None, None)
            self.key_missing = missing_chain_key()
        else:
            self.key, self.key_created, self.key_missing = key, key_created, None
        self.location = self.path  # what reopens it (another thread's connection)
        self._db = None
        self.readonly = None  # why the database cannot be written, when it cannot
        if self.path != ":memory:":
            self._make_directory()
            self.readonly = _why_readonly(self.path)
        self.conn = self._connect_readonly() if self.readonly else self._connect()
        try:
            self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _make_directory(self) -> None:
        directory = Path(self.path).parent
        if Path(self.path).is_dir():
            raise StoreError(f"the incident database {self.path} is a directory; pass --db FILE or set RUNBOOK_DB")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
            reason = f"{blocker} is a file" if blocker else f"{exc.strerror or exc}: {exc.filename}"
            raise StoreError(f"cannot create the directory of the incident database {self.path}: {reason}; "
                             "pass --db FILE or set RUNBOOK_DB") from None

    @_guarded
    def _connect(self) -> sqlite3.Connection:
        old_umask = os.umask(0o077)  # the database, its WAL and shared memory are owner-only
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        finally:
            os.umask(old_umask)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            conn.close()
            if _code(exc) == sqlite3.SQLITE_READONLY and os.path.exists(self.path):
                self.readonly = "SQLite cannot write it (a read-only file system?)"
                return self._connect_readonly()
            raise
        if self.path != ":memory:" and mode.lower() != "wal":
            conn.close()
            raise StoreError(f"the incident database {self.path} could not switch to WAL mode (got {mode})")
        return conn

    @_guarded
    def _connect_readonly(self) -> sqlite3.Connection:
        """Read without writing anything: no WAL switch, no migrations. Without write access to
        the directory SQLite cannot create the WAL index it reads through; when no WAL file is
        left over (every event is in the database file itself) the file is read as immutable."""
        if not os.path.exists(self.path):
            raise StoreError(f"cannot create the incident database {self.path}: {self.readonly}; "
                             "pass --db FILE or set RUNBOOK_DB")
        uri = Path(self.path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            if _code(exc) not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
                raise
            if os.path.exists(self.path + "-wal"):
                raise StoreError(f"the incident database {self.path} cannot be read: {self.readonly}, and "
                                 f"events are still in its write-ahead log {self.path}-wal; open it once with "
                                 "write access to the directory") from None
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        """One line for a failure of SQLite: what is wrong with which database, and what to do."""
        code = _code(exc)
        where = f"the incident database {self.path}"
        if code == sqlite3.SQLITE_READONLY:
            return StoreError(f"{where} is read-only: {self.readonly or exc}; "
                              "get write access to it and its directory, or pass --db FILE")
        if code == sqlite3.SQLITE_NOTADB:
            return StoreError(f"{self.path} is not an incident database ({exc}); pass --db FILE or set RUNBOOK_DB")
        if code == sqlite3.SQLITE_CORRUPT or "malformed" in str(exc):
            return StoreError(f"{where} is damaged ({exc}); move it aside and restore a backup "
                              f"(`sqlite3 {self.path} .recover` may save what is readable)")
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreError(f"{where} stayed locked by another process for {BUSY_TIMEOUT_MS // 1000}s ({exc}); "
                              "try again")
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
            return StoreError(f"cannot open {where}: {exc} (check that it and its directory are yours)")
        if code == sqlite3.SQLITE_FULL:
            return StoreError(f"{where} cannot grow: the disk is full")
        return StoreError(f"{where} cannot be used: {exc}")

    @property
    def db(self) -> "sqlite_utils.Database":
        """The connection wrapped by sqlite-utils (imported on first use), for schema changes."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def close(self) -> None:
        self.conn.close()

    def listen(self, on_change):
        """No notifications from SQLite: live views poll `changes_since` (None says so)."""
        return None

    def _query(self, sql: str, params=()) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @_guarded
    def pragmas(self) -> dict:
        return {name: self.conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "busy_timeout")}

    @_guarded
    def schema_version(self) -> tuple[int, list[tuple[int, str]]]:
        """(the highest migration applied, the migrations not applied yet)."""
        done = {row[0] for row in self.conn.execute("SELECT id FROM migrations")}
        return max(done, default=0), [(n, name) for n, name, _ in MIGRATIONS if n not in done]

    def settings(self) -> dict:
        """What durability rests on."""
        return self.pragmas()

    @_guarded
    def _migrate(self) -> None:
        try:
            done = {row[0] for row in self.conn.execute("SELECT id FROM migrations")}
        except sqlite3.OperationalError as exc:  # a new database (or one that cannot be read)
            if "no such table" not in str(exc):
                raise
            done = set()
        pending = [number for number, _, _ in MIGRATIONS if number not in done]
        if not pending:
            return
        if self.readonly:
            what = "is not an incident database yet" if not done else "needs upgrading to this version of runbook"
            raise StoreError(f"the incident database {self.path} {what}, but it is read-only: {self.readonly}; "
                             "run a runbook command on it once with write access")
        with self._write():
            if "migrations" not in self.db.table_names():
                self.db["migrations"].create({"id": int, "name": str}, pk="id")
            done = {row["id"] for row in self.db["migrations"].rows}
            for number, name, apply in MIGRATIONS:
                if number not in done:
                    apply(self.db)
                    self.db.execute("INSERT INTO migrations (id, name) VALUES (?, ?)", [number, name])
            if 6 not in done and self.key:
                self._anchor_existing()

    def _anchor_existing(self) -> None:
        """On the upgrade that adds the signed anchor, with the chain key at hand: anchor each
        incident's log as it is now (once; later a missing anchor is a problem, never re-signed)."""
        for incident, seq, digest in self.conn.execute(
                "SELECT e.incident, e.seq, e.hash FROM events e JOIN incidents i ON i.id = e.incident "
                "WHERE e.seq = (SELECT max(seq) FROM events WHERE incident = e.incident)").fetchall():
            self.conn.execute("UPDATE incidents SET last_mac = ? WHERE id = ?",
                              [anchor_mac(self.key, incident, seq, digest), incident])

    class _Tx:
        """A write transaction. Writers in this process (the engine service's lanes) queue on a
        lock of the database's own before BEGIN IMMEDIATE: SQLite's busy handler would make a
        waiter sleep in growing steps (up to 100 ms) and miss the moments the lock is free, so
        an alert's one commit could wait out a burst of another lane's commits."""

        def __init__(self, conn, writers):
            self.conn, self.writers = conn, writers

        def __enter__(self):
            self.writers.acquire()
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.writers.release()
                raise

        def __exit__(self, exc_type, exc, tb):
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.writers.release()

    def _write(self):
        if self.readonly:
            raise StoreError(f"the incident database {self.path} is read-only: {self.readonly}; only reading "
                             "commands (list, show, export, verify, metrics, report) work on it")
        return Store._Tx(self.conn, _writers(self.path))

    # writing ------------------------------------------------------------------------------

    @_guarded
    def create_incident(self, incident: str, snapshot: dict, row: dict, first_events: list[dict]) -> list[StoredEvent]:
        """Create an incident with its snapshot and first events, atomically."""
        self._require_key()
        with self._write():
            if self.conn.execute("SELECT 1 FROM incidents WHERE id = ?", [incident]).fetchone():
                raise ConflictError(f"incident {incident} already exists")
            self.conn.execute("INSERT INTO snapshots (incident, playbook, hash, text, documents) VALUES (?, ?, ?, ?, ?)",
                            [incident, snapshot["playbook"], snapshot["hash"], snapshot["text"],
                             json.dumps(snapshot["documents"], ensure_ascii=False)])
            self.conn.execute(
                "INSERT INTO incidents (id, playbook, title, service, severity, status, drill, opened_at, last_seq, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, 0, ?)",
                [incident, row["playbook"], row["title"], row["service"], row["severity"], int(row["drill"]),
                 first_events[0]["ts"], first_events[0]["ts"]])
            return self._append(incident, 0, GENESIS, first_events)

    @_guarded
    def append(self, incident: str, expected_seq: int, events: list[dict]) -> list[StoredEvent]:
        """Append `events` (dicts with ts, actor, type, data, and optionally the summary columns the
        event sets) after `expected_seq`, in one transaction."""
        self._require_key()
        with self._write():
            row = self.conn.execute("SELECT seq, hash FROM events WHERE incident = ? ORDER BY seq DESC LIMIT 1",
                                  [incident]).fetchone()
            if row is None:
                raise StoreError(f"incident {incident} does not exist")
            if row[0] != expected_seq:
                raise ConflictError(f"incident {incident} changed: expected event {expected_seq}, found {row[0]}")
            return self._append(incident, expected_seq, row[1], events)

    def _require_key(self) -> None:
        if getattr(self, "key_missing", None):
            raise ChainKeyError(self.key_missing)

    def _append(self, incident: str, seq: int, prev: str, events: list[dict]) -> list[StoredEvent]:
        stored = chain_events(incident, seq, prev, events, self.key)
        updates = summary_updates(events)
        seq, prev = stored[-1].seq, stored[-1].hash
        self.conn.executemany(
            "INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash, mac) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.incident, e.seq, e.ts, e.actor, e.type, data_json(e.data),
              e.prev_hash, e.hash, e.mac or None) for e in stored])
        sets = ["last_seq = ?", "updated_at = ?", "last_mac = ?"]
        values = [seq, events[-1]["ts"], anchor_mac(self.key, incident, seq, prev) if self.key else None]
        for column in FIRST_COLUMNS:
            if column in updates:
                sets.append(f"{column} = COALESCE({column}, ?)")
                values.append(updates[column])
        if "status" in updates:
            # status only moves forward: a late "acknowledged" never reopens a mitigated incident
            rank = "CASE status " + " ".join(f"WHEN '{name}' THEN {n}" for name, n in STATUS_RANK.items()) + " END"
            sets.append(f"status = CASE WHEN ({rank}) < ? THEN ? ELSE status END")
            values += [STATUS_RANK[updates["status"]], updates["status"]]
        for column in LATEST_COLUMNS:
            if column in updates:
                sets.append(f"{column} = ?")
                values.append(updates[column])
        self.conn.execute(f"UPDATE incidents SET {', '.join(sets)} WHERE id = ?", values + [incident])
        return stored

    # reading ------------------------------------------------------------------------------

    @_guarded
    def events(self, incident: str, after: int = 0) -> list[StoredEvent]:
        return stored_events(self.conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE incident = ? AND seq > ? "
                                               "ORDER BY seq", [incident, after]))

    def log_extents(self, incidents: list[str]) -> dict[str, tuple[int, int]]:
        """For each incident, (number of events, highest sequence number) as the log holds them."""
        return {i: (count, last) for i, (count, last, _) in self.log_facts(incidents).items()}

    @_guarded
    def log_facts(self, incidents: list[str]) -> dict[str, tuple[int, int, dict]]:
        """For each incident, cheaply, what its log says the summary should be: (number of events,
        highest sequence number, {status, drill, severity, title, playbook, opened_at}), in three
        indexed queries for all of them."""
        if not incidents:
            return {}
        marks = ", ".join("?" * len(incidents))
        counts = self.conn.execute(f"SELECT incident, count(*), max(seq) FROM events WHERE incident IN ({marks}) "
                                   "GROUP BY incident", incidents).fetchall()
        typed = self.conn.execute(f"SELECT incident, type, data FROM events WHERE type IN {STATUS_TYPES!r} AND "
                                  f"incident IN ({marks})", incidents).fetchall()
        # the opened event (seq 1) and the severity changes, through the key and the (type, incident) index
        marked = self.conn.execute(f"SELECT incident, seq, ts, type, data FROM events WHERE incident IN ({marks}) "
                                   "AND seq = 1", incidents).fetchall()
        marked += self.conn.execute(f"SELECT incident, seq, ts, type, data FROM events WHERE type = 'severity_changed' "
                                    f"AND incident IN ({marks})", incidents).fetchall()
        return log_facts_from(counts, typed, marked)

    @_guarded
    def hidden_by_summary(self, open_only: bool, drills: bool | None) -> list[dict]:
        """Summary rows a listing would leave out because their status or drill column says what the
        log does not: "resolved" without a resolved event, a drill whose opened event is no drill (or
        the reverse). Indexed lookups per resolved (or filtered) incident."""
        where = []
        if open_only:  # the listing keeps status != 'resolved', which a NULL or unknown status fails too
            where.append("(i.status IS NOT 'open' AND i.status IS NOT 'acknowledged' AND i.status IS NOT 'mitigated' "
                         "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'resolved' AND e.incident = i.id))")
        if drills is not None:
            opened_drill = ("(SELECT coalesce(json_extract(e.data, '$.drill'), 0) FROM events e "
                            "WHERE e.incident = i.id AND e.seq = 1)")
            where.append(f"(i.drill IS NOT ? AND {opened_drill} IS ?)")
        if not where:
            return []
        params = [int(drills), int(drills)] if drills is not None else []
        # a summary edited to hide: caught whichever column hides it
        sql = f"SELECT * FROM incidents i WHERE {' OR '.join(where)} ORDER BY opened_at DESC, id"
        return self._query(sql, params)

    @_guarded
    def without_summary(self) -> list[str]:
        """Incidents whose events (their opened event) or snapshot remain but whose summary row is gone."""
        return [r[0] for r in self.conn.execute(
            "SELECT incident FROM events WHERE type = 'opened' AND incident NOT IN (SELECT id FROM incidents) "
            "UNION SELECT incident FROM snapshots WHERE incident NOT IN (SELECT id FROM incidents) ORDER BY 1")]

    @_guarded
    def has_record(self, incident: str) -> bool:
        """Whether anything of `incident` is stored: its summary row, an event, or its snapshot."""
        return any(self.conn.execute(sql, [incident]).fetchone() for sql in (
            "SELECT 1 FROM incidents WHERE id = ?", "SELECT 1 FROM events WHERE incident = ? LIMIT 1",
            "SELECT 1 FROM snapshots WHERE incident = ?"))

    @_guarded
    def ids_without_summary_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]:
        """Like `ids_starting_with`, over incidents that have events or a snapshot but no summary row
        (a full scan: only asked when no summary row matches)."""
        patterns = [like_prefix(head + text) for head in ("", *heads)]
        where = " OR ".join(["upper(incident) LIKE ? ESCAPE '\\'"] * len(patterns))
        sql = (f"SELECT DISTINCT incident FROM (SELECT incident FROM events UNION SELECT incident FROM snapshots) "
               f"WHERE ({where}) AND incident NOT IN (SELECT id FROM incidents) ORDER BY 1")
        return [r[0] for r in self.conn.execute(sql, patterns)]

    @_guarded
    def read_record(self, incident: str) -> tuple[dict | None, list[StoredEvent], dict | None]:
        """The snapshot, the events and the summary row, read in one transaction: what integrity
        compares must be one moment, not a summary that moved on while the events were read."""
        if self.conn.in_transaction:
            return self.snapshot(incident), self.events(incident), self.incident(incident)
        self.conn.execute("BEGIN")
        try:
            return self.snapshot(incident), self.events(incident), self.incident(incident)
        finally:
            self.conn.execute("COMMIT")

    @_guarded
    def read_recent(self, incident: str, window: int) -> tuple[dict | None, dict | None, list[StoredEvent],
                                                             dict | None]:
        """Like read_record, from the latest checkpoint: the snapshot, the checkpoint (None when
        there is none: then every event), the opened event and the events from `window` before the
        checkpoint on, and the summary row, in one transaction."""
        own = not self.conn.in_transaction
        if own:
            self.conn.execute("BEGIN")
        try:
            found = self.checkpoint(incident)
            if found is None:
                return self.snapshot(incident), None, self.events(incident), self.incident(incident)
            start = max(1, found["seq"] - window)
            events = stored_events(self.conn.execute(recent_events_sql("?"), [incident, start, incident, start]))
            return self.snapshot(incident), found, events, self.incident(incident)
        finally:
            if own:
                self.conn.execute("COMMIT")

    @_guarded
    def checkpoint(self, incident: str) -> dict | None:
        return checkpoint_from(self.conn.execute(f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM checkpoints "
                                                 "WHERE incident = ?", [incident]).fetchone())

    @_guarded
    def save_checkpoint(self, incident: str, seq: int, chain_hash: str, body: str, digest: str, mac: str) -> None:
        """Keep a checkpoint in place of the incident's last one (derived data: not fsynced
        apart from the database's own commit, and losing it costs only a slower open)."""
        if self.conn.in_transaction:
            return  # inside another's transaction: the next reader writes it
        waits = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self.conn.execute("PRAGMA busy_timeout = 250")  # a busy database: skip it, never hold up a reader
        try:
            with self._write():
                self.conn.execute(checkpoint_upsert("?"), [incident, seq, chain_hash, body, digest, mac or None])
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(waits)}")

    @_guarded
    def last_seq(self, incident: str) -> int:
        row = self.conn.execute("SELECT last_seq FROM incidents WHERE id = ?", [incident]).fetchone()
        return row[0] if row else -1

    @_guarded
    def data_version(self) -> int:
        """SQLite's count of commits by other connections, as this one sees it (PRAGMA
        data_version): unchanged means nobody else has written since it was last asked."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    @_guarded
    def snapshot(self, incident: str) -> dict | None:
        row = self.conn.execute("SELECT playbook, hash, text, documents FROM snapshots WHERE incident = ?",
                              [incident]).fetchone()
        if row is None:
            return None
        return {"playbook": row[0], "hash": row[1], "text": row[2], "documents": json.loads(row[3])}

    @_guarded
    def incident(self, incident: str) -> dict | None:
        rows = self._query("SELECT * FROM incidents WHERE id = ?", [incident])
        return rows[0] if rows else None

    @_guarded
    def incidents(self, status: str | None = None, open_only: bool = False, drills: bool | None = None,
                  playbook: str | None = None, since: str | None = None, limit: int | None = None,
                  resolved_since: str | None = None) -> list[dict]:
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if open_only:
            where.append("status NOT IN ('resolved', 'closed')")  # follow-up: resolved, work left
        if drills is not None:
            where.append("drill = ?")
            params.append(int(drills))
        if playbook:
            where.append("playbook = ?")
            params.append(playbook)
        if since:
            where.append("opened_at >= ?")
            params.append(since)
        if resolved_since:  # ISO text in UTC, as the engine writes it: sorts as it reads
            where.append("resolved_at >= ?")
            params.append(resolved_since)
        sql = "SELECT * FROM incidents" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY opened_at DESC, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._query(sql, params)

    @_guarded
    def ids_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]:
        """Incident ids that start with `text`, ignoring case, whole or after one of `heads` ("INC-")."""
        patterns = [like_prefix(head + text) for head in ("", *heads)]
        where = " OR ".join(["upper(id) LIKE ? ESCAPE '\\'"] * len(patterns))
        return [r[0] for r in self.conn.execute(f"SELECT id FROM incidents WHERE {where} ORDER BY id", patterns)]

    @_guarded
    def record_simulation(self, drill: str, playbook: str, runs: int, seed: int, created_at: str,
                          summary: dict) -> int:
        with self._write():
            cursor = self.conn.execute("INSERT INTO simulations (drill, playbook, runs, seed, created_at, summary) "
                                     "VALUES (?, ?, ?, ?, ?, ?)",
                                     [drill, playbook, runs, seed, created_at, json.dumps(summary)])
            return cursor.lastrowid

    @_guarded
    def schedule_state(self, drill: str) -> dict | None:
        rows = self._query("SELECT * FROM drill_schedule WHERE drill = ?", [drill])
        return rows[0] if rows else None

    @_guarded
    def claim_occurrence(self, drill: str, scheduled: str, outcome: str, now: str) -> bool:
        """Record that `drill`'s occurrence at `scheduled` is handled; False when another scheduler
        already claimed it (or a later one). The write lock makes the check and the claim one step."""
        with self._write():
            row = self.conn.execute("SELECT last_scheduled FROM drill_schedule WHERE drill = ?", [drill]).fetchone()
            if row is not None and row[0] is not None and row[0] >= scheduled:
                return False
            self.conn.execute("INSERT INTO drill_schedule (drill, last_scheduled, last_outcome, updated_at) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT(drill) DO UPDATE SET last_scheduled = excluded.last_scheduled, "
                            "last_outcome = excluded.last_outcome, updated_at = excluded.updated_at",
                            [drill, scheduled, outcome, now])
            return True

    @_guarded
    def set_schedule_outcome(self, drill: str, outcome: str, incident: str | None, now: str) -> None:
        with self._write():
            self.conn.execute("UPDATE drill_schedule SET last_outcome = ?, incident = COALESCE(?, incident), "
                            "updated_at = ? WHERE drill = ?", [outcome, incident, now, drill])

    @_guarded
    def simulations(self, drill: str | None = None) -> list[dict]:
        sql = "SELECT id, drill, playbook, runs, seed, created_at, summary FROM simulations"
        params = []
        if drill:
            sql += " WHERE drill = ?"
            params.append(drill)
        rows = self.conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [{"id": r[0], "drill": r[1], "playbook": r[2], "runs": r[3], "seed": r[4], "created_at": r[5],
                 "summary": json.loads(r[6])} for r in rows]
