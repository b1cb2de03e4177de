"""`runbook db migrate` and `runbook db check` on both backends, and what a user sees when the
database cannot be reached: one line, exit 7, no password."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from runbook.cli import cli


def rb(*args):
    return CliRunner().invoke(cli, list(args))


def test_check_and_migrate_report_the_schema_and_every_chain(store_location, backend, fixture_catalog):
    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.store import open_store

    store = open_store(store_location)
    engine = Engine(store, VirtualClock(), None, load([str(fixture_catalog / "playbooks")]))
    for _ in range(2):
        engine.note(engine.open("video-call-degraded", "ana").id, "ana", "looking")
    store.close()
    migrated = rb("--db", store_location, "db", "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert "(up to date)" in migrated.output and "schema version" in migrated.output
    checked = rb("--db", store_location, "db", "check", "--json")
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.output)
    assert report["ok"] and report["pending"] == [] and (report["checked"], report["broken"]) == (2, [])
    assert report["incidents"] == 2
    if backend == "postgres":
        assert report["settings"]["synchronous_commit"] == "on"
    sample = json.loads(rb("--db", store_location, "db", "check", "--json", "--sample", "1").output)
    assert (sample["checked"], sample["incidents"]) == (1, 2)
    text = rb("--db", store_location, "db", "check").output
    assert "chains: 2 of 2 incident(s) checked, 0 broken" in text


def test_grant_is_for_postgresql(tmp_path):
    result = rb("--db", str(tmp_path / "db.sqlite"), "db", "migrate", "--grant", "responders")
    assert result.exit_code == 2
    assert "--grant is for a PostgreSQL database" in result.output


@pytest.mark.parametrize("url", ["postgresql://ana:s3cret-pw@127.0.0.1:1/incidents",
                                 "postgresql://ana:s3cret-pw@no-such-host.invalid/incidents"])
def test_an_unreachable_database_is_one_line_exit_7_without_the_password(url):
    result = rb("--db", url, "db", "check")
    assert result.exit_code == 7, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: ")
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output


def test_check_never_creates_the_database_it_checks(tmp_path):
    missing = tmp_path / "mistyped.sqlite"
    result = rb("--db", str(missing), "db", "check")
    assert result.exit_code == 7 and "no incident database at" in result.output
    assert not missing.exists()


@pytest.mark.parametrize("url", ["postgresql://u:s3cret@[::1", "postgresql://u:s3cret@host:abc/db"])
def test_a_malformed_database_url_is_one_line_exit_7(url):
    result = rb("--db", url, "incident", "list")
    assert result.exit_code == 7 and "URL is malformed" in result.output
    assert "s3cret" not in result.output and "internal error" not in result.output
