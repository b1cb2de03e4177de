"""A PostgreSQL database appends through `runbook_append` as the migrations defined it, frozen
when each was written (postgres_migrations/; a frozen file never changes). The newest definition
takes what an append passes (postgres.APPEND_CALL: SUMMARY_PARAMS after the log's end and the
events) and keeps the summary with the core's statement: a change to either without a migration
that replaces the function would leave every migrated database keeping its summaries the old way."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from runbook.store import postgres
from runbook.store.core import SUMMARY_PARAMS, summary_update_sql

DEFINES = re.compile(r"\s*CREATE (OR REPLACE )?FUNCTION runbook_append\(")


def newest_definition() -> tuple[int, str]:
    defined = [(number, statement) for number, _, statements in postgres.MIGRATIONS for statement in statements
               if DEFINES.match(statement)]
    assert defined, "no migration defines runbook_append"
    return defined[-1]


def test_the_newest_runbook_append_takes_what_an_append_passes_and_keeps_the_summary_as_the_core_does():
    number, sql = newest_definition()
    fix = (f"add a migration that replaces runbook_append (DROP FUNCTION first if its parameters changed), "
           f"frozen in store/postgres_migrations/; the newest is migration {number}'s")
    parameters = re.findall(r"\b(p_\w+) \w+", sql[:sql.index(")")])
    assert parameters == ["p_expected", "p_prev", "p_events", *(f"p_{name}" for name in SUMMARY_PARAMS)], fix
    assert postgres.APPEND_CALL.count("?") == len(parameters)
    assert summary_update_sql(lambda name: "p_" + name) in sql, fix
    assert f"pg_advisory_xact_lock({postgres.LOCK_CLASS}, {postgres.ORDER_LOCK})" in sql, fix
    assert f"pg_notify('{postgres.CHANNEL}', p_incident || ' ' || p_last_seq)" in sql, fix
    assert "SECURITY DEFINER SET search_path FROM CURRENT" in sql, fix  # the summary: not the caller's to write


# A migration's SQL is frozen once written: databases that applied it ran exactly that text. A
# change goes in a new migration; a new frozen file gets its digest here.
FROZEN = {
    "4_append.sql": "25d22a8af0d8714a74fc754df24071e4e25e509f7542fa5b3ad1cbb3295470f2",
    "5_append.sql": "38cc52538740c84fd735fc51b92cb2ac45e1c325dda1ef80b55571d85f5e7550",
    "5_event_check.sql": "4a94eb5b433460054b29fd2c354f9bc31c18e0b4db80e8cc620c6ef896acd3c6",
    "10_event_check.sql": "4ad22b1a3de7a81e160f1f7b00a84868f27e836bf39b2d04666c61fa1c992ee8",
    "13_alert_by_hand.sql": "e3f063b58e496f48417f8c0e60d52a36227ba3bb59d9fed2b515f041c269e3a1",
    "14_append.sql": "21114e7e5486324f4f06a9db56921096057ab49df3efb587c5e92b476b70056f",
    "15_event_check.sql": "4e83c2b3760120540ba93cebc66d3929f79dc0424eec239c0fbb3a92d06fb018",
    "16_event_check.sql": "b00ade4870721196be336c666fface65d669e5bb75565221fead19c4a26bd7c4",
    "18_alert_by_hand.sql": "643e5045e942a653a043b7f10e1ec11af1b3832a1db583fa80dcf88d39c1719e",
}


def test_frozen_migrations_never_change():
    folder = Path(postgres.__file__).parent / "postgres_migrations"
    found = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.glob("*.sql")}
    assert found == FROZEN, "a frozen migration changed (write a new migration instead), or a new one lacks its digest"
