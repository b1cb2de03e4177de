"""The embedded incident store (SQLite, the default): the SQLite dialect of the SQL core (core.py).

sqlite-utils creates and migrates the schema (schema.py declares it); reads and appends go
straight through the sqlite3 connection, so a command on an up-to-date database never imports
sqlite-utils (its import and plugin scan would be a third of the start-up of a short command).

Durability: every connection uses WAL with synchronous=FULL, so an event whose append
returned survives kill -9 and power loss; a busy timeout lets several processes share the
file. Writers are serialised by SQLite's write lock, taken up front (BEGIN IMMEDIATE): an
append reads the log's end, checks the expected sequence number and inserts under it, so two
writers never interleave or duplicate events: the loser gets a `ConflictError`, re-reads and
retries. `data_version()` tells a writer whether another connection committed since it last
asked, so it may append on the state it holds without reading first. The change feed reads
the events' rowid, which only grows (the log is append-only). No notifications: live views
poll `changes_since`.

A database the user cannot write (the file, or the directory SQLite keeps its WAL files in)
is opened read-only: reads work, the first write says why it cannot, and nothing is migrated.
Every SQLite failure leaves this module as a `StoreError` naming the database and what to do.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from runbook.store.common import StoredEvent, StoreError, anchor_mac, chain_events, default_path, is_postgres_url
from runbook.store.core import INSERT_EVENT, SqlStore, event_row, guarded, summary_params, summary_update_sql
from runbook.store.interface import StoreFeatures
from runbook.store.ledger import SqlAlertLedger, SqlMaintenance, SqlSubscribers
from runbook.store.schema import BIGINT, INT, SERIAL, TABLES, Column, Create, Index

if TYPE_CHECKING:
    import sqlite_utils

BUSY_TIMEOUT_MS = 30_000
HEALTH_LOCK_TIMEOUT = 2.0  # /healthz: how long the write lock may stay out of reach
_WRITERS_LOCK = threading.Lock()


class Writers:
    """The lock this process's writers to one database take in turn (see Store._write), and how
    many are waiting for it (a batch of writes ends early for them: `Store.writers_waiting`)."""

    def __init__(self):
        self._lock = threading.RLock()
        self.waiting = 0

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            with _WRITERS_LOCK:
                self.waiting += 1
            try:
                self._lock.acquire()
            finally:
                with _WRITERS_LOCK:
                    self.waiting -= 1
        return self

    def __exit__(self, *exc):
        self._lock.release()

    def acquire(self, timeout: float) -> bool:
        """The lock within `timeout` seconds, or False (a health probe does not queue as a writer)."""
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


_WRITERS: dict[str, Writers] = {}


def _writers(path: str) -> Writers:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(os.path.realpath(path), Writers())


FEATURES = StoreFeatures(persistent=True, counts_commits=True, searches_text=True, batches_writes=True)
SUMMARY_UPDATE = summary_update_sql(lambda name: f":{name}")


class Statement(NamedTuple):
    """A migration step of SQLite's own (the FTS5 table), as SQL that creates only what is missing."""

    sql: str


MIGRATIONS = ((1, "events, incidents projection, snapshots", (Create("events"), Create("incidents"),
                                                              Create("snapshots"))),
              (2, "index incidents by opening time", (Index("incidents", "idx_incidents_opened_at"),)),
              (3, "summaries of simulated drill runs", (Create("simulations"),)),
              (4, "drill schedule: the last occurrence each drill fired or skipped", (Create("drill_schedule"),)),
              (5, "events: a keyed signature of each event's hash", (Column("events", "mac"),)),
              (6, "incidents: a signed anchor of the log's end; events indexed by type",
               (Column("incidents", "last_mac"), Index("events", "idx_events_type_incident"))),
              (7, "alerts received by runbook serve", (Create("alerts"),)),
              (8, "checkpoints: big incidents open from their folded state", (Create("checkpoints"),)),
              (9, "past incidents searched by their words (FTS5)",
               (Create("search_docs"), Statement("CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(words)"),
                # how many incidents hold each word, kept by FTS5 itself
                Statement("CREATE VIRTUAL TABLE IF NOT EXISTS search_vocab USING fts5vocab(search_fts, 'row')"))),
              (10, "leases: the work each server owns, taken over when its lease ends", (Create("leases"),)),
              (11, "scheduled maintenance windows", (Create("maintenance"),)),
              (12, "subscribers to the public page and what was sent to them",
               (Create("subscribers"), Create("deliveries"))),
              (13, "alerts: the group of sibling alerts each belongs to",
               (Column("alerts", "sibling_key"), Index("alerts", "idx_alerts_sibling_key"))),
              (14, "incident leases: one server fires an incident's timers, fenced by an epoch",
               (Create("incident_leases"),)))


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


def _apply(db: sqlite_utils.Database, step) -> None:
    """One migration step through sqlite-utils: what it declares, where it is missing."""
    if isinstance(step, Statement):
        db.execute(step.sql)
        return
    table = TABLES[step.table]
    kind = {INT: int, BIGINT: int, SERIAL: int}
    if isinstance(step, Create) and not db[table.name].exists():
        db[table.name].create({name: kind.get(type_, str) for name, type_ in table.columns.items()},
                              pk=table.pk if len(table.pk) > 1 else table.pk[0], not_null=set(table.not_null))
    if isinstance(step, Column) and step.column not in db[table.name].columns_dict:
        db[table.name].add_column(step.column, kind.get(table.columns[step.column], str))
    for name, columns in table.indexes.items():
        if isinstance(step, Create) or (isinstance(step, Index) and step.name == name):
            db[table.name].create_index(list(columns), index_name=name, if_not_exists=True)


class Store(SqlStore, SqlAlertLedger, SqlMaintenance, SqlSubscribers):
    """Incidents in a SQLite file (the module's text says how)."""

    driver_error = sqlite3.Error
    change_column = "rowid"
    opened_drill = ("(SELECT coalesce(json_extract(e.data, '$.drill'), 0) FROM events e "
                    "WHERE e.incident = i.id AND e.seq = 1)")
    last_id = "last_insert_rowid()"
    search_sql = ("SELECT d.incident, d.playbook, d.opened_at, d.drill, d.mitigated, d.words FROM search_docs d "
                  "JOIN (SELECT rowid AS found, rank FROM search_fts WHERE search_fts MATCH ? ORDER BY rank LIMIT ?) f "
                  "ON d.fts_rowid = f.found WHERE d.incident <> ? AND d.opened_at < ? ORDER BY f.rank")

    def __init__(self, path: str | None = None, key: bytes | str | None = "auto", key_created: str | None = None):
        self.path = path or default_path()
        if is_postgres_url(self.path):
            raise StoreError("a PostgreSQL URL names a team database, not a SQLite file: open it with "
                             "runbook.store.open_store")
        self._take_key(key, key_created)
        self.location = self.path  # what reopens it (another thread's connection)
        self._db = None
        self.readonly = None  # why the database cannot be written, when it cannot
        if self.path != ":memory:":
            self._make_directory()
            self.readonly = _why_readonly(self.path)
        self.conn = self._connect_readonly() if self.readonly else self._connect()
        self.features = dataclasses.replace(FEATURES, readonly=self.readonly)
        try:
            self.migrate()
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

    @guarded
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

    @guarded
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
    def db(self) -> sqlite_utils.Database:
        """The connection wrapped by sqlite-utils (imported on first use), for schema changes."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def listen(self, on_change):
        """No notifications from SQLite (features.notifies): live views poll `changes_since`."""
        return None

    @guarded
    def data_version(self) -> int:
        """SQLite's count of commits by other connections, as this one sees it (PRAGMA
        data_version): unchanged means nobody else has written since it was last asked."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    @guarded
    def pragmas(self) -> dict:
        return {name: self.conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "busy_timeout")}

    def settings(self) -> dict:
        """What durability rests on."""
        return self.pragmas()

    # migrations ----------------------------------------------------------------------------

    @guarded
    def schema_version(self) -> tuple[int, list[tuple[int, str]]]:
        """(the highest migration applied, the migrations not applied yet)."""
        done = {row[0] for row in self.conn.execute("SELECT id FROM migrations")}
        return max(done, default=0), [(n, name) for n, name, _ in MIGRATIONS if n not in done]

    @guarded
    def migrate(self) -> list[int]:
        """Apply the pending migrations in one transaction (every open does: the file is yours
        alone); the numbers applied."""
        try:
            done = {row[0] for row in self.conn.execute("SELECT id FROM migrations")}
        except sqlite3.OperationalError as exc:  # a new database (or one that cannot be read)
            if "no such table" not in str(exc):
                raise
            done = set()
        pending = [number for number, _, _ in MIGRATIONS if number not in done]
        if not pending:
            return []
        if self.readonly:
            what = "is not an incident database yet" if not done else "needs upgrading to this version of runbook"
            raise StoreError(f"the incident database {self.path} {what}, but it is read-only: {self.readonly}; "
                             "run a runbook command on it once with write access")
        with self._write():
            if "migrations" not in self.db.table_names():
                self.db["migrations"].create({"id": int, "name": str}, pk="id")
            for number, name, steps in MIGRATIONS:
                if number in pending:
                    for step in steps:
                        _apply(self.db, step)
                    self.db.execute("INSERT INTO migrations (id, name) VALUES (?, ?)", [number, name])
            if 6 in pending and self.key:
                self._anchor_existing()
        return pending

    def _anchor_existing(self) -> None:
        """On the upgrade that adds the signed anchor, with the chain key at hand: anchor each
        incident's log as it is now (once; later a missing anchor is a problem, never re-signed)."""
        for incident, seq, digest in self.conn.execute(
                "SELECT e.incident, e.seq, e.hash FROM events e JOIN incidents i ON i.id = e.incident "
                "WHERE e.seq = (SELECT max(seq) FROM events WHERE incident = e.incident)").fetchall():
            self.conn.execute("UPDATE incidents SET last_mac = ? WHERE id = ?",
                              [anchor_mac(self.key, incident, seq, digest), incident])

    # the dialect's parts of the core -------------------------------------------------------

    def _put_words(self, incident: str, words: str) -> int:
        old = self.conn.execute("SELECT fts_rowid FROM search_docs WHERE incident = ?", [incident]).fetchone()
        if old and old[0] is not None:
            self.conn.execute("DELETE FROM search_fts WHERE rowid = ?", [old[0]])
        return self.conn.execute("INSERT INTO search_fts (words) VALUES (?)", [words]).lastrowid

    def _text_query(self, terms: list[str]) -> str:
        return " OR ".join(f'"{term}"' for term in terms)

    def _term_docs(self, terms: list[str], total: int) -> dict[str, int]:
        among, params = self._any("term", terms)
        return dict(self.conn.execute(f"SELECT term, doc FROM search_vocab WHERE {among}", params).fetchall())

    @contextmanager
    def _write(self, lock: str | None = None):
        """SQLite's one write lock, taken up front (BEGIN IMMEDIATE): it serialises every writer,
        so no lock of its own is needed for `lock`. Writers in this process (the engine service's
        lanes) first queue on a lock of the database's own: SQLite's busy handler would make a
        waiter sleep in growing steps (up to 100 ms) and miss the moments the lock is free, so an
        alert's one commit could wait out a burst of another lane's commits."""
        if self.readonly:
            raise StoreError(f"the incident database {self.path} is read-only: {self.readonly}; only reading "
                             "commands (list, show, export, verify, metrics, report) work on it")
        if self._batch:  # inside batch(): the write lock is held already
            self.conn.execute("SAVEPOINT write")
            try:
                yield
            except BaseException:
                if self.conn.in_transaction:  # (an error SQLite rolled everything back for has ended it)
                    self.conn.execute("ROLLBACK TO write")
                    self.conn.execute("RELEASE write")
                raise
            self.conn.execute("RELEASE write")
            return
        with _writers(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def writers_waiting(self) -> bool:
        """Whether another writer of this process waits for the write lock (an alert being
        recorded, while a batch of writes holds it)."""
        return _writers(self.path).waiting > 0

    @contextmanager
    def _one_moment(self):
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    @guarded
    def health(self) -> None:
        """The write lock an alert's append needs is within reach: a BEGIN IMMEDIATE that waits
        at most HEALTH_LOCK_TIMEOUT (for this process's writers, then for another process's
        write lock), rolled back; a StoreError saying which when it is out of reach."""
        if self.readonly:
            raise StoreError(f"the incident database {self.path} is read-only: {self.readonly}")
        ours = _writers(self.path)
        if not ours.acquire(timeout=HEALTH_LOCK_TIMEOUT):
            raise StoreError(f"the incident database {self.path} is busy: this server's own writes held its write "
                             f"lock over {HEALTH_LOCK_TIMEOUT:g}s")
        waits = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(HEALTH_LOCK_TIMEOUT * 1000)}")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _code(exc) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                raise StoreError(f"the incident database {self.path} is busy: another process has held its write "
                                 f"lock over {HEALTH_LOCK_TIMEOUT:g}s ({exc}); alerts cannot be recorded now") \
                    from None
            self.conn.execute("ROLLBACK")
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(waits)}")
            ours.release()

    @guarded
    def append(self, incident: str, expected_seq: int, events: list[dict],
               after_hash: str | None = None, request: str | None = None,
               retried: bool = False, fence: tuple[str, int] | None = None) -> list[StoredEvent]:
        """Append `events` (dicts with ts, actor, type, data, and optionally the summary columns the
        event sets) after `expected_seq`, in one transaction under the write lock. `request` and
        `retried` are not used: a local commit either returns or fails, there is no lost connection
        to settle. `fence` (holder, epoch): only while that still holds the incident's lease."""
        self._require_key()
        with self._write():
            if fence is not None:
                self._check_fence(incident, fence)
            prev = self._log_end(incident, expected_seq, after_hash)
            return self._append_after(incident, expected_seq, prev, events)

    def _append_after(self, incident: str, seq: int, prev: str, events: list[dict]) -> list[StoredEvent]:
        stored = chain_events(incident, seq, prev, events, self.key)
        self.conn.executemany(INSERT_EVENT, [event_row(e) for e in stored])
        self.conn.execute(SUMMARY_UPDATE, summary_params(incident, stored, events, self.key))
        return stored

    @guarded
    def save_checkpoint(self, incident: str, seq: int, chain_hash: str, body: str, digest: str, mac: str) -> None:
        """As the core's, never holding anyone up: not inside another's transaction (the next
        reader writes it), and a busy database is skipped after 250 ms, not the busy timeout."""
        if self.conn.in_transaction:
            return
        waits = self.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        self.conn.execute("PRAGMA busy_timeout = 250")
        try:
            super().save_checkpoint(incident, seq, chain_hash, body, digest, mac)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(waits)}")
