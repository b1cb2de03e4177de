"""A PostgreSQL database appends through `runbook_append` as the migrations defined it, frozen
when each was written; the function holds the core's summary statement. A change to that
statement (or to what an append passes) without a migration that replaces the function would
leave every migrated database keeping its summaries the old way."""

from __future__ import annotations

import re

from runbook.store import postgres

DEFINES = re.compile(r"\s*CREATE (OR REPLACE )?FUNCTION runbook_append\(")


def newest_definition() -> tuple[int, str]:
    defined = [(number, statement) for number, _, statements in postgres.MIGRATIONS for statement in statements
               if DEFINES.match(statement)]
    assert defined, "no migration defines runbook_append"
    number, statement = defined[-1]
    return number, DEFINES.sub("CREATE FUNCTION runbook_append(", statement, count=1)


def test_the_newest_migration_defining_runbook_append_is_the_function_an_append_needs_today():
    number, applied = newest_definition()
    needed = DEFINES.sub("CREATE FUNCTION runbook_append(", postgres.APPEND_DEFINER, count=1)
    assert applied == needed, (
        f"runbook_append as migration {number} defined it is not postgres.APPEND_DEFINER: the summary statement "
        "or the append's parameters changed; add a migration that replaces the function (DROP FUNCTION first if "
        "its parameters changed) with APPEND_DEFINER frozen in store/postgres_migrations/")

