"""Tampering the record shows: deleted last events, an edited playbook snapshot, an edited event,
a fully recomputed chain (with a chain key); and every reader says so."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from runbook.service import EngineService
from runbook.store import GENESIS, event_hash


@pytest.fixture
def rb(rb, tmp_path):
    rb.env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # the key's default place
    rb.env.pop("RUNBOOK_CHAIN_KEY", None)
    rb.key = tmp_path / "config" / "runbook" / "chain.key"
    return rb


def opened(rb) -> str:
    iid = rb.run("incident", "open", "video-call-degraded").stdout.strip()
    rb.run("incident", "ack", iid)
    rb.run("incident", "note", iid, "first")
    rb.run("incident", "note", iid, "second")
    return iid


def sql(rb, statement, *params):
    with sqlite3.connect(rb.db) as conn:
        conn.execute(statement, params)


def test_an_intact_record_verifies(rb):
    iid = opened(rb)
    out = rb.run("incident", "verify", iid).stdout
    assert "hash chain intact" in out and "summary agrees" in out and "snapshot intact" in out


def test_deleting_the_last_events_is_seen_by_verify_show_list_and_export(rb):
    iid = opened(rb)
    sql(rb, "DELETE FROM events WHERE incident = ? AND seq = (SELECT max(seq) FROM events WHERE incident = ?)",
        iid, iid)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "events after" in out and "were deleted" in out
    shown = rb.run("incident", "show", iid)
    assert shown.stdout.startswith(f"WARNING: the log of {iid} does not verify")
    assert "were deleted" in shown.stderr
    assert json.loads(rb.run("incident", "show", iid, "--json").stdout)["integrity"]["ok"] is False
    listed = rb.run("incident", "list")
    assert "LOG ALTERED" in listed.stdout and iid in listed.stderr
    assert json.loads(rb.run("incident", "list", "--json").stdout)[0]["log_intact"] is False
    md = rb.run("incident", "export", iid).stdout
    assert md.startswith(f"> **WARNING: the log of {iid} does not verify")


def test_an_edited_snapshot_is_caught_and_its_edited_steps_never_run(rb):
    iid = opened(rb)
    with sqlite3.connect(rb.db) as conn:
        documents = json.loads(conn.execute("SELECT documents FROM snapshots WHERE incident = ?", [iid]).fetchone()[0])
        documents[0]["data"]["degradations"]["low-bitrate"]["set"]["payments.enabled"] = False
        conn.execute("UPDATE snapshots SET documents = ? WHERE incident = ?", [json.dumps(documents), iid])
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "the documents the incident runs on do not match" in out
    refused = rb.run("incident", "degrade", iid, "low-bitrate", expect=5)
    assert "refused: the record of" in refused.stderr and "no flags are flipped" in refused.stderr
    assert not (rb.db.parent / "flags.json").exists() or "payments" not in (rb.db.parent / "flags.json").read_text()
    with sqlite3.connect(rb.db) as conn:
        conn.execute("UPDATE snapshots SET text = text || ' ' WHERE incident = ?", [iid])
    assert "its text does not match" in rb.run("incident", "verify", iid, expect=1).stdout


def test_an_edited_event_is_caught_by_show(rb):
    iid = opened(rb)
    sql(rb, "UPDATE events SET data = json_set(data, '$.text', 'rewritten') WHERE incident = ? AND type = 'note_added'"
        " AND seq = (SELECT min(seq) FROM events WHERE incident = ? AND type = 'note_added')", iid, iid)
    shown = rb.run("incident", "show", iid)
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
    assert "hash chain intact" in rb.run("incident", "verify", plain).stdout  # what the unkeyed chain cannot prove
    assert "created" in rb.run("incident", "verify", "--init-key").stdout
    assert oct(os.stat(rb.key).st_mode & 0o777) == "0o600"
    keyed = opened(rb)
    out = rb.run("incident", "verify", keyed).stdout
    assert "events signed with the chain key" in out
    recompute_chain(rb, keyed)
    out = rb.run("incident", "verify", keyed, expect=1).stdout
    assert "has a signature that does not match the chain key" in out
    again = rb.run("incident", "verify", "--init-key", expect=2)
    assert "a chain key already exists" in again.stderr


def test_a_chain_key_others_can_read_is_refused_with_one_line(rb):
    rb.run("incident", "verify", "--init-key")
    os.chmod(rb.key, 0o644)
    proc = rb.run("incident", "list", expect=2)
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
        view = EngineGateway(EngineService(engine), engine.catalog).view(iid)
        assert "were deleted" in view.altered
    finally:
        store.close()


# the adversarial review ------------------------------------------------------------------------

def rechain(rb, iid, edit=lambda seq, type_, data: data, strip=True, ts=None):
    """Rewrite the whole chain as someone without the key can: `edit` each event's data, recompute
    every hash with store.event_hash, and (strip) set every signature to NULL."""
    with sqlite3.connect(rb.db) as conn:
        rows = conn.execute("SELECT seq, ts, actor, type, data FROM events WHERE incident = ? ORDER BY seq",
                            [iid]).fetchall()
        prev = GENESIS
        for seq, when, actor, type_, data in rows:
            data = edit(seq, type_, json.loads(data))
            when = ts(when) if ts else when
            digest = event_hash(iid, seq, when, actor, type_, data, prev)
            conn.execute("UPDATE events SET ts = ?, data = ?, prev_hash = ?, hash = ?" +
                         (", mac = NULL" if strip else "") + " WHERE incident = ? AND seq = ?",
                         [when, json.dumps(data, sort_keys=True), prev, digest, iid, seq])
            prev = digest


def test_stripped_signatures_fail_with_the_key_and_the_edited_steps_never_run(rb, tmp_path):
    rb.run("incident", "verify", "--init-key")
    assert "created " in rb.key.read_text().splitlines()[1]  # the key says when it was created
    iid = opened(rb)
    rechain(rb, iid, lambda seq, type_, data: {**data, "text": "nothing to see"} if type_ == "note_added" else data)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "not signed although appended after the chain key was created" in out
    assert "the summary's signed anchor does not match the log's last event" in out
    sql(rb, "UPDATE incidents SET last_mac = NULL WHERE id = ?", iid)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "not signed although" in out and "signed anchor of the log's end is missing" in out

    # a rewritten snapshot (a step that runs `touch PWNED`), its hash updated in `opened`
    from runbook.engine.snapshot import documents_hash

    victim = opened(rb)
    pwned = tmp_path / "PWNED"
    with sqlite3.connect(rb.db) as conn:
        documents = json.loads(conn.execute("SELECT documents FROM snapshots WHERE incident = ?",
                                            [victim]).fetchone()[0])
        documents[0]["data"]["steps"][0]["run"] = ["touch", str(pwned)]
        conn.execute("UPDATE snapshots SET documents = ? WHERE incident = ?", [json.dumps(documents), victim])
    digest = documents_hash(documents)
    rechain(rb, victim, lambda seq, type_, data: {**data, "documents": digest} if type_ == "opened" else data)
    sql(rb, "UPDATE incidents SET last_mac = NULL WHERE id = ?", victim)
    out = rb.run("incident", "verify", victim, expect=1).stdout
    assert "not signed although appended after the chain key was created" in out
    refused = rb.run("incident", "step", victim, "--run", expect=5)
    assert "refused: the record of" in refused.stderr and "not signed although" in refused.stderr
    assert not pwned.exists()


def test_a_key_without_its_creation_time_counts_from_its_file_time(rb):
    iid = opened(rb)  # before any key: unsigned, fine
    rb.run("incident", "verify", "--init-key")
    rb.key.write_text(rb.key.read_text().splitlines()[0] + "\n")  # an old key file: one line
    os.utime(rb.key, (0, 0))  # created in 1970: every event since must be signed
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "not signed although appended after the chain key was created (1970-01-01" in out
    os.utime(rb.key, None)  # created now: the incident predates it
    assert "no event is signed (all appended before the chain key was created" in rb("incident", "verify", iid)


def truncate(rb, iid, keep, last_seq):
    sql(rb, "DELETE FROM events WHERE incident = ? AND seq > ?", iid, keep)
    sql(rb, "UPDATE incidents SET last_seq = ? WHERE id = ?", last_seq, iid)


def test_a_truncation_with_a_matching_summary_fails_with_the_key_and_a_null_count_always(rb):
    plain = opened(rb)
    truncate(rb, plain, 3, None)
    out = rb.run("incident", "verify", plain, expect=1).stdout
    assert "the summary has no event count" in out and "summary agrees" not in out
    assert "LOG ALTERED" in rb.run("incident", "list").stdout
    rb.run("incident", "verify", "--init-key")
    keyed = opened(rb)
    truncate(rb, keyed, 3, 3)
    out = rb.run("incident", "verify", keyed, expect=1).stdout
    assert "the summary's signed anchor does not match the log's last event (3)" in out


def test_every_summary_column_is_compared_and_a_hidden_incident_is_still_listed(rb):
    iid = opened(rb)
    sql(rb, "UPDATE incidents SET status = 'resolved', drill = 1, severity = 'SEV5', title = 'nothing' WHERE id = ?",
        iid)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    for column in ("status 'resolved' but the log says 'acknowledged'", "severity 'SEV5'", "drill 1 but the log says 0",
                   "title 'nothing'"):
        assert f"the summary says {column}" in out
    for args in (("incident", "list"), ("incident", "list", "--no-drills")):
        listed = rb.run(*args)
        assert iid in listed.stdout and "LOG ALTERED" in listed.stdout
        assert "status 'resolved' but the log says 'acknowledged'" in listed.stderr
    rows = json.loads(rb.run("incident", "list", "--json").stdout)
    assert rows[0]["id"] == iid and rows[0]["log_intact"] is False
    # what the engine acts on is the log: a summary edited behind its back is warned of, and stops nothing
    rb.run("incident", "degrade", iid, "low-bitrate")
    assert rb.run("incident", "show", iid).stdout.startswith(f"WARNING: the log of {iid} does not verify")


def test_an_incident_without_its_summary_row_is_listed_and_verifiable(rb):
    iid = opened(rb)
    sql(rb, "DELETE FROM incidents WHERE id = ?", iid)
    for args in (("incident", "list"), ("incident", "list", "--all")):
        assert f"{iid}: events without a summary row — record altered" in rb.run(*args).stdout
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert f"{iid}: missing from the summary" in out
    assert "missing from the summary" in rb.run("incident", "verify", iid[4:8], expect=1).stdout  # a prefix too
    shown = rb.run("incident", "show", iid)
    assert shown.stdout.startswith(f"WARNING: the log of {iid} does not verify: missing from the summary")


def test_a_missing_snapshot_is_one_line_and_report_leaves_it_out(rb):
    iid = opened(rb)
    other = opened(rb)
    sql(rb, "DELETE FROM snapshots WHERE incident = ?", iid)
    for args in (("incident", "show", iid), ("incident", "ack", iid), ("incident", "export", iid),
                 ("incident", "show", iid[4:9])):
        proc = rb.run(*args, expect=1)
        assert proc.stderr.strip().count("\n") == 0 and "the playbook snapshot it runs on is missing" in proc.stderr
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert f"{iid}: the playbook snapshot the incident runs on is missing" in out
    report = rb.run("report", "--format", "json")
    assert json.loads(report.stdout)["incidents"] == 1 and f"left out {iid}" in report.stderr
    assert other not in report.stderr


def test_no_events_or_no_opened_event_is_a_problem(rb):
    iid = opened(rb)
    sql(rb, "DELETE FROM events WHERE incident = ? AND seq = 1", iid)
    assert "the log does not start with the opened event" in rb.run("incident", "verify", iid, expect=1).stdout
    truncate(rb, iid, 0, 0)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "the log holds no events" in out and "hash chain intact" not in out
    for args in (("incident", "show", iid), ("incident", "export", iid)):
        proc = rb.run(*args, expect=1)
        assert "the log holds no events" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_an_unknown_event_type_and_every_broken_link_are_named(rb):
    iid = opened(rb)
    sql(rb, "UPDATE events SET type = 'bogus' WHERE incident = ? AND seq = 2", iid)
    sql(rb, "UPDATE events SET data = json_set(data, '$.text', 'x') WHERE incident = ? AND type = 'note_added'", iid)
    out = rb.run("incident", "verify", iid, expect=1).stdout.splitlines()
    assert any(line.startswith(f"{iid}: event 2: unknown event type 'bogus'") for line in out)
    assert sum("was altered: its content does not match its hash" in line for line in out) == 3  # 2 and both notes
    proc = rb.run("incident", "show", iid)  # what verifies, under the warning that names what does not
    assert proc.stdout.startswith(f"WARNING: the log of {iid} does not verify")
    assert "unknown event type 'bogus'" in proc.stdout.splitlines()[0]


def test_a_missing_key_named_by_the_environment_refuses_writes(rb):
    rb.env["RUNBOOK_CHAIN_KEY"] = str(rb.db.parent / "nowhere" / "chain.key")
    proc = rb.run("incident", "open", "video-call-degraded", expect=2)
    assert "named by RUNBOOK_CHAIN_KEY does not exist" in proc.stderr and proc.stderr.strip().count("\n") == 0
    rb.run("incident", "list")  # reading works
    assert "RUNBOOK_CHAIN_KEY" in rb.run("incident", "verify", "--help").stdout
    rb.run("incident", "verify", "--init-key")  # creates it where the variable says
    assert (rb.db.parent / "nowhere" / "chain.key").exists()
    iid = opened(rb)
    assert "events signed with the chain key" in rb.run("incident", "verify", iid).stdout


@pytest.mark.parametrize("head", ["INC-", "inc-", "DRL-", " INC- "])
def test_a_head_alone_names_no_incident(rb, head):
    opened(rb)
    assert "has nothing after" in rb.run("incident", "show", head, expect=2).stderr


def test_show_and_verify_on_a_checkpointed_incident(rb):
    """A checkpoint every 3 events (engine/checkpoint.py): show reads from it; an altered one is
    reported by show and by verify."""
    rb.env["RUNBOOK_CHECKPOINT_EVERY"] = "3"

    iid = rb.run("incident", "open", "video-call-degraded").stdout.strip()
    for n in range(7):
        rb.run("incident", "note", iid, f"note {n}")
    shown = json.loads(rb.run("incident", "show", iid, "--json").stdout)
    assert shown["integrity"] == {"ok": True, "problems": []}
    assert [e["data"]["text"] for e in shown["events"] if e["type"] == "note_added"] == [f"note {n}" for n in range(7)]
    assert "hash chain intact" in rb.run("incident", "verify", iid).stdout
    with sqlite3.connect(rb.db) as conn:
        assert conn.execute("SELECT seq FROM checkpoints WHERE incident = ?", [iid]).fetchone()[0] >= 6
        conn.execute("UPDATE checkpoints SET body = replace(body, '\"status\":\"open\"', '\"status\":\"closed\"')")
    warned = rb.run("incident", "show", iid)
    assert "WARNING" in warned.stderr and "checkpoint" in warned.stderr
    assert "checkpoint" in rb.run("incident", "verify", iid, expect=1).stdout


def insert_event(rb, iid, type_, data):
    """An event appended behind runbook's back with a hash that chains, as a newer runbook or a
    forger with database access could write it."""
    with sqlite3.connect(rb.db) as conn:
        seq, prev = conn.execute("SELECT seq, hash FROM events WHERE incident = ? ORDER BY seq DESC LIMIT 1",
                                 [iid]).fetchone()
        ts = "2030-01-01T00:00:00.000000Z"
        digest = event_hash(iid, seq + 1, ts, "mallory", type_, data, prev)
        conn.execute("INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [iid, seq + 1, ts, "mallory", type_, json.dumps(data), prev,
                                                         digest])
        conn.execute("UPDATE incidents SET last_seq = ? WHERE id = ?", [seq + 1, iid])


def test_an_event_of_an_unknown_type_leaves_the_degradations_restorable_from_what_verifies(rb):
    """D9: one inserted event of an unknown type made the incident unusable with its flags still
    degraded. Now every reader shows what verifies and says what was left out, and restore and
    resolve put the flags back (nothing else outside runbook is changed on that record's word)."""
    iid = opened(rb)
    rb.run("incident", "degrade", iid, "low-bitrate")
    flags = Path(rb.env["RUNBOOK_FLAGS"])
    assert json.loads(flags.read_text())["flags"]["rtc.video.max-bitrate-kbps"]["defaultVariant"] == "300"
    insert_event(rb, iid, "made_up", {"x": 1})
    rb.run("incident", "note", iid, "after it")
    shown = rb.run("incident", "show", iid)
    assert shown.stdout.startswith(f"WARNING: the log of {iid} does not verify")
    assert "unknown event type 'made_up'" in shown.stdout + shown.stderr
    assert "low-bitrate" in shown.stdout
    listed = rb.run("incident", "list")
    assert iid in listed.stdout
    refused = rb.run("incident", "degrade", iid, "audio-only", expect=5)
    assert "refused: the record of" in refused.stderr
    rb.run("incident", "restore", iid, "low-bitrate")
    assert json.loads(flags.read_text())["flags"]["rtc.video.max-bitrate-kbps"]["defaultVariant"] != "300"
    rb.run("incident", "resolve", iid)
    out = rb.run("incident", "verify", iid, expect=1).stdout
    assert "unknown event type 'made_up'" in out
    shown = rb.run("incident", "show", iid, "--json")
    assert json.loads(shown.stdout)["integrity"]["ok"] is False
