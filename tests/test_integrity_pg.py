"""On the team database nothing decides from a record a responder can forge: the responder role
(`runbook db migrate --grant`) cannot write checkpoints, the incidents summary or the alert
ledger; a trigger refuses an event of an unknown type or one whose hash does not chain, whoever
inserts it; and an append whose connection dropped is settled by its request id, not recorded
twice when the command is run again. Against the real PostgreSQL, as the responder role."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg
import pytest

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.engine.events.base import RECORDS
from runbook.store import StoreError, open_store

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = {"playbook": "p", "hash": "h", "text": "t", "documents": []}
ROW = {"playbook": "p", "title": "T", "service": "s", "severity": "SEV2", "drill": False}


def opened(store, incident="INC-1"):
    return store.create_incident(incident, SNAPSHOT, ROW, [{"ts": "2026-01-01T00:00:00Z", "actor": "a",
                                                             "type": "opened", "data": {}}])


def note(n):
    return {"ts": "2026-01-01T00:01:00Z", "actor": "a", "type": "note_added", "data": {"text": f"n{n}"}}


@pytest.fixture
def team(pg_cluster):
    """(the owner's store, a function opening a store as the responder role or the server role, schema)."""
    url = pg_cluster.new_schema()
    stores = [open_store(url, key=None)]
    owner = stores[0]
    schema = owner.conn.execute("SELECT current_schema()").fetchone()[0]
    for kind in ("responder", "server"):
        owner.conn.execute(f"CREATE ROLE {kind}_{schema} LOGIN")
    owner.grant(f"responder_{schema}")
    owner.grant(f"server_{schema}", server=True)

    def as_role(kind="responder"):
        stores.append(open_store(pg_cluster.url_for_schema(schema, user=f"{kind}_{schema}"), key=None))
        return stores[-1]

    yield owner, as_role, schema
    for store in stores:
        store.close()


def test_the_trigger_knows_every_event_type_runbook_writes():
    """The newest migration that defines the trigger's function lists exactly the event types
    runbook writes (each earlier one, the registry of its day)."""
    import re

    from runbook.store.postgres import MIGRATIONS

    defining = [statement for _, _, statements in MIGRATIONS for statement in statements
                if "FUNCTION runbook_event_checked() RETURNS trigger" in statement]
    listed = [{t.strip().strip("'") for t in re.search(r"NOT IN \(([^)]*)\)", sql)[1].split(",")}
              for sql in defining]
    assert listed[-1] == set(RECORDS), "a new event type needs a migration that widens the trigger's list"
    assert all(types <= set(RECORDS) for types in listed)


def test_a_responder_cannot_write_checkpoints_summaries_or_the_alert_ledger(team):
    owner, as_role, _ = team
    responder = as_role()
    opened(responder)
    responder.append("INC-1", 1, [note(1)])  # appends still keep the summary (runbook_append runs as the owner)
    assert owner.incident("INC-1")["last_seq"] == 2
    owner.save_checkpoint("INC-1", 2, "h", "{}", "d", "")
    owner.conn.execute("INSERT INTO alerts (fingerprint, starts_at, status, first_seen, outcome) "
                       "VALUES ('f', 't', 'firing', 't', 'opened')")
    for sql in ("UPDATE checkpoints SET body = '{}'", "DELETE FROM checkpoints",
                "INSERT INTO checkpoints (incident, seq, chain_hash, body, digest) VALUES ('INC-2', 1, 'h', '{}', 'd')",
                "UPDATE incidents SET status = 'closed'", "DELETE FROM incidents",
                "UPDATE alerts SET outcome = 'resolved'", "DELETE FROM alerts"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            responder.conn.execute(sql)
    assert owner.incident("INC-1")["status"] == "open"
    responder.save_checkpoint("INC-1", 2, "forged", "{}", "d", "")  # not this role's to keep: nothing written
    assert owner.checkpoint("INC-1")["chain_hash"] == "h"
    server = as_role("server")  # the role `runbook serve` runs as keeps the ledger and checkpoints
    server.conn.execute("UPDATE alerts SET deliveries = 2")
    server.save_checkpoint("INC-1", 2, "h2", "{}", "d", "")
    assert owner.checkpoint("INC-1")["chain_hash"] == "h2"


def test_a_responders_engine_works_without_keeping_checkpoints(team, monkeypatch):
    """D3: the responder's runbook keeps no checkpoint (one it could write could say anything); it
    folds from the log, and its flags come back on resolve."""
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "3")
    owner, as_role, _ = team
    engine = Engine(as_role(), VirtualClock(), None, load([str(ROOT / "playbooks")]))
    incident = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    for n in range(6):
        engine.note(incident, "ana", f"n{n}")
    assert owner.checkpoint(incident) is None
    fresh = Engine(as_role(), VirtualClock(), None, engine.catalog)
    assert fresh.state(incident).last_seq == engine.state(incident).last_seq and fresh.integrity(incident).ok


@pytest.mark.parametrize("who", ["owner", "responder"])
def test_the_trigger_refuses_an_unknown_type_or_a_hash_that_does_not_chain(team, who):
    owner, as_role, _ = team
    store = owner if who == "owner" else as_role()
    opened(store)
    store.append("INC-1", 1, [note(1)])
    last = store.events("INC-1")[-1]
    insert = ("INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash) "
              "VALUES ('INC-1', %s, 't', 'a', %s, '{}', %s, %s)")
    with pytest.raises(psycopg.errors.CheckViolation, match="unknown event type made_up"):
        store.conn.execute(insert, [3, "made_up", last.hash, "a" * 64])
    with pytest.raises(psycopg.errors.CheckViolation, match="does not chain to event 2"):
        store.conn.execute(insert, [3, "note_added", "b" * 64, "a" * 64])
    with pytest.raises(psycopg.errors.CheckViolation, match="does not chain"):
        store.conn.execute(insert, [7, "note_added", last.hash, "a" * 64])  # a gap
    store.append("INC-1", 2, [note(2)])
    assert [e.seq for e in owner.events("INC-1")] == [1, 2, 3]


class Proxy:
    """A TCP relay to the PostgreSQL server that, once armed, lets the client's message through
    and then cuts the connection when the server's answer comes (the server has done the work,
    committed included, but the client never hears so)."""

    def __init__(self, port: int):
        self.target = port
        self.armed: bytes | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            seen = {"asked": False}
            threading.Thread(target=self._pipe, args=(client, server, seen, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, seen, False), daemon=True).start()

    def _pipe(self, source, sink, seen, upstream):
        try:
            while data := source.recv(65536):
                if upstream and self.armed and self.armed in data:
                    seen["asked"] = True
                elif not upstream and seen["asked"]:
                    self.armed, seen["asked"] = None, False
                    self.cut.set()
                    for sock in (source, sink):
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self):
        self.listener.close()


@pytest.fixture
def proxy(pg_cluster):
    relay = Proxy(pg_cluster.port)
    yield relay
    relay.close()


def test_an_append_whose_answer_is_lost_is_found_by_its_request_not_told_failed(pg_cluster, proxy):
    url = pg_cluster.new_schema().replace(f":{pg_cluster.port}/", f":{proxy.port}/")
    store = open_store(url, key=None)
    try:
        opened(store)
        proxy.armed = b"runbook_append"
        stored = store.append("INC-1", 1, [note(1)], request="0123456789abcdef.1")
        assert proxy.cut.is_set(), "the connection was not cut"
        assert [e.seq for e in stored] == [2]
        assert [e.seq for e in store.events("INC-1")] == [1, 2]
    finally:
        store.close()


def test_a_command_whose_commit_answer_is_lost_is_recorded_once(pg_cluster, proxy):
    url = pg_cluster.new_schema().replace(f":{pg_cluster.port}/", f":{proxy.port}/")
    engine = Engine(open_store(url, key=None), VirtualClock(), None, load([str(ROOT / "playbooks")]))
    try:
        incident = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
        engine._states.clear()  # read first, as a command in a new process does (the append then commits last)
        proxy.armed = b"COMMIT"
        engine.note(incident, "ana", "rolled back the deploy")
        assert proxy.cut.is_set()
        notes = [e for e in engine.store.events(incident) if e.type == "note_added"]
        assert len(notes) == 1
    finally:
        engine.store.close()


def test_a_lost_append_that_did_not_commit_says_so(pg_cluster, proxy):
    url = pg_cluster.new_schema().replace(f":{pg_cluster.port}/", f":{proxy.port}/")
    store = open_store(url, key=None)
    try:
        opened(store)
        proxy.armed = b"runbook_append"  # inside `writing` its answer comes before the commit
        lost = pytest.raises(StoreError, match=r"lost the connection .* the change to INC-1 was not recorded")
        with lost, store.writing("INC-1"):
            store.append("INC-1", 1, [note(1)], request="0123456789abcdef.1")
        assert [e.seq for e in store.events("INC-1")] == [1]
    finally:
        store.close()


def test_a_command_run_again_with_its_request_id_adds_nothing(pg_cluster, monkeypatch):
    from runbook.runtime import request_id

    url = pg_cluster.new_schema()
    catalog = load([str(ROOT / "playbooks")])
    first = Engine(open_store(url, key=None), VirtualClock(), None, catalog)
    again = Engine(open_store(url, key=None), VirtualClock(), None, catalog)
    try:
        incident = first.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
        monkeypatch.setenv("RUNBOOK_REQUEST", "00112233445566ff")
        first.requests = again.requests = request_id()
        again.retried = True
        first.note(incident, "ana", "paged the network team")  # told "lost the connection", yet recorded
        assert again.note(incident, "ana", "paged the network team") == []
        assert [e.data["text"] for e in again.state(incident).events if e.type == "note_added"] == [
            "paged the network team"]
        monkeypatch.setenv("RUNBOOK_REQUEST", "not-an-id")
        with pytest.raises(Exception, match="RUNBOOK_REQUEST must be the 16 hex digits"):
            request_id()
    finally:
        first.store.close()
        again.store.close()



def test_a_status_the_batch_has_no_event_for_is_refused(team):
    """D5 through the append function: a responder cannot say "closed" with a note."""
    owner, as_role, _ = team
    responder = as_role()
    opened(responder)
    forged = {**note(1), "summary": {"status": "closed"}}
    with pytest.raises(StoreError, match="status closed without the event that sets it"):
        responder.append("INC-1", 1, [forged])
    assert owner.incident("INC-1")["status"] == "open" and [e.seq for e in owner.events("INC-1")] == [1]
    closed = {"ts": "2026-01-01T00:02:00Z", "actor": "a", "type": "closed", "data": {}, "summary": {"status": "closed"}}
    responder.append("INC-1", 1, [closed])
    assert owner.incident("INC-1")["status"] == "closed"


def test_roles_granted_before_migration_5_lose_the_summary_and_checkpoints(pg_cluster):
    from runbook.store.postgres import MIGRATIONS

    url = pg_cluster.new_schema()
    owner = open_store(url, key=None, migrate=False)
    try:
        schema = owner.conn.execute("SELECT current_schema()").fetchone()[0]
        role = f"old_{schema}"
        with owner.conn.transaction():  # the schema as runbook left it before migration 5, and its old grants
            owner.conn.execute("CREATE TABLE migrations (id integer PRIMARY KEY, name text NOT NULL, "
                               "applied_at timestamptz NOT NULL DEFAULT now())")
            for number, name, statements in MIGRATIONS[:4]:
                for statement in statements:
                    owner.conn.execute(statement)
                owner.conn.execute("INSERT INTO migrations (id, name) VALUES (%s, %s)", [number, name])
            owner.conn.execute(f"CREATE ROLE {role} LOGIN")
            owner.conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            owner.conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
            owner.conn.execute(f"GRANT INSERT, UPDATE ON incidents, alerts, checkpoints TO {role}")
        assert owner.migrate() == [number for number, _, _ in MIGRATIONS[4:]]  # 5 and every one since
        old = open_store(pg_cluster.url_for_schema(schema, user=role), key=None)
        try:
            for sql in ("UPDATE incidents SET status = 'closed'", "UPDATE checkpoints SET body = '{}'"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    old.conn.execute(sql)
        finally:
            old.close()
    finally:
        owner.close()


def test_a_responder_opens_an_incident_for_an_alert_by_hand_through_the_ledgers_functions(team):
    """The responder role may not write the alert ledger, so `incident open --alert` failed for
    it; the row now moves through SECURITY DEFINER functions that check what it may become."""
    from runbook.engine.intake import Alert

    owner, as_role, _ = team
    catalog = load([str(ROOT / "tests" / "serve_catalog"), str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")])
    server = Engine(as_role("server"), VirtualClock(), None, catalog)
    server.receive_alerts([Alert("abc12a", "firing", "2026-11-30T10:00:00Z",
                                 {"alertname": "DiskAlmostFull", "instance": "db-3.example", "severity": "critical"},
                                 {"summary": "93% used"}),
                           Alert("abc12b", "firing", "2026-11-30T10:00:00Z", {"alertname": "Odd"})])
    responder = Engine(as_role(), VirtualClock(), None, catalog)
    with pytest.raises(Exception, match="host"):  # disk-full needs host (label instance): put back as it was
        responder.open("disk-full", "ana", alert="abc12b")
    state = responder.open("disk-full", "ana", alert="abc12a")
    rows = {r["fingerprint"]: r for r in owner.alerts()}
    assert (rows["abc12a"]["outcome"], rows["abc12a"]["incident"], rows["abc12a"]["owner"]) == (
        "opened", state.id, None)
    assert (rows["abc12b"]["outcome"], rows["abc12b"]["incident"], rows["abc12b"]["owner"]) == (
        "unmatched", None, None)
    # the functions move a row only as an incident opened by hand may: not an alert already taken,
    # not "opened" for an incident whose log does not link it, not back once its incident exists
    conn = responder.store.conn
    assert conn.execute("SELECT runbook_claim_alert('abc12a', '2026-11-30T10:00:00Z', 'disk-full', 'INC-NEW1', "
                        "'{}')").fetchone()[0] is False
    assert conn.execute("SELECT runbook_claim_alert('abc12b', '2026-11-30T10:00:00Z', 'disk-full', %s, '{}')",
                        [state.id]).fetchone()[0] is False  # an id an incident holds
    assert conn.execute("SELECT runbook_claim_alert('abc12b', '2026-11-30T10:00:00Z', 'disk-full', 'INC-NEW2', "
                        "'{}')").fetchone()[0] is True
    assert conn.execute("SELECT runbook_settle_by_hand('abc12b', '2026-11-30T10:00:00Z', 'INC-NEW2', 'opened', "
                        "'forged')").fetchone()[0] is False  # INC-NEW2's log (none) does not link it
    assert conn.execute("SELECT runbook_settle_by_hand('abc12a', '2026-11-30T10:00:00Z', %s, 'unmatched', NULL)",
                        [state.id]).fetchone()[0] is False
    assert conn.execute("SELECT runbook_settle_by_hand('abc12b', '2026-11-30T10:00:00Z', 'INC-NEW2', 'unmatched', "
                        "NULL)").fetchone()[0] is True
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE alerts SET outcome = 'unmatched'")


def by_hand_catalog():
    return load([str(ROOT / "tests" / "serve_catalog"), str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")])


DISK = ("firing", "2026-11-30T10:00:00Z", {"alertname": "DiskAlmostFull", "instance": "db-3.example",
                                           "severity": "critical"}, {"summary": "93% used"})


def run_out_by_hand_claims(owner_store) -> None:
    """The 60 s a claim made by hand is trusted have passed (on the database's clock, which its
    "until" is set and compared on)."""
    owner_store.conn.execute(
        "UPDATE alerts SET owner = jsonb_set(owner::jsonb, '{until}', to_jsonb(to_char((clock_timestamp() - "
        "interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')))::text "
        "WHERE owner::jsonb ? 'until'")


@pytest.mark.parametrize("forged", ["a live server on another host", "a live process on this host"])
def test_a_claim_by_hand_naming_a_live_owner_is_still_taken_over_and_opened(team, forged):
    """A responder calling runbook_claim_alert with a live server's owner record left the alert
    pending under that server's name: the server never took it, and no other server would while
    it lived. The claim is recorded as made by hand, trusted for 60 s on the database's clock
    whatever the caller passes, then taken over like any owner without a server lease."""
    import json
    import os

    from runbook.engine import owner as owners
    from runbook.engine.clock import iso
    from runbook.engine.intake import Alert
    from runbook.pluginapi import process_start

    owner, as_role, _ = team
    server = Engine(as_role("server"), VirtualClock(), None, by_hand_catalog())
    (kept,) = server.receive_alerts([Alert("abc12f", *DISK)])
    assert kept.outcome == "unmatched"
    if forged == "a live server on another host":
        live = {"host": "host-a", "pid": 4242, "start": "777", "token": "a70ce2"}
        server.store.renew_lease(owners.holder(live), "host-a", 4242, 3600, iso(server.clock.now()))
    else:
        live = {"host": owners.host(), "pid": os.getppid(), "start": process_start(os.getppid()), "token": "b0b0"}
    conn = as_role().conn
    assert conn.execute("SELECT runbook_claim_alert('abc12f', '2026-11-30T10:00:00Z', 'disk-full', 'INC-F0RGED', "
                        "%s)", [json.dumps({**live, "until": "9999-12-31T00:00:00.000000Z", "by_hand": False})]
                        ).fetchone()[0] is True
    (row,) = [r for r in owner.alerts() if r["fingerprint"] == "abc12f"]
    assert row["outcome"] == "pending" and row["owner"] == {**live, "until": row["owner"]["until"], "by_hand": True}
    trusted = conn.execute("SELECT extract(epoch FROM (%s::timestamptz - clock_timestamp()))",
                           [row["owner"]["until"]]).fetchone()[0]
    assert 50 < trusted <= 60  # the database's 60 s, not the caller's "until"
    (early,) = server.receive_alerts([Alert("abc12f", *DISK)])
    assert early.outcome == "repeat"  # within its 60 s the claim is left to whoever made it
    run_out_by_hand_claims(owner)
    (outcome,) = server.receive_alerts([Alert("abc12f", *DISK)])
    assert (outcome.outcome, outcome.incident) == ("opened", "INC-F0RGED")
    state = server.state("INC-F0RGED")
    assert state.playbook.id == "disk-full" and state.parameters == {"host": "db-3.example"}
    assert [e.record.fingerprint for e in state.events if e.type == "alert_received"] == ["abc12f"]
    (row,) = [r for r in owner.alerts() if r["fingerprint"] == "abc12f"]
    assert (row["outcome"], row["incident"], row["owner"]) == ("opened", "INC-F0RGED", None)


def test_settling_by_hand_leaves_a_servers_own_pending_claim_alone(team):
    """runbook_settle_by_hand could put back (or mark opened) any pending claim while its incident
    did not exist yet, the server's own included: it now settles only claims made by hand."""
    from runbook.engine import owner as owners
    from runbook.engine.clock import iso
    from runbook.engine.events.alerts import AlertReceived

    owner, as_role, _ = team
    server = Engine(as_role("server"), VirtualClock(), None, by_hand_catalog())
    mine = owners.claim()
    for fingerprint, incident in (("abc12s", "INC-SRV001"), ("abc12t", "INC-SRV002")):
        row = {"fingerprint": fingerprint, "starts_at": DISK[1], "status": "firing", "labels": DISK[2],
               "annotations": DISK[3], "playbook": "disk-full", "symptom": None, "alertname": "DiskAlmostFull",
               "reason": None}
        stored, _ = server.store.receive_alert(row, iso(server.clock.now()), lambda i=incident: i, mine)
        assert stored["outcome"] == "pending"
    responder = Engine(as_role(), VirtualClock(), None, by_hand_catalog())
    conn = responder.store.conn
    assert conn.execute("SELECT runbook_settle_by_hand('abc12s', %s, 'INC-SRV001', 'unmatched', 'undone')",
                        [DISK[1]]).fetchone()[0] is False
    # nor "opened" once the responder made the log link it
    responder.open("disk-full", "ana", labels=DISK[2], incident="INC-SRV002")
    responder.command("INC-SRV002", "ana", lambda s: [AlertReceived("abc12t", DISK[1], "DiskAlmostFull",
                                                                    dict(DISK[2]), "", "", True)])
    assert conn.execute("SELECT runbook_settle_by_hand('abc12t', %s, 'INC-SRV002', 'opened', 'forged')",
                        [DISK[1]]).fetchone()[0] is False
    rows = {r["fingerprint"]: r for r in owner.alerts()}
    assert [(rows[f]["outcome"], rows[f]["owner"]) for f in ("abc12s", "abc12t")] == [("pending", mine)] * 2
    owners.release(mine)
