"""The tables, declared once for both dialects, and the steps migrations are made of.

Each dialect renders a table the same way: SQLite through sqlite-utils (`db[name].create`),
PostgreSQL as DDL text (`key` columns there compare byte by byte, as SQLite does, so ids and
ISO times sort alike on both). What exists on one dialect only stays with it: PostgreSQL's
change column (`events.pos`), its append function and its append-only trigger.

A migration is a numbered list of steps, applied in order; every schema step creates what is
missing and leaves what exists, so a table is always created as declared now: a new database
gets the newest shape at its first step and finds later steps done, and an old one gets only
what it lacks (`Column` adds a column added since, `Index` an index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

KEY = "key"  # text that is compared or sorted: ids, names, ISO times
TEXT = "text"  # free text and JSON
INT = "int"
BIGINT = "bigint"
SERIAL = "serial"  # an integer id the database hands out (the single primary key)


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, str]  # name -> one of the types above, in the order of the table
    pk: tuple[str, ...]
    not_null: tuple[str, ...] = ()
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # index name -> its columns


TABLES = {table.name: table for table in (
    Table("events", {"incident": KEY, "seq": INT, "ts": KEY, "actor": KEY, "type": KEY, "data": TEXT,
                     "prev_hash": KEY, "hash": KEY, "mac": KEY},
          pk=("incident", "seq"), not_null=("ts", "type", "hash"),
          # listing checks each summary against its log cheaply: "has a resolved event", "the opened event"
          indexes={"idx_events_type_incident": ("type", "incident")}),
    Table("incidents", {"id": KEY, "playbook": KEY, "title": TEXT, "service": KEY, "severity": KEY, "status": KEY,
                        "drill": INT, "opened_at": KEY, "acknowledged_at": KEY, "mitigated_at": KEY,
                        "resolved_at": KEY, "last_seq": INT, "updated_at": KEY, "last_mac": KEY},
          pk=("id",),
          # "newest first" listings sort on opened_at; without an index they scan and sort every row
          indexes={"idx_incidents_status_opened_at": ("status", "opened_at"),
                   "idx_incidents_playbook_opened_at": ("playbook", "opened_at"),
                   "idx_incidents_opened_at": ("opened_at",)}),
    Table("snapshots", {"incident": KEY, "playbook": KEY, "hash": KEY, "text": TEXT, "documents": TEXT},
          pk=("incident",)),
    Table("simulations", {"id": SERIAL, "drill": KEY, "playbook": KEY, "runs": INT, "seed": BIGINT,
                          "created_at": KEY, "summary": TEXT},
          pk=("id",), indexes={"idx_simulations_drill_created_at": ("drill", "created_at")}),
    Table("drill_schedule", {"drill": KEY, "last_scheduled": KEY, "last_outcome": KEY, "incident": KEY,
                             "updated_at": KEY},
          pk=("drill",)),
    # the alert ledger of `runbook serve`: one row per alert occurrence (fingerprint, start time)
    Table("alerts", {"fingerprint": KEY, "starts_at": KEY, "status": KEY, "ends_at": KEY, "alertname": KEY,
                     "labels": TEXT, "annotations": TEXT, "generator_url": TEXT, "receiver": KEY,
                     "first_seen": KEY, "last_seen": KEY, "deliveries": INT, "playbook": KEY, "symptom": KEY,
                     "incident": KEY, "outcome": KEY, "reason": TEXT, "owner": TEXT,
                     # the group of sibling alerts it belongs to (engine/intake.py sibling_key)
                     "sibling_key": KEY},
          pk=("fingerprint", "starts_at"), not_null=("status", "first_seen", "outcome"),
          indexes={"idx_alerts_last_seen": ("last_seen",), "idx_alerts_incident": ("incident",),
                   "idx_alerts_sibling_key": ("sibling_key",)}),
    # scheduled maintenance windows (`runbook maintenance`): shown on the public page; alerts of
    # their components below `page_at` are kept without opening an incident
    Table("maintenance", {"id": SERIAL, "title": TEXT, "body": TEXT, "components": TEXT, "starts_at": KEY,
                          "ends_at": KEY, "page_at": KEY, "created_by": KEY, "created_at": KEY,
                          "cancelled_at": KEY, "cancelled_by": KEY},
          pk=("id",), not_null=("title", "components", "starts_at", "ends_at", "created_at"),
          indexes={"idx_maintenance_ends_at": ("ends_at",)}),
    # subscribers to the public page's updates: email (confirmed by a link: double opt-in) or a
    # signed webhook; `components` a JSON list of component ids ([]: every component)
    Table("subscribers", {"id": SERIAL, "kind": KEY, "address": TEXT, "components": TEXT, "token": KEY,
                          "secret": TEXT, "created_at": KEY, "confirmed_at": KEY, "unsubscribed_at": KEY},
          pk=("id",), not_null=("kind", "address", "components", "token", "created_at"),
          indexes={"idx_subscribers_token": ("token",)}),
    # each public update (or confirmation) sent to each subscriber: attempts, the next try, done
    Table("deliveries", {"subscriber": INT, "message": KEY, "attempts": INT, "next_at": KEY, "delivered_at": KEY,
                         "error": TEXT, "created_at": KEY},
          pk=("subscriber", "message"), not_null=("attempts", "created_at"),
          indexes={"idx_deliveries_next_at": ("next_at",)}),
    # the folded state of each incident at its latest checkpoint (engine/checkpoint.py)
    # past incidents as words to search (a projection of each log, rebuilt from it: engine/learning.py);
    # the full-text index over `words` is the dialect's own (SQLite FTS5 `search_fts`, PostgreSQL tsvector)
    Table("search_docs", {"incident": KEY, "seq": INT, "playbook": KEY, "opened_at": KEY, "drill": INT,
                          "mitigated": INT, "words": TEXT, "fts_rowid": INT},
          pk=("incident",), not_null=("seq", "words"),
          indexes={"idx_search_docs_fts_rowid": ("fts_rowid",), "idx_search_docs_opened_at": ("opened_at",),
                   "idx_search_docs_playbook_opened_at": ("playbook", "opened_at")}),
    Table("checkpoints", {"incident": KEY, "seq": INT, "chain_hash": KEY, "body": TEXT, "digest": KEY, "mac": KEY},
          pk=("incident",), not_null=("seq", "chain_hash", "body", "digest")),
    # each server's lease on the work it owns (engine/owner.py): renewed while it runs; once
    # `expires_at` passes, any other server takes its work over
    Table("leases", {"holder": KEY, "host": KEY, "pid": INT, "expires_at": KEY, "renewed_at": KEY},
          pk=("holder",), not_null=("expires_at",)),
    # which server's lease holds each incident's timers (engine/owner.py IncidentLeases): that
    # server's lease decides; `epoch` moves on at each take-over and fences the writes of the one before
    Table("incident_leases", {"incident": KEY, "holder": KEY, "epoch": INT, "taken_at": KEY},
          pk=("incident",), not_null=("holder", "epoch")),
)}


class Create(NamedTuple):
    """Create a table as declared, with its indexes (when it does not exist)."""

    table: str


class Column(NamedTuple):
    """Add a declared column to a table made before it was declared (when it lacks it)."""

    table: str
    column: str


class Index(NamedTuple):
    """Create one of a table's declared indexes (when it does not exist)."""

    table: str
    name: str

