"""The incident store's guarantees on both backends (SQLite and PostgreSQL), and what only the
team database has: notifications, least privilege, one-line errors without the password."""

from __future__ import annotations

import threading

import pytest

from runbook.store import ConflictError, MemoryStore, StoreError, open_store

SNAPSHOT = {"playbook": "p", "hash": "h", "text": "t", "documents": []}
ROW = {"playbook": "p", "title": "T", "service": "s", "severity": "SEV2", "drill": False}


def opened(store, incident="INC-1", ts="2026-01-01T00:00:00Z"):
    return store.create_incident(incident, SNAPSHOT, ROW, [{"ts": ts, "actor": "a", "type": "opened", "data": {}}])


def note(n, ts="2026-01-01T00:01:00Z"):
    return {"ts": ts, "actor": "a", "type": "note_added", "data": {"text": f"n{n}"}}


def test_append_checks_the_expected_sequence_and_keeps_the_summary(open_test_store):
    store = open_test_store(key=None)
    opened(store)
    ack = {"ts": "2026-01-01T00:02:00Z", "actor": "a", "type": "acknowledged", "data": {},
           "summary": {"status": "acknowledged", "acknowledged_at": "2026-01-01T00:02:00Z"}}
    store.append("INC-1", 1, [ack])
    with pytest.raises(ConflictError):
        store.append("INC-1", 1, [note(1)])
    with pytest.raises(ConflictError):
        opened(store)
    row = store.incident("INC-1")
    assert (row["status"], row["acknowledged_at"], row["last_seq"]) == ("acknowledged", "2026-01-01T00:02:00Z", 2)
    assert [e.seq for e in store.events("INC-1")] == [1, 2]
    assert store.events("INC-1")[1].prev_hash == store.events("INC-1")[0].hash
    assert store.incidents(status="acknowledged")[0]["id"] == "INC-1"
    assert store.incidents(status="open") == []


def test_an_append_naming_the_event_it_read_is_refused_when_the_log_ends_elsewhere(open_test_store):
    """`after_hash` spares the store reading the log's end (PostgreSQL: one round trip); a log
    that moved on, or whose last event is not the one read, refuses the append and keeps nothing."""
    store = open_test_store(key=None)
    first = opened(store)[0]
    second = store.append("INC-1", 1, [note(1)], after_hash=first.hash)[0]
    assert second.prev_hash == first.hash
    with pytest.raises(ConflictError):
        store.append("INC-1", 1, [note(2)], after_hash=first.hash)  # the log is at event 2 now
    with pytest.raises(ConflictError):
        store.append("INC-1", 2, [note(2)], after_hash="0" * 64)  # event 2 is not the one read
    assert [e.seq for e in store.events("INC-1")] == [1, 2] and store.incident("INC-1")["last_seq"] == 2
    with pytest.raises(StoreError, match="does not exist"):
        store.append("INC-404", 1, [note(1)], after_hash=first.hash)


def test_a_keyed_chain_signs_each_event_and_anchors_the_summary(open_test_store):
    from runbook.store import anchor_mac, event_mac

    key = b"k" * 32
    store = open_test_store(key=key)
    stored = opened(store)
    assert stored[0].mac == event_mac(key, stored[0].hash)
    assert store.incident("INC-1")["last_mac"] == anchor_mac(key, "INC-1", 1, stored[0].hash)


def test_changes_feed_misses_nothing_while_writers_commit_concurrently(open_test_store):
    """A reader polling `changes_since` while four connections append to four incidents sees
    every event exactly once, even though positions are handed out before commit."""
    writers = [open_test_store(key=None) for _ in range(4)]
    reader = open_test_store(key=None)
    for i, store in enumerate(writers):
        opened(store, f"INC-{i}")
    cursor, seen, done = reader.change_cursor(), [], threading.Event()

    def write(i, store):
        for n in range(50):
            store.append(f"INC-{i}", n + 1, [note(n)])

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(writers)]
    for thread in threads:
        thread.start()
    while not done.is_set():
        done.set() if not any(t.is_alive() for t in threads) else None
        for position, incident, seq in reader.changes_since(cursor):
            assert position > cursor
            cursor = position
            seen.append((incident, seq))
    assert sorted(seen) == sorted((f"INC-{i}", seq) for i in range(4) for seq in range(2, 52))


def test_an_occurrence_is_claimed_once_by_concurrent_schedulers(open_test_store):
    stores = [open_test_store(key=None) for _ in range(6)]
    wins, start = [], threading.Barrier(len(stores))

    def claim(store):
        start.wait()
        wins.append(store.claim_occurrence("game-day", "2026-01-05T09:00:00+00:00", "fired", "now"))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert not stores[0].claim_occurrence("game-day", "2026-01-05T09:00:00+00:00", "fired", "now")
    assert stores[0].claim_occurrence("game-day", "2026-01-12T09:00:00+00:00", "fired", "now")
    stores[0].set_schedule_outcome("game-day", "opened", "DRL-1", "later")
    assert stores[1].schedule_state("game-day")["incident"] == "DRL-1"


def test_the_alert_ledger(open_test_store):
    store = open_test_store(key=None)
    alert = {"fingerprint": "f1", "starts_at": "2026-01-01T00:00:00Z", "status": "firing", "labels": {"a": "b"},
             "annotations": {}, "playbook": "p", "symptom": "s", "alertname": "X"}
    row, new = store.receive_alert(alert, "t1", lambda: "INC-A", {"pid": 1})
    assert (new, row["outcome"], row["incident"]) == (True, "pending", "INC-A")
    again, new = store.receive_alert(alert, "t2", lambda: "INC-B", None)
    assert (new, again["incident"]) == (False, "INC-A")
    assert store.alerts(fingerprint="f1")[0]["deliveries"] == 2
    assert store.take_over_alert("f1", alert["starts_at"], {"pid": 1}, {"pid": 2})
    assert not store.take_over_alert("f1", alert["starts_at"], {"pid": 1}, {"pid": 3})
    assert store.reserve_again("f1", alert["starts_at"], "INC-A", lambda: "INC-C") == "INC-C"
    store.settle_alert("f1", alert["starts_at"], "failed", "no playbook")
    assert store.alerts(outcome="failed")[0]["owner"] is None
    assert store.claim_alert_by_hand("f1", alert["starts_at"], "p", lambda: "INC-D", {"who": "ana"}) == "INC-D"
    (claimed,) = store.alerts(pending=True)
    assert claimed["incident"] == "INC-D" and claimed["owner"]["by_hand"] is True
    # once a server took the claim over, it is no longer the by-hand claim's to settle
    assert store.take_over_alert("f1", alert["starts_at"], claimed["owner"], {"pid": 4})
    assert not store.settle_alert_by_hand("f1", alert["starts_at"], "INC-D", "unmatched")
    assert store.alerts(pending=True)[0]["owner"] == {"pid": 4}


def test_simulations_are_kept(open_test_store):
    store = open_test_store(key=None)
    first = store.record_simulation("d", "p", 10, 1, "2026-01-01", {"n": 10})
    assert store.simulations("d") == [{"id": first, "drill": "d", "playbook": "p", "runs": 10, "seed": 1,
                                       "created_at": "2026-01-01", "summary": {"n": 10}}]


def test_memory_store_honours_the_filters_and_keeps_the_summary():
    store = MemoryStore()
    opened(store, "INC-1", "2026-01-01T00:00:00Z")
    opened(store, "INC-2", "2026-01-02T00:00:00Z")
    store.append("INC-2", 1, [{"ts": "t", "actor": "a", "type": "resolved", "data": {},
                               "summary": {"status": "resolved", "resolved_at": "t"}}])
    assert [r["id"] for r in store.incidents()] == ["INC-2", "INC-1"]
    assert [r["id"] for r in store.incidents(open_only=True)] == ["INC-1"]
    assert [r["id"] for r in store.incidents(status="resolved")] == ["INC-2"]
    assert store.incidents(drills=True) == []
    assert [r["id"] for r in store.incidents(since="2026-01-02")] == ["INC-2"]
    assert len(store.incidents(limit=1)) == 1
    assert store.changes_since(0)[-1] == (3, "INC-2", 2)


# --- PostgreSQL only ---------------------------------------------------------------------------

@pytest.fixture
def pg_store(pg_cluster):
    stores = []

    def make(url=None, **options):
        stores.append(open_store(url or pg_cluster.new_schema(), key=None, **options))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def test_notifications_wake_another_connection_and_a_lost_listener_catches_up(pg_store, pg_cluster):
    writer = pg_store()
    heard, event = [], threading.Event()

    def on_change(incident, seq):
        heard.append((incident, seq))
        event.set()

    listener = writer.listen(on_change)
    try:
        assert listener.connected.wait(5)
        opened(writer, "INC-N")
        # how soon is benchmarks' business: here, that it comes, and says what changed
        assert event.wait(30.0), "no notification"
        assert heard[-1] == ("INC-N", 1)
        event.clear()
        writer.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'runbook listen'")
        assert event.wait(5.0) and heard[-1] == (None, None), heard  # reconnected: read by sequence
    finally:
        listener.close()


def test_an_append_naming_the_event_it_read_is_one_round_trip(pg_store, tmp_path):
    """What the engine does with the state it holds: no read, no BEGIN or COMMIT of its own, one
    statement (the commit follows it in the same round trip). Counted in libpq's trace of the
    messages this connection sent: each Sync or simple Query is a round trip."""
    import psycopg

    store = pg_store()
    last = opened(store)[-1]
    for n in range(8):  # past psycopg's prepare threshold: one more round trip once, to prepare
        last = store.append("INC-1", last.seq, [note(n)], after_hash=last.hash, request=f"00112233445566ff.{n}")[-1]
    with open(tmp_path / "trace", "w+") as trace:
        store.conn.pgconn.trace(trace.fileno())
        store.conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        for n in range(8, 13):
            last = store.append("INC-1", last.seq, [note(n)], after_hash=last.hash)[-1]
        store.conn.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines() if line.startswith("F")]
    assert sum(1 for message in sent if message[2].split()[0] in ("Sync", "Query")) == 5
    assert store.incident("INC-1")["last_seq"] == last.seq == 14


def test_an_append_inside_writing_whose_log_ends_elsewhere_is_a_conflict(pg_store):
    """Inside `writing` the transaction a refused append aborts cannot read the log again: the
    refusal (the event trigger's, or the key's) is a conflict, and nothing of the batch stays."""
    store = pg_store()
    first = opened(store)[0]
    store.append("INC-1", 1, [note(1)])
    for seq, after in ((1, first.hash), (2, "0" * 64), (5, first.hash)):
        with pytest.raises(ConflictError), store.writing("INC-1"):
            store.append("INC-1", seq, [note(9)], after_hash=after)
    assert [e.seq for e in store.events("INC-1")] == [1, 2] and store.incident("INC-1")["last_seq"] == 2
    with pytest.raises(ConflictError, match="expected event 5, found 2"):
        store.append("INC-1", 5, [note(9)], after_hash=first.hash)  # outside one, the log's end is read


def test_responders_append_but_cannot_update_or_delete_events(pg_store, pg_cluster):
    import psycopg

    owner = pg_store()
    schema = owner.conn.execute("SELECT current_schema()").fetchone()[0]
    role = f"responder_{schema}"
    owner.conn.execute(f"CREATE ROLE {role} LOGIN")
    owner.grant(role)
    responder = pg_store(pg_cluster.url_for_schema(schema, user=role))
    opened(responder, "INC-R")
    responder.append("INC-R", 1, [note(1)])
    for sql in ("UPDATE events SET data = '{}'", "DELETE FROM events", "TRUNCATE events"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            responder.conn.execute(sql)
    # the owner too: a trigger refuses it
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        owner.conn.execute("UPDATE events SET data = '{}'")
    assert [e.seq for e in owner.events("INC-R")] == [1, 2]
    owner.conn.execute(f"CREATE SCHEMA {schema}_new")  # a new version's schema, not migrated yet
    owner.conn.execute(f"GRANT USAGE ON SCHEMA {schema}_new TO {role}")
    with pytest.raises(StoreError, match="ask the database owner to run `runbook db migrate`"):
        open_store(pg_cluster.url_for_schema(f"{schema}_new", user=role), key=None)


def test_migrations_apply_once_with_processes_starting_together(pg_cluster):
    from runbook.store.postgres import MIGRATIONS

    url = pg_cluster.new_schema()
    stores, start = [], threading.Barrier(4)

    def open_one():
        start.wait()
        stores.append(open_store(url, key=None))

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stores) == 4 and all(s.schema_version() == (MIGRATIONS[-1][0], []) for s in stores)
    for store in stores:
        store.close()


def test_an_unreachable_database_is_one_line_without_the_password():
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://ana:hunter2secret@127.0.0.1:1/runbook", key=None)
    message = str(caught.value)
    assert "hunter2secret" not in message and "\n" not in message
    assert message.startswith("cannot reach the incident database postgresql://ana@127.0.0.1:1/runbook")


def test_maintenance_windows_and_subscribers_on_both_backends(open_test_store):
    """The public page's records (`runbook maintenance`, subscribers and their deliveries) read and
    written the same way on SQLite and PostgreSQL."""
    store = open_test_store(key=None)
    window = store.add_maintenance({"title": "Upgrade", "body": "", "components": ["messaging"],
                                    "starts_at": "2026-01-01T02:00:00Z", "ends_at": "2026-01-01T04:00:00Z",
                                    "page_at": "SEV1", "created_by": "ana", "created_at": "2026-01-01T00:00:00Z"})
    (row,) = store.maintenance(ending_after="2026-01-01T03:00:00Z")
    assert (row["id"], row["components"], row["cancelled_at"]) == (window, ["messaging"], None)
    assert store.maintenance(ending_after="2026-01-01T05:00:00Z") == []
    assert store.cancel_maintenance(window, "bo", "2026-01-01T01:00:00Z")
    assert not store.cancel_maintenance(window, "bo", "2026-01-01T01:00:00Z")
    assert store.maintenance(ending_after="2026-01-01T03:00:00Z", cancelled=False) == []
    sub = store.add_subscriber({"kind": "email", "address": "sam@example.com", "components": [], "token": "t" * 24,
                                "created_at": "2026-01-01T00:00:00Z"})
    again = store.add_subscriber({"kind": "email", "address": "sam@example.com", "components": ["x"],
                                  "token": "u" * 24, "created_at": "2026-01-01T00:01:00Z"})
    assert again["id"] == sub["id"] and again["token"] == "t" * 24  # one subscription per address
    assert store.subscribers(active=True) == []
    assert store.set_subscriber(sub["id"], "confirmed_at", "2026-01-01T00:02:00Z")
    assert [s["address"] for s in store.subscribers(active=True)] == ["sam@example.com"]
    store.plan_deliveries([(sub["id"], "u1"), (sub["id"], "u1")], "2026-01-01T00:03:00Z")
    (due,) = store.due_deliveries("2026-01-01T00:03:00Z")
    store.settle_delivery(sub["id"], "u1", 1, None, "2026-01-01T00:03:01Z", "down")
    assert store.due_deliveries("2026-01-01T00:03:00Z") == []
    store.settle_delivery(sub["id"], "u1", 2, "2026-01-01T00:03:01Z", None, None)
    (done,) = store.deliveries(sub["id"])
    assert (due["message"], done["attempts"], done["delivered_at"]) == ("u1", 2, "2026-01-01T00:03:01Z")
