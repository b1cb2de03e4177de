"""The incident stores: the only modules that speak SQL.

`open_store(location)` opens the store `location` names: a `postgresql://` URL (`RUNBOOK_DB`)
opens `PostgresStore` (psycopg 3, imported only then), anything else is a SQLite file (`Store`,
the embedded default). The engine depends on `IncidentStore` (interface.py), not on either, and
reads what a store can do beyond it from `store.features`.

Both share one SQL core (core.py, ledger.py) and one declaration of the tables (schema.py);
sqlite.py and postgres.py hold only what differs between the two databases.
"""

from __future__ import annotations

from runbook.store.common import (
    ALERT_COLUMNS,
    FIRST_COLUMNS,
    GENESIS,
    STATUS_RANK,
    ChainKey,
    ChainKeyError,
    ConflictError,
    FencedError,
    StoredEvent,
    StoreError,
    anchor_mac,
    chain_key_path,
    create_chain_key,
    default_path,
    event_hash,
    event_mac,
    is_postgres_url,
    lease_shift,
    load_chain_key,
    missing_chain_key,
    read_chain_key,
)
from runbook.store.interface import AlertLedger, IncidentStore, StoreFeatures
from runbook.store.memory import MemoryStore
from runbook.store.sqlite import BUSY_TIMEOUT_MS, MIGRATIONS, Store

__all__ = [
    "ALERT_COLUMNS",
    "BUSY_TIMEOUT_MS",
    "FIRST_COLUMNS",
    "GENESIS",
    "MIGRATIONS",
    "STATUS_RANK",
    "AlertLedger",
    "ChainKey",
    "ChainKeyError",
    "ConflictError",
    "FencedError",
    "IncidentStore",
    "MemoryStore",
    "Store",
    "StoreError",
    "StoreFeatures",
    "StoredEvent",
    "anchor_mac",
    "chain_key_path",
    "create_chain_key",
    "default_path",
    "event_hash",
    "event_mac",
    "is_postgres_url",
    "lease_shift",
    "load_chain_key",
    "missing_chain_key",
    "open_store",
    "read_chain_key",
]


def open_store(location: str | None = None, **options) -> IncidentStore:
    """The store at `location` (default: `RUNBOOK_DB`, else the SQLite file in the data directory)."""
    location = location or default_path()
    if is_postgres_url(location):
        from runbook.store.postgres import PostgresStore

        return PostgresStore(location, **options)
    return Store(location, **options)
