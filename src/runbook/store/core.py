"""The SQL both database stores run: `SqlStore`, the base class of the SQLite and PostgreSQL stores.

Written once, with `?` placeholders; each dialect (sqlite.py, postgres.py) supplies only what
really differs: connecting and its failures, how writers are serialised (`_write`), reading
one moment (`_one_moment`), the change column, migrations, notifications, how an append
reaches the database, a JSON fragment and how a list of values is matched. What a store can
do beyond the interface is declared in `features` (interface.py), never probed.
"""

from __future__ import annotations

import functools
import json
from contextlib import AbstractContextManager, contextmanager

from runbook.store.common import (
    CHECKPOINT_COLUMNS,
    EVENT_COLUMNS,
    FIRST_COLUMNS,
    GENESIS,
    LATEST_COLUMNS,
    STATUS_RANK,
    STATUS_TYPES,
    ChainKeyError,
    ConflictError,
    FencedError,
    StoredEvent,
    StoreError,
    anchor_mac,
    checkpoint_from,
    checkpoint_upsert,
    data_json,
    lease_seconds,
    lease_shift,
    like_prefix,
    log_facts_from,
    missing_chain_key,
    read_chain_key,
    recent_events_sql,
    stored_events,
    summary_updates,
)
from runbook.store.interface import StoreFeatures

INSERT_EVENT = ("INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash, mac) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT_CHECKPOINT = f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM checkpoints WHERE incident = ?"
SEARCH_COLUMNS = "incident, playbook, opened_at, drill, mitigated, words"
SUMMARY_PARAMS = ("incident", "last_seq", "updated_at", "last_mac", *FIRST_COLUMNS, "status", "status_rank",
                  *LATEST_COLUMNS)


def guarded(method):
    """Turn the driver's failures inside a store method into one StoreError that names the database."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            self._ready()
            return method(self, *args, **kwargs)
        except self.driver_error as exc:
            raise self._failure(exc) from None
    return run


def where(*conditions) -> tuple[str, list]:
    """" WHERE ..." of the conditions given, each (SQL, its parameter if it has one); None: left out."""
    given = [c for c in conditions if c]
    return (" WHERE " + " AND ".join(c[0] for c in given) if given else ""), [c[1] for c in given if len(c) > 1]


def event_row(event: StoredEvent) -> tuple:
    """An event's values in the order of INSERT_EVENT."""
    return (event.incident, event.seq, event.ts, event.actor, event.type, data_json(event.data), event.prev_hash,
            event.hash, event.mac or None)


def summary_update_sql(mark) -> str:
    """The one statement that keeps the incidents summary on an append, given SUMMARY_PARAMS
    (`mark(name)`: how the dialect spells that parameter). The first time wins for the *_at
    columns; status only moves forward, so a late "acknowledged" never reopens a mitigated
    incident; the rest take the latest value. A NULL for one of those leaves its column as it is."""
    rank = "CASE status " + " ".join(f"WHEN '{name}' THEN {n}" for name, n in STATUS_RANK.items()) + " END"
    sets = [f"last_seq = {mark('last_seq')}", f"updated_at = {mark('updated_at')}", f"last_mac = {mark('last_mac')}"]
    sets += [f"{column} = COALESCE({column}, {mark(column)})" for column in FIRST_COLUMNS]
    sets.append(f"status = CASE WHEN ({rank}) < {mark('status_rank')} THEN {mark('status')} ELSE status END")
    sets += [f"{column} = COALESCE({mark(column)}, {column})" for column in LATEST_COLUMNS]
    return f"UPDATE incidents SET {', '.join(sets)} WHERE id = {mark('incident')}"


def summary_params(incident: str, stored: list[StoredEvent], events: list[dict], key: bytes | None) -> dict:
    """The values of SUMMARY_PARAMS for appending `events`, stored as `stored`."""
    updates = summary_updates(events)
    last = stored[-1]
    status = updates.get("status")
    return {"incident": incident, "last_seq": last.seq, "updated_at": events[-1]["ts"],
            "last_mac": anchor_mac(key, incident, last.seq, last.hash) if key else None,
            **{column: updates.get(column) for column in (*FIRST_COLUMNS, *LATEST_COLUMNS)},
            "status": status, "status_rank": STATUS_RANK[status] if status else None}


class SqlStore:
    """Incidents as append-only event logs in a SQL database; a dialect subclass connects."""

    features: StoreFeatures
    driver_error: type[Exception]  # what the driver raises (caught by `guarded`)
    change_column: str  # what orders the change feed: a position that only grows
    opened_drill: str  # SQL: whether the opened event (e.seq = 1) of incident i.id is a drill, 0 or 1
    last_id: str  # SQL: the id the last insert of this connection was given
    _batch = False  # inside `batch()`: each write is a savepoint of its transaction

    # set up --------------------------------------------------------------------------------

    def _take_key(self, key: bytes | str | None, key_created: str | None) -> None:
        """The chain key events are signed with: "auto" reads the configured one."""
        if key == "auto":
            found = read_chain_key()
            self.key, self.key_created = (found.key, found.created) if found else (None, None)
            self.key_missing = missing_chain_key()
        else:
            self.key, self.key_created, self.key_missing = key, key_created, None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # what each dialect supplies ------------------------------------------------------------

    def _ready(self) -> None:
        """Before each call (PostgreSQL reconnects after a lost connection)."""

    def _failure(self, exc: Exception) -> StoreError:
        raise NotImplementedError

    def _write(self, lock: str | None = None) -> AbstractContextManager:
        """One write transaction. `lock` names writers that must also be serialised across
        processes ("ledger"): SQLite's write lock does that for every writer already."""
        raise NotImplementedError

    def _one_moment(self) -> AbstractContextManager:
        """Reads that see one moment of the database (nothing when already in a transaction)."""
        raise NotImplementedError

    @contextmanager
    def batch(self):
        """The writes made inside, on this connection, committed together at the end (a store
        whose `features.batches_writes`): one commit for several, where each write would wait
        for its own. Each write inside is a savepoint, so one that fails undoes only itself; an
        error out of the block undoes them all. Other connections' writers wait meanwhile (keep
        it short), and see none of it until the end."""
        if self._batch:
            yield
            return
        try:
            with self._write():
                self._batch = True
                try:
                    yield
                finally:
                    self._batch = False
        except self.driver_error as exc:  # the commit itself failed (a full disk): as any store failure
            raise self._failure(exc) from None

    def _append_after(self, incident: str, seq: int, prev: str, events: list[dict]) -> list[StoredEvent]:
        """Store `events` after event `seq`, whose hash is `prev`, and keep the summary."""
        raise NotImplementedError

    def _any(self, column: str, values: list) -> tuple[str, list]:
        """SQL matching `column` against any of `values`, and its parameters."""
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def _run(self, sql: str, params=()):
        return self.conn.execute(sql, params)

    def _query(self, sql: str, params=()) -> list[dict]:
        cursor = self._run(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # writing -------------------------------------------------------------------------------

    def _require_key(self) -> None:
        if self.key_missing:
            raise ChainKeyError(self.key_missing)

    @guarded
    def create_incident(self, incident: str, snapshot: dict, row: dict, first_events: list[dict]) -> list[StoredEvent]:
        """Create an incident with its snapshot and first events, atomically."""
        self._require_key()
        with self._write():
            # a writer creating the same incident meanwhile makes this insert wait for its commit
            if self._run("INSERT INTO incidents (id, playbook, title, service, severity, status, drill, opened_at, "
                         "last_seq, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING",
                         [incident, row["playbook"], row["title"], row["service"], row["severity"],
                          int(row["drill"]), first_events[0]["ts"], first_events[0]["ts"]]).rowcount != 1:
                raise ConflictError(f"incident {incident} already exists")
            self._run("INSERT INTO snapshots (incident, playbook, hash, text, documents) VALUES (?, ?, ?, ?, ?)",
                      [incident, snapshot["playbook"], snapshot["hash"], snapshot["text"],
                       json.dumps(snapshot["documents"], ensure_ascii=False)])
            return self._append_after(incident, 0, GENESIS, first_events)

    def _log_end(self, incident: str, expected_seq: int, after_hash: str | None = None) -> str:
        """The hash of the incident's last event, which must be event `expected_seq` (with hash
        `after_hash`, when given): else ConflictError, or StoreError when it has no events."""
        row = self._run("SELECT seq, hash FROM events WHERE incident = ? ORDER BY seq DESC LIMIT 1",
                        [incident]).fetchone()
        found, digest = row if row is not None else (0, None)
        self._check_end(incident, expected_seq, after_hash, found, digest)
        return digest

    @staticmethod
    def _check_end(incident: str, expected_seq: int, after_hash: str | None, found: int, digest: str | None) -> None:
        if not found:
            raise StoreError(f"incident {incident} does not exist")
        if found != expected_seq:
            raise ConflictError(f"incident {incident} changed: expected event {expected_seq}, found {found}")
        if after_hash is not None and digest != after_hash:
            raise ConflictError(f"incident {incident} changed: event {found} is not the one read")

    # reading -------------------------------------------------------------------------------

    @guarded
    def events(self, incident: str, after: int = 0) -> list[StoredEvent]:
        return stored_events(self._run(f"SELECT {EVENT_COLUMNS} FROM events WHERE incident = ? AND seq > ? "
                                       "ORDER BY seq", [incident, after]).fetchall())

    def log_extents(self, incidents: list[str]) -> dict[str, tuple[int, int]]:
        """For each incident, (number of events, highest sequence number) as the log holds them."""
        return {i: (count, last) for i, (count, last, _) in self.log_facts(incidents).items()}

    @guarded
    def log_facts(self, incidents: list[str]) -> dict[str, tuple[int, int, dict]]:
        """For each incident, cheaply, what its log says the summary should be: (number of events,
        highest sequence number, {status, drill, severity, title, playbook, opened_at}), in indexed
        queries for all of them."""
        if not incidents:
            return {}
        among, params = self._any("incident", incidents)
        counts = self._run(f"SELECT incident, count(*), max(seq) FROM events WHERE {among} GROUP BY incident",
                           params).fetchall()
        typed = self._run(f"SELECT incident, type, data FROM events WHERE type IN {STATUS_TYPES!r} AND {among}",
                          params).fetchall()
        # the opened event (seq 1) and the severity changes, through the key and the (type, incident) index
        marked = self._run(f"SELECT incident, seq, ts, type, data FROM events WHERE {among} AND seq = 1",
                           params).fetchall()
        marked += self._run(f"SELECT incident, seq, ts, type, data FROM events WHERE type = 'severity_changed' "
                            f"AND {among}", params).fetchall()
        return log_facts_from(counts, typed, marked)

    @guarded
    def hidden_by_summary(self, open_only: bool, drills: bool | None) -> list[dict]:
        """Summary rows a listing would leave out because their status or drill column says what the
        log does not: "resolved" without a resolved event, a drill whose opened event is no drill (or
        the reverse). Indexed lookups per resolved (or filtered) incident."""
        where, params = [], []
        if open_only:  # the listing keeps status != 'resolved', which a NULL or unknown status fails too
            where.append("(coalesce(i.status, '') NOT IN ('open', 'acknowledged', 'mitigated') "
                         "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.type = 'resolved' AND e.incident = i.id))")
        if drills is not None:
            # a summary edited to hide: caught whichever column hides it
            where.append(f"(coalesce(i.drill, -1) <> ? AND {self.opened_drill} = ?)")
            params += [int(drills), int(drills)]
        if not where:
            return []
        return self._query(f"SELECT * FROM incidents i WHERE {' OR '.join(where)} ORDER BY opened_at DESC, id",
                           params)

    @guarded
    def without_summary(self) -> list[str]:
        """Incidents whose events (their opened event) or snapshot remain but whose summary row is gone."""
        return [r[0] for r in self._run(
            "SELECT incident FROM events WHERE type = 'opened' AND incident NOT IN (SELECT id FROM incidents) "
            "UNION SELECT incident FROM snapshots WHERE incident NOT IN (SELECT id FROM incidents) ORDER BY 1")]

    @guarded
    def has_record(self, incident: str) -> bool:
        """Whether anything of `incident` is stored: its summary row, an event, or its snapshot."""
        return any(self._run(sql, [incident]).fetchone() for sql in (
            "SELECT 1 FROM incidents WHERE id = ?", "SELECT 1 FROM events WHERE incident = ? LIMIT 1",
            "SELECT 1 FROM snapshots WHERE incident = ?"))

    @guarded
    def ids_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]:
        """Incident ids that start with `text`, ignoring case, whole or after one of `heads` ("INC-")."""
        patterns = [like_prefix(head + text) for head in ("", *heads)]
        where = " OR ".join(["upper(id) LIKE ? ESCAPE '\\'"] * len(patterns))
        return [r[0] for r in self._run(f"SELECT id FROM incidents WHERE {where} ORDER BY id", patterns)]

    @guarded
    def ids_without_summary_starting_with(self, text: str, heads: tuple[str, ...] = ()) -> list[str]:
        """Like `ids_starting_with`, over incidents that have events or a snapshot but no summary row
        (a full scan: only asked when no summary row matches)."""
        patterns = [like_prefix(head + text) for head in ("", *heads)]
        where = " OR ".join(["upper(incident) LIKE ? ESCAPE '\\'"] * len(patterns))
        sql = (f"SELECT DISTINCT incident FROM (SELECT incident FROM events UNION SELECT incident FROM snapshots) s "
               f"WHERE ({where}) AND incident NOT IN (SELECT id FROM incidents) ORDER BY 1")
        return [r[0] for r in self._run(sql, patterns)]

    @guarded
    def read_record(self, incident: str) -> tuple[dict | None, list[StoredEvent], dict | None]:
        """The snapshot, the events and the summary row, read as of one moment: what integrity
        compares must not be a summary that moved on while the events were read."""
        with self._one_moment():
            return self.snapshot(incident), self.events(incident), self.incident(incident)

    @guarded
    def read_recent(self, incident: str, window: int) -> tuple[dict | None, dict | None, list[StoredEvent],
                                                             dict | None]:
        """Like read_record, from the latest checkpoint: the snapshot, the checkpoint (None when
        there is none: then every event), the opened event and the events from `window` before the
        checkpoint on, and the summary row, as of one moment."""
        with self._one_moment():
            found = self.checkpoint(incident)
            if found is None:
                return self.snapshot(incident), None, self.events(incident), self.incident(incident)
            start = max(1, found["seq"] - window)
            events = stored_events(self._run(recent_events_sql("?"), [incident, start, incident, start]).fetchall())
            return self.snapshot(incident), found, events, self.incident(incident)

    @guarded
    def checkpoint(self, incident: str) -> dict | None:
        return checkpoint_from(self._run(SELECT_CHECKPOINT, [incident]).fetchone())

    @guarded
    def save_checkpoint(self, incident: str, seq: int, chain_hash: str, body: str, digest: str, mac: str) -> None:
        """Keep a checkpoint in place of the incident's last one (derived data: losing it costs
        only a slower open)."""
        with self._write():
            self._run(checkpoint_upsert("?"), [incident, seq, chain_hash, body, digest, mac or None])

    @guarded
    def last_seq(self, incident: str) -> int:
        row = self._run("SELECT last_seq FROM incidents WHERE id = ?", [incident]).fetchone()
        return row[0] if row else -1

    @guarded
    def snapshot(self, incident: str) -> dict | None:
        row = self._run("SELECT playbook, hash, text, documents FROM snapshots WHERE incident = ?",
                        [incident]).fetchone()
        if row is None:
            return None
        return {"playbook": row[0], "hash": row[1], "text": row[2], "documents": json.loads(row[3])}

    @guarded
    def incident(self, incident: str) -> dict | None:
        rows = self._query("SELECT * FROM incidents WHERE id = ?", [incident])
        return rows[0] if rows else None

    @guarded
    def incidents(self, status: str | None = None, open_only: bool = False, drills: bool | None = None,
                  playbook: str | None = None, since: str | None = None, limit: int | None = None,
                  resolved_since: str | None = None) -> list[dict]:
        # follow-up counts as open: resolved, work left. Times are ISO text in UTC, as the engine
        # writes them: they sort as they read.
        sql, params = where(("status = ?", status) if status else None,
                            ("status NOT IN ('resolved', 'closed')",) if open_only else None,
                            ("drill = ?", int(drills)) if drills is not None else None,
                            ("playbook = ?", playbook) if playbook else None,
                            ("opened_at >= ?", since) if since else None,
                            ("resolved_at >= ?", resolved_since) if resolved_since else None)
        sql = "SELECT * FROM incidents" + sql + " ORDER BY opened_at DESC, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._query(sql, params)

    # past incidents, searched ------------------------------------------------------------

    # SQL: the best text matches (params: query, how many, exclude, before), then filtered by the
    # last two: the dialect ranks and cuts first, so a common word costs no sort of every match
    search_sql: str

    def _put_words(self, incident: str, words: str) -> int | None:
        """Put the incident's words in the dialect's full-text index (inside the write); the row id
        search_docs keeps (SQLite's FTS5 rowid), or None when the index follows search_docs itself."""
        return None

    def _text_query(self, terms: list[str]) -> str:
        """The dialect's full-text query matching any of `terms` (letters and digits only)."""
        raise NotImplementedError

    @guarded
    def index_words(self, incident: str, seq: int, playbook: str, opened_at: str, drill: bool, mitigated: bool,
                    words: str) -> None:
        """Keep the incident's searchable words as its log reads up to event `seq` (derived data:
        rebuilt from the log whenever it is behind)."""
        with self._write():
            fts = self._put_words(incident, words)
            self._run("INSERT INTO search_docs (incident, seq, playbook, opened_at, drill, mitigated, words, "
                      "fts_rowid) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident) DO UPDATE SET "
                      "seq = excluded.seq, playbook = excluded.playbook, opened_at = excluded.opened_at, "
                      "drill = excluded.drill, "
                      "mitigated = excluded.mitigated, words = excluded.words, fts_rowid = excluded.fts_rowid",
                      [incident, seq, playbook, opened_at, int(drill), int(mitigated), words, fts])

    @guarded
    def search(self, terms: list[str], limit: int, exclude: str = "", before: str = "\uffff") -> list[dict]:
        """Incidents whose words match any of `terms`, best first, of the best `limit` those opened
        before `before` other than `exclude`: {incident, playbook, opened_at, drill, mitigated, words}."""
        if not terms:
            return []
        return self._query(self.search_sql, [self._text_query(terms), int(limit), exclude, before])

    def _term_docs(self, terms: list[str], total: int) -> dict[str, int]:
        """How many of the `total` incidents indexed hold each term (the dialect may estimate)."""
        raise NotImplementedError

    def _doc_count(self) -> int:
        """How many incidents are indexed (the dialect may estimate a large number)."""
        return self._run("SELECT count(*) FROM search_docs").fetchone()[0]

    @guarded
    def term_counts(self, terms: list[str]) -> tuple[int, dict[str, int]]:
        """(how many incidents are indexed, how many hold each term)."""
        total = self._doc_count()
        found = self._term_docs(terms, total) if terms and total else {}
        return total, {term: found.get(term, 0) for term in terms}

    @guarded
    def latest_words(self, limit: int, before: str, playbook: str | None = None, exclude: str = "") -> list[dict]:
        """The latest `limit` incidents opened before `before` (of one playbook, when given), newest
        first, with their words (`search`'s columns)."""
        sql, params = where(("opened_at < ?", before), ("incident <> ?", exclude),
                            ("playbook = ?", playbook) if playbook else None)
        return self._query(f"SELECT {SEARCH_COLUMNS} FROM search_docs{sql} ORDER BY opened_at DESC "
                           f"LIMIT {int(limit)}", params)

    @guarded
    def search_behind(self) -> list[str]:
        """Incidents whose searchable words are missing or older than their log."""
        return [r[0] for r in self._run(
            "SELECT i.id FROM incidents i LEFT JOIN search_docs d ON d.incident = i.id "
            "WHERE d.seq IS NULL OR d.seq < i.last_seq ORDER BY i.id")]

    @guarded
    def events_of_types(self, types: tuple[str, ...]) -> list[StoredEvent]:
        """Every event of these types, across incidents, by incident then sequence (the type index)."""
        among, params = self._any("type", list(types))
        return stored_events(self._run(f"SELECT {EVENT_COLUMNS} FROM events WHERE {among} ORDER BY incident, seq",
                                       params).fetchall())

    # the change feed -----------------------------------------------------------------------

    @guarded
    def changes_since(self, cursor: int, limit: int = 500) -> list[tuple[int, str, int]]:
        """(position, incident, seq) of each event committed after `position`, oldest first; for
        live views. Positions only grow and become visible in order (the dialect sees to it)."""
        column = self.change_column
        return [tuple(row) for row in self._run(
            f"SELECT {column}, incident, seq FROM events WHERE {column} > ? ORDER BY {column} LIMIT ?",
            [int(cursor), int(limit)]).fetchall()]

    @guarded
    def changed_events(self, cursor: int, limit: int = 500) -> list[tuple[int, StoredEvent]]:
        """(position, the event as stored) of each event committed after `cursor`, oldest first:
        the change feed with the events themselves, in one query."""
        rows = self._run(f"SELECT {self.change_column}, {EVENT_COLUMNS} FROM events WHERE {self.change_column} > ? "
                         f"ORDER BY {self.change_column} LIMIT ?", [int(cursor), int(limit)]).fetchall()
        return list(zip([row[0] for row in rows], stored_events([tuple(row)[1:] for row in rows])))

    @guarded
    def change_cursor(self) -> int:
        """The position of the last event appended (0 when there is none)."""
        return self._run(f"SELECT coalesce(max({self.change_column}), 0) FROM events").fetchone()[0]

    def health(self) -> None:
        """StoreError when the database could not take an append now (`/healthz`)."""
        self.change_cursor()

    # drills --------------------------------------------------------------------------------

    @guarded
    def record_simulation(self, drill: str, playbook: str, runs: int, seed: int, created_at: str,
                          summary: dict) -> int:
        with self._write():
            self._run("INSERT INTO simulations (drill, playbook, runs, seed, created_at, summary) "
                      "VALUES (?, ?, ?, ?, ?, ?)", [drill, playbook, runs, seed, created_at, json.dumps(summary)])
            return self._run(f"SELECT {self.last_id}").fetchone()[0]

    @guarded
    def simulations(self, drill: str | None = None) -> list[dict]:
        sql, params = where(("drill = ?", drill) if drill else None)
        rows = self._run(f"SELECT id, drill, playbook, runs, seed, created_at, summary FROM simulations{sql} "
                         "ORDER BY created_at, id", params).fetchall()
        return [{"id": r[0], "drill": r[1], "playbook": r[2], "runs": r[3], "seed": r[4], "created_at": r[5],
                 "summary": json.loads(r[6])} for r in rows]

    @guarded
    def schedule_state(self, drill: str) -> dict | None:
        rows = self._query("SELECT * FROM drill_schedule WHERE drill = ?", [drill])
        return rows[0] if rows else None

    @guarded
    def claim_occurrence(self, drill: str, scheduled: str, outcome: str, now: str) -> bool:
        """Record that `drill`'s occurrence at `scheduled` is handled; False when another scheduler
        already claimed it (or a later one). One statement: the upsert re-checks its condition on
        the row as the last claim left it."""
        with self._write():
            return self._run(
                "INSERT INTO drill_schedule AS d (drill, last_scheduled, last_outcome, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (drill) DO UPDATE SET last_scheduled = excluded.last_scheduled, "
                "last_outcome = excluded.last_outcome, updated_at = excluded.updated_at "
                "WHERE d.last_scheduled IS NULL OR d.last_scheduled < excluded.last_scheduled",
                [drill, scheduled, outcome, now]).rowcount == 1

    @guarded
    def set_schedule_outcome(self, drill: str, outcome: str, incident: str | None, now: str) -> None:
        with self._write():
            self._run("UPDATE drill_schedule SET last_outcome = ?, incident = COALESCE(?, incident), "
                      "updated_at = ? WHERE drill = ?", [outcome, incident, now, drill])

    # leases --------------------------------------------------------------------------------
    # Lease times are set and compared on one clock, in the statement that uses them: the
    # dialect's `_lease_now` (SQLite, one host: the caller's `now`; PostgreSQL: the database's).

    def _lease_now(self, now: str) -> tuple[str, list]:
        """SQL for "now" on the lease clock, and its parameters."""
        return "?", [now]

    def _lease_later(self, now: str, seconds: float) -> tuple[str, list]:
        """SQL for `seconds` after now on the lease clock, and its parameters."""
        return "?", [lease_shift(now, seconds)]

    def lease_clock(self, now: str) -> str:
        """Now on the lease clock (the ISO text of `now`, the caller's, here)."""
        return now

    @guarded
    def renew_lease(self, holder: str, host: str, pid: int, seconds: float, now: str,
                    prune_after: float | None = None) -> bool:
        """Hold (or extend) `holder`'s lease for `seconds` from now; 0 ends it. `prune_after`:
        forget leases that ended that many seconds ago (servers long gone). Whether the lease was
        still running (False: it had run out, or never existed: others may have taken its work)."""
        at, at_params = self._lease_now(now)
        end, end_params = self._lease_later(now, seconds)
        with self._write():
            if prune_after:
                old, old_params = self._lease_later(now, -prune_after)
                self._run(f"DELETE FROM leases WHERE expires_at < {old}", old_params)
            row = self._run(f"SELECT expires_at > {at} FROM leases WHERE holder = ?", [*at_params, holder]).fetchone()
            self._run(f"INSERT INTO leases (holder, host, pid, expires_at, renewed_at) VALUES (?, ?, ?, {end}, {at}) "
                      "ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at, "
                      "renewed_at = excluded.renewed_at", [holder, host, pid, *end_params, *at_params])
        return bool(row and row[0])

    @guarded
    def lease_expiry(self, holder: str) -> str | None:
        """When `holder`'s lease ends (or ended); None when it never held one."""
        row = self._run("SELECT expires_at FROM leases WHERE holder = ?", [holder]).fetchone()
        return row[0] if row else None

    @guarded
    def lease_live(self, holder: str, now: str) -> bool | None:
        """Whether `holder`'s lease runs now on the lease clock; None when it never held one."""
        at, params = self._lease_now(now)
        row = self._run(f"SELECT expires_at > {at} FROM leases WHERE holder = ?", [*params, holder]).fetchone()
        return None if row is None else bool(row[0])

    @guarded
    def running_leases(self, host: str, now: str) -> list[tuple[str, int]]:
        """(holder, pid) of each lease held by a server on `host` that runs now."""
        at, params = self._lease_now(now)
        return [(r[0], r[1]) for r in self._run(f"SELECT holder, pid FROM leases WHERE host = ? AND expires_at > {at}",
                                                [host, *params]).fetchall()]

    @guarded
    def next_lease_end(self, holder: str, now: str) -> float | None:
        """Seconds until the first running lease of another holder than `holder` ends (its work
        can then be taken over), or None when no other lease runs."""
        at, params = self._lease_now(now)
        row = self._run(f"SELECT min(expires_at), {at} FROM leases WHERE holder <> ? AND expires_at > {at}",
                        [*params, holder, *params]).fetchone()
        return None if row[0] is None else lease_seconds(row[0], row[1])

    @guarded
    def take_incident(self, incident: str, holder: str, now: str) -> int | None:
        """Take (or keep) the lease on `incident`'s server-owned work (its timers) for `holder`,
        whose own server lease then decides for it: its epoch (the fencing token every write
        under it carries, see `append`), or None while another holder's server lease runs.
        Taking it from a holder whose lease ran out moves the epoch on: that holder's writes are
        refused from then on, whenever it wakes."""
        at, params = self._lease_now(now)
        free = (f"SELECT holder, epoch, EXISTS (SELECT 1 FROM leases l WHERE l.holder = i.holder "
                f"AND l.expires_at > {at}) FROM incident_leases i WHERE incident = ?")
        row = self._run(free, [*params, incident]).fetchone()
        if row is not None and (row[0] == holder or row[2]):
            return row[1] if row[0] == holder else None
        with self._write():  # compare and set: a server taking it at the same moment wins once
            if row is None:
                taken = self._run(f"INSERT INTO incident_leases (incident, holder, epoch, taken_at) "
                                  f"VALUES (?, ?, 1, {at}) ON CONFLICT (incident) DO NOTHING",
                                  [incident, holder, *params]).rowcount
                return 1 if taken == 1 else None
            taken = self._run(f"UPDATE incident_leases SET holder = ?, epoch = epoch + 1, taken_at = {at} "
                              "WHERE incident = ? AND holder = ? AND epoch = ?",
                              [holder, *params, incident, row[0], row[1]]).rowcount
            return row[1] + 1 if taken == 1 else None

    @guarded
    def release_incident(self, incident: str, holder: str) -> None:
        """Let go of `incident`'s timers (a face no longer ticks it): its row names nobody and keeps
        its epoch, so whoever ticks it next takes it at once, and a write fenced by the epoch
        `holder` held is refused."""
        with self._write():
            self._run("UPDATE incident_leases SET holder = '' WHERE incident = ? AND holder = ?", [incident, holder])

    @guarded
    def incident_holder(self, incident: str, now: str) -> tuple[str, str, int] | None:
        """(holder, host, pid) of the running lease that holds `incident`'s timers, or None when
        no running lease does (they are free to take)."""
        at, params = self._lease_now(now)
        row = self._run("SELECT i.holder, l.host, l.pid FROM incident_leases i JOIN leases l ON l.holder = i.holder "
                        f"WHERE i.incident = ? AND l.expires_at > {at}", [incident, *params]).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def may_lease(self) -> bool:
        """Whether this connection may hold leases (PostgreSQL: a role granted `--grant-server`)."""
        return True

    @guarded
    def prune_incident_leases(self, before: str) -> int:
        """Forget the incident leases of incidents resolved before `before` (an ISO time) and done
        with (no follow-up phase, or it is closed): nobody ticks them any more (a row forgotten is
        made again by whoever takes it). The number of rows removed."""
        with self._write():
            return self._run("DELETE FROM incident_leases WHERE incident IN (SELECT id FROM incidents "
                             "WHERE status IN ('resolved', 'closed') AND resolved_at < ?)", [before]).rowcount

    def _check_fence(self, incident: str, fence: tuple[str, int]) -> None:
        """Inside the write it guards: FencedError unless `fence` (holder, epoch) still holds the
        incident's lease (the dialect may lock the row until the write commits)."""
        row = self._run(f"SELECT holder, epoch FROM incident_leases WHERE incident = ?{self.fence_lock}",
                        [incident]).fetchone()
        if row is None or (row[0], row[1]) != tuple(fence):
            now = f"{row[0]} (epoch {row[1]})" if row else "nobody"
            raise FencedError(f"incident {incident}: this runbook's lease on its timers (epoch {fence[1]}) was "
                              f"taken over by {now} while it stalled; the write was refused")

    fence_lock = ""  # SQL after the fence's SELECT (PostgreSQL: FOR SHARE, held to commit)
