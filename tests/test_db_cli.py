"""`runbook db migrate` and `runbook db check` on both backends, and what a user sees when the
database cannot be reached: one line, exit 7, no password."""

from __future__ import annotations

import json

import pytest


def said(rb, *args, expect: int = 0) -> str:
    """What `runbook ARGS` printed, output and errors (the shared `rb` fixture: a child process)."""
    proc = rb.run(*args, expect=expect)
    return proc.stdout + proc.stderr


def test_check_and_migrate_report_the_schema_and_every_chain(rb, store_location, backend, fixture_catalog):
    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.store import open_store

    store = open_store(store_location)
    engine = Engine(store, VirtualClock(), None, load([str(fixture_catalog / "playbooks")]))
    for _ in range(2):
        engine.note(engine.open("video-call-degraded", "ana").id, "ana", "looking")
    store.close()
    migrated = said(rb, "--db", store_location, "db", "migrate")
    assert "(up to date)" in migrated and "schema version" in migrated
    report = json.loads(rb("--db", store_location, "db", "check", "--json"))
    assert report["ok"] and report["pending"] == [] and (report["checked"], report["broken"]) == (2, [])
    assert report["incidents"] == 2
    if backend == "postgres":
        assert report["settings"]["synchronous_commit"] == "on"
    sample = json.loads(rb("--db", store_location, "db", "check", "--json", "--sample", "1"))
    assert (sample["checked"], sample["incidents"]) == (1, 2)
    text = rb("--db", store_location, "db", "check")
    assert "chains: 2 of 2 incident(s) checked, 0 broken" in text


def test_grant_is_for_postgresql(rb, tmp_path):
    assert "--grant is for a PostgreSQL database" in said(rb, "--db", str(tmp_path / "db.sqlite"), "db", "migrate",
                                                         "--grant", "responders", expect=2)


@pytest.mark.parametrize("url", ["postgresql://ana:s3cret-pw@127.0.0.1:1/incidents",
                                 "postgresql://ana:s3cret-pw@no-such-host.invalid/incidents"])
def test_an_unreachable_database_is_one_line_exit_7_without_the_password(rb, url):
    output = said(rb, "--db", url, "db", "check", expect=7)
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: ")
    assert "s3cret-pw" not in output


def test_check_never_creates_the_database_it_checks(rb, tmp_path):
    missing = tmp_path / "mistyped.sqlite"
    assert "no incident database at" in said(rb, "--db", str(missing), "db", "check", expect=7)
    assert not missing.exists()


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@[::1", "postgresql://u:s3cret@host:abc/db"])
def test_a_malformed_database_url_is_one_line_exit_7(rb, url):
    output = said(rb, "--db", url, "incident", "list", expect=7)
    assert "URL is malformed" in output
    assert "s3cret" not in output and "internal error" not in output
