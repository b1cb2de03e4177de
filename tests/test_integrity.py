"""Tampering the record shows: deleted last events, an edited playbook snapshot, an edited event,
a fully recomputed chain (with a chain key); and every reader says so."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from runbook.store import GENESIS, event_hash


@pytest.fixture
def rb(fixture_catalog, fixture_env, tmp_path):
    env = {**fixture_env, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_USER": "ana", "XDG_CONFIG_HOME": str(tmp_path / "config")}  # the key's default place
    env.pop("RUNBOOK_CHAIN_KEY", None)

    def run(*args, expect=0):
        proc = subprocess.run([sys.executable, "-m", "runbook", *args], cwd=fixture_catalog, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == expect, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        return proc
    run.db = tmp_path / "db.sqlite"
    run.key = tmp_path / "config" / "runbook" / "chain.key"
    run.env = env
    return run


def opened(rb) -> str:
    iid = rb("incident", "open", "video-call-degraded").stdout.strip()
    rb("incident", "ack", iid)
    rb("incident", "note", iid, "first")
    rb("incident", "note", iid, "second")
    return iid


def sql(rb, statement, *params):
    with sqlite3.connect(rb.db) as conn:
        conn.execute(statement, params)


def test_an_intact_record_verifies(rb):
    iid = opened(rb)
    out = rb("incident", "verify", iid).stdout
    assert "hash chain intact" in out and "summary agrees" in out and "snapshot intact" in out


def test_deleting_the_last_events_is_seen_by_verify_show_list_and_export(rb):
    iid = opened(rb)
    sql(rb, "DELETE FROM events WHERE incident = ? AND seq = (SELECT max(seq) FROM events WHERE incident = ?)",
        iid, iid)
    out = rb("incident", "verify", iid, expect=1).stdout
    assert "events after" in out and "were deleted" in out
    shown = rb("incident", "show", iid)
    assert shown.stdout.startswith(f"WARNING: the log of {iid} does not verify")
    assert "were deleted" in shown.stderr
    assert json.loads(rb("incident", "show", iid, "--json").stdout)["integrity"]["ok"] is False
    listed = rb("incident", "list")
    assert "LOG ALTERED" in listed.stdout and iid in listed.stderr
    assert json.loads(rb("incident", "list", "--json").stdout)[0]["log_intact"] is False
    md = rb("incident", "export", iid).stdout
    assert md.startswith(f"> **WARNING: the log of {iid} does not verify")


def test_an_edited_snapshot_is_caught_and_its_edited_steps_never_run(rb):
    iid = opened(rb)
    with sqlite3.connect(rb.db) as conn:
        documents = json.loads(conn.execute("SELECT documents FROM snapshots WHERE incident = ?", [iid]).fetchone()[0])
        documents[0]["data"]["degradations"]["low-bitrate"]["set"]["payments.enabled"] = False
        conn.execute("UPDATE snapshots SET documents = ? WHERE incident = ?", [json.dumps(documents), iid])
    out = rb("incident", "verify", iid, expect=1).stdout
    assert "the documents the incident runs on do not match" in out
    refused = rb("incident", "degrade", iid, "low-bitrate", expect=5)
    assert "refused: the record of" in refused.stderr and "no flags are flipped" in refused.stderr
    assert not (rb.db.parent / "flags.json").exists() or "payments" not in (rb.db.parent / "flags.json").read_text()
    with sqlite3.connect(rb.db) as conn:
        conn.execute("UPDATE snapshots SET text = text || ' ' WHERE incident = ?", [iid])
    assert "its text does not match" in rb("incident", "verify", iid, expect=1).stdout


def test_an_edited_event_is_caught_by_show(rb):
    iid = opened(rb)
    sql(rb, "UPDATE events SET data = json_set(data, '$.text', 'rewritten') WHERE incident = ? AND type = 'note_added'"
        " AND seq = (SELECT min(seq) FROM events WHERE incident = ? AND type = 'note_added')", iid, iid)
    shown = rb("incident", "show", iid)
    assert "was altered: its content does not match its hash" in shown.stdout.splitlines()[0]


def recompute_chain(rb, iid):
    """What someone with write access and no key can do: rewrite a note and every hash after it."""
    with sqlite3.connect(rb.db) as conn:
        rows = conn.execute("SELECT seq, ts, actor, type, data FROM events WHERE incident = ? ORDER BY seq",
                            [iid]).fetchall()
        prev = GENESIS
        for seq, ts, actor, type_, data in rows:
            data = json.loads(data)
            if type_ == "note_added" and data["text"] == "first":
                data["text"] = "nothing to see"
            digest = event_hash(iid, seq, ts, actor, type_, data, prev)
            conn.execute("UPDATE events SET data = ?, prev_hash = ?, hash = ? WHERE incident = ? AND seq = ?",
                         [json.dumps(data, sort_keys=True), prev, digest, iid, seq])
            prev = digest


def test_a_fully_recomputed_chain_passes_without_a_key_and_fails_with_one(rb):
    plain = opened(rb)
    recompute_chain(rb, plain)
    assert "hash chain intact" in rb("incident", "verify", plain).stdout  # what the unkeyed chain cannot prove
    assert "created" in rb("incident", "verify", "--init-key").stdout
    assert oct(os.stat(rb.key).st_mode & 0o777) == "0o600"
    keyed = opened(rb)
    out = rb("incident", "verify", keyed).stdout
    assert "events signed with the chain key" in out
    recompute_chain(rb, keyed)
    out = rb("incident", "verify", keyed, expect=1).stdout
    assert "has a signature that does not match the chain key" in out
    again = rb("incident", "verify", "--init-key", expect=2)
    assert "a chain key already exists" in again.stderr


def test_a_chain_key_others_can_read_is_refused_with_one_line(rb):
    rb("incident", "verify", "--init-key")
    os.chmod(rb.key, 0o644)
    proc = rb("incident", "list", expect=2)
    assert proc.stderr.strip().count("\n") == 0 and "readable by others" in proc.stderr


def test_the_tui_view_says_the_log_was_altered(rb, fixture_catalog):
    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.store import Store
    from runbook.tui.gateway import EngineGateway

    iid = opened(rb)
    sql(rb, "DELETE FROM events WHERE incident = ? AND seq = (SELECT max(seq) FROM events WHERE incident = ?)",
        iid, iid)
    store = Store(str(rb.db), key=None)
    engine = Engine(store, VirtualClock(), None, load([str(fixture_catalog / "playbooks")]))
    try:
        view = EngineGateway(engine, engine.catalog).view(iid)
        assert "were deleted" in view.altered
    finally:
        store.close()
