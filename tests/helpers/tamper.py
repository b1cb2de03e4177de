"""Editing a store behind runbook's back, for the tests of tamper evidence."""

from __future__ import annotations


def tamper(store, sql: str, params=()) -> None:
    """Edit a store's tables behind runbook's back, as someone with the file or the database owner's
    superuser could (`?` placeholders). On PostgreSQL the append-only trigger is bypassed for it
    with session_replication_role, which only a superuser may set: tamper evidence is then the chain's job."""
    if getattr(store, "location", "").startswith("postgresql://"):
        with store.conn.transaction():
            store.conn.execute("SET LOCAL session_replication_role = replica")
            store.conn.execute(sql.replace("?", "%s"), list(params))
    else:
        store.conn.execute(sql, params)
