"""The engine service (runbook/service.py): lanes that never wait on one another, the alert
intake's one transaction per delivery, and the broadcaster's fan-out to every live face."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.flags import video_on
from serve_helpers import DEADLINE, wait_for
from starlette.testclient import TestClient
from test_serve import AUTH, TOKEN, alert, catalog, payload

from runbook import broadcaster as broadcaster_module
from runbook.engine import Engine, VirtualClock
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.store import Store

ROOT = Path(__file__).parents[1]


class StuckMetrics:
    """A Prometheus that does not answer until the test lets it (a staged degradation's check)."""

    def __init__(self):
        self.asked, self.release = threading.Event(), threading.Event()

    @contextmanager
    def answering(self):
        """Let the query answer on the way out, whatever happened (the server waits for its lanes)."""
        try:
            yield
        finally:
            self.release.set()

    def query(self, promql, at=None, timeout=None):
        from runbook.metric_checks import Series

        self.asked.set()
        assert self.release.wait(30), "the test never let the query answer"
        return [Series({}, 0.001)]


def storm(deliveries: int, per_delivery: int, first: int = 0) -> list[dict]:
    """Deliveries of new QueueStuck alerts (each its own fingerprint and shard: one incident each)."""
    return [payload(*[alert("QueueStuck", fingerprint=f"{first + d * per_delivery + n:06x}", service="jobs",
                            shard=str(first + d * per_delivery + n))
                      for n in range(per_delivery)]) for d in range(deliveries)]


def test_an_alert_is_taken_while_a_tick_waits_on_a_stuck_prometheus(tmp_path):
    from runbook.plugins import PluginHost
    from runbook.settings import Settings

    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    from runbook.catalog.loader import load_catalog

    engine = Engine(Store(str(tmp_path / "db.sqlite"), key=None), VirtualClock(), host,
                    load_catalog([str(ROOT / "playbooks"), str(Path(__file__).parent / "serve_catalog")]))
    prometheus = StuckMetrics()
    engine.metrics_source = prometheus
    incident = engine.open("video-call-degraded", "ana").id
    engine.degrade(incident, "ana", "audio-only")  # staged: its checks query Prometheus
    engine.clock.advance(30)
    service = EngineService(engine)
    try:
        with TestClient(build_app(service, ServeConfig(TOKEN, tick_every=0))) as client, prometheus.answering():
            ticking = service.ticks.submit(lambda ticks: ticks.tick(incident))
            assert prometheus.asked.wait(30)  # the tick is inside the query now, and stays there
            answers = []
            body = json.dumps(payload(alert("QueueStuck", fingerprint="5107", service="jobs")))
            posting = threading.Thread(target=lambda: answers.append(client.post("/alertmanager", content=body,
                                                                                   headers=AUTH)))
            posting.start()
            posting.join(30)  # a generous bound that only ends a hang: behind the tick it never comes
            assert answers, "the alert waited behind the tick"
            (answer,) = answers
            assert answer.status_code == 200
            (taken,) = answer.json()["outcomes"]
            assert taken["outcome"] == "pending" and taken["incident"]
            with Store(str(tmp_path / "db.sqlite"), key=None) as elsewhere:  # durable: another connection sees it
                assert [(r["fingerprint"], r["incident"]) for r in elsewhere.alerts()] == [("5107", taken["incident"])]
            assert client.get("/api/alerts", headers=AUTH).json()[0]["fingerprint"] == "5107"  # reads answer too
            assert not ticking.done()
            prometheus.release.set()
            ticking.result(30)
            service.ticks.call(lambda ticks: None)  # the incident is opened after the tick
            assert engine.alerts()[0]["outcome"] == "opened"
            assert engine.state(taken["incident"]).playbook.id == "queue-stuck"
    finally:
        engine.store.close()


def test_a_delivery_is_stored_in_one_transaction_all_or_nothing(open_test_store):
    rows = [{"fingerprint": f"{n:04x}", "starts_at": "2026-11-30T10:00:00Z", "status": "firing",
             "labels": {"alertname": "X"}, "alertname": "X", "playbook": "queue-stuck" if n % 2 else None}
            for n in range(100)]
    store = open_test_store(key=None)
    draws = iter(range(10_000))

    def broken_draw():
        number = next(draws)
        if number == 30:  # the 61st alert cannot get an incident id: the whole delivery fails
            raise sqlite3.OperationalError("disk I/O error")
        return f"INC-{number:06X}"
    with pytest.raises(Exception, match="disk I/O error"):
        store.receive_alerts(rows, "2026-11-30T10:00:01Z", broken_draw, None)
    assert store.alerts() == []  # nothing of it: the sender retries the whole delivery
    stored = store.receive_alerts(rows, "2026-11-30T10:00:02Z", lambda: f"INC-{next(draws):06X}", None)
    assert [new for _, new in stored] == [True] * 100
    assert len(store.alerts()) == 100


def test_an_alert_storm_is_durable_when_answered_one_commit_per_delivery(tmp_path):
    """Deliveries answered while the ticks lane is held: every alert is in the ledger (seen on
    another connection) by its answer, each delivery one commit; the incidents open after."""
    path = str(tmp_path / "db.sqlite")
    engine = on_file(path)
    commits = []
    engine.store.conn.set_trace_callback(lambda sql: sql.strip().upper() == "COMMIT" and commits.append(sql))
    service = EngineService(engine)
    held = StuckMetrics()  # the ticks lane waits on it as on a check that does not answer
    try:
        with TestClient(build_app(service, ServeConfig(TOKEN, tick_every=0))) as client, held.answering():
            service.ticks.submit(lambda ticks: held.query("up"))
            deliveries = storm(10, 50)
            with Store(path, key=None) as elsewhere:
                for n, body in enumerate(deliveries):
                    answer = client.post("/alertmanager", content=json.dumps(body), headers=AUTH)
                    assert answer.status_code == 200
                    assert {o["outcome"] for o in answer.json()["outcomes"]} == {"pending"}
                    assert len(elsewhere.alerts()) == 50 * (n + 1)
            assert len(commits) == len(deliveries)
            # a timer pass asked for now runs after one portion of the backlog, not after all of it
            seen = service.ticks.submit(lambda ticks: service.backlog.pending())
            held.release.set()
            assert 0 < seen.result(DEADLINE) <= 500 - service.backlog.PORTION
            with Store(path, key=None) as elsewhere:
                wait_for(lambda: {r["outcome"] for r in elsewhere.alerts()} == {"opened"}, "every incident open")
                assert len(elsewhere.incidents()) == 500
            assert service.backlog.pending() == 0
    finally:
        engine.store.close()


def on_file(path: str) -> Engine:
    """An engine on the SQLite file `path`, unsigned, on a virtual clock: one process of several."""
    return Engine(Store(path, key=None), VirtualClock(), None, catalog())


def test_the_broadcaster_reads_each_change_once_and_fans_it_out_to_every_subscriber(tmp_path, monkeypatch):
    path = str(tmp_path / "db.sqlite")
    engine = on_file(path)
    incident = engine.open("queue-stuck", "ana").id
    elsewhere = on_file(path)  # another process, say
    reads = []
    real = broadcaster_module.changes_after
    monkeypatch.setattr(broadcaster_module, "changes_after", lambda *a, **k: reads.append(a[1]) or real(*a, **k))
    service = EngineService(engine)
    told: list = []
    heard = threading.Event()

    def tui(changes):
        told.extend(changes)
        heard.set()

    async def viewers():
        queues = [service.broadcaster.queue() for _ in range(100)]
        service.broadcaster.subscribe(tui)
        assert await asyncio.to_thread(service.broadcaster.listening.wait, 30)
        gone = queues.pop()
        service.broadcaster.drop(gone)
        await asyncio.to_thread(elsewhere.note, incident, "bo", "seen by every viewer")
        got = [await asyncio.wait_for(queue.get(), 30) for queue in queues]
        return got, gone
    try:
        got, gone = asyncio.run(viewers())
        assert heard.wait(30)
        lines = {tuple(change.line for change in batch.changes) for batch in got}
        assert lines == {(f"{incident} · bo: note: seen by every viewer",)}  # every viewer, the same change
        assert [change.line for change in told] == [f"{incident} · bo: note: seen by every viewer"]
        assert gone.empty()  # dropped: told nothing more
        assert len(reads) == 2  # described once for 100 subscribers (then: nothing more after it)
        assert service.broadcaster.subscribers() == 100
    finally:
        service.close()
        elsewhere.store.close()
        engine.store.close()


def test_changes_are_described_from_the_log_as_stored_without_folding_any_incident(tmp_path):
    path = str(tmp_path / "db.sqlite")
    engine = on_file(path)
    reader = on_file(path)  # the reads lane's, say
    try:
        looked_at = engine.open("queue-stuck", "ana").id
        reader.state(looked_at)  # a page being read
        new = engine.open("queue-stuck", "bo").id
        engine.note(new, "bo", "first look")
        described = broadcaster_module.changes_after(reader, 0)
        assert {change.incident for change in described} == {looked_at, new}
        assert described[-1].line == f"{new} · bo: note: first look"
        assert set(reader._states) == {looked_at}  # nothing folded for it (a storm's incidents neither)
    finally:
        engine.store.close()
        reader.store.close()


@pytest.mark.parametrize("signed", [False, True])
def test_a_change_that_does_not_verify_is_named_not_described(tmp_path, signed):
    path = str(tmp_path / "db.sqlite")
    key = b"k" * 32 if signed else None
    engine = Engine(Store(path, key=key, key_created="2000-01-01T00:00:00Z" if signed else None), VirtualClock(),
                    None, catalog())
    try:
        incident = engine.open("queue-stuck", "ana").id
        seq = engine.note(incident, "ana", "as said")[-1].seq
        with sqlite3.connect(path) as conn:  # altered behind runbook's back
            conn.execute("UPDATE events SET data = ? WHERE incident = ? AND seq = ?",
                         ['{"text": "as forged"}', incident, seq])
            if signed:  # its hash recomputed too, as a forger without the chain key can: the signature fails
                from runbook.store import event_hash

                ts, actor, prev = conn.execute("SELECT ts, actor, prev_hash FROM events WHERE incident = ? AND seq = ?",
                                               [incident, seq]).fetchone()
                conn.execute("UPDATE events SET hash = ? WHERE incident = ? AND seq = ?",
                             [event_hash(incident, seq, ts, actor, "note_added", {"text": "as forged"}, prev),
                              incident, seq])
        line = broadcaster_module.changes_after(engine, 0)[-1].line
        assert line == f"{incident}: event {seq} does not verify (runbook incident verify {incident})"
        assert "forged" not in line
    finally:
        engine.store.close()


def test_the_broadcaster_passes_over_changes_nobody_is_subscribed_to_without_describing_them(tmp_path, monkeypatch):
    path = str(tmp_path / "db.sqlite")
    engine = on_file(path)
    incident = engine.open("queue-stuck", "ana").id
    described = []
    real = broadcaster_module.changes_after
    monkeypatch.setattr(broadcaster_module, "changes_after", lambda *a, **k: described.append(a[1]) or real(*a, **k))
    service = EngineService(engine)
    broadcaster = service.broadcaster
    try:
        broadcaster.cursor = engine.change_cursor()  # as its watcher starts (driven by hand here)
        engine.note(incident, "bo", "nobody watching")
        assert broadcaster._publish(service.reads) == 0 and described == []
        assert broadcaster.cursor == engine.change_cursor()  # passed over
        told: list = []
        broadcaster._callbacks.append(told.extend)  # a subscriber, without starting the watcher thread
        engine.note(incident, "bo", "somebody watching")
        assert broadcaster._publish(service.reads) == 1
        assert [change.line for change in told] == [f"{incident} · bo: note: somebody watching"]
        assert service.reads.call(lambda reader: incident not in reader._states)  # described, not kept
    finally:
        service.close()
        engine.store.close()


def test_a_burst_goes_out_to_many_viewers_less_often():
    from runbook.broadcaster import Broadcaster

    class Counted(Broadcaster):
        def __init__(self, viewers):
            self.viewers = viewers

        def queues(self):
            return self.viewers
    assert Counted(0).burst_gap() == Counted(250).burst_gap() == Broadcaster.GAP == 0.5
    assert Counted(1000).burst_gap() == 2.0  # 500 viewer-writes a second at most
    assert Counted(10_000).burst_gap() == Broadcaster.LONGEST == 5.0  # and a batch every 5 s at least


def test_the_open_incident_screen_hears_another_process_on_sqlite_through_the_broadcaster(tmp_path):
    """The screen's refresh timer is off (not live): a note written on another connection can
    only reach it through the broadcaster, which on SQLite looks where the log ends."""
    import time

    from pilot_helpers import settle

    from runbook.tui.app import build_app

    path = str(tmp_path / "db.sqlite")
    engine = on_file(path)
    incident = engine.open("queue-stuck", "ana").id
    elsewhere = on_file(path)
    app = build_app(EngineService(engine), engine.catalog, "ana", incident, live=False)

    def shows() -> bool:
        return any("written in another terminal" in line.text for line in app.screen.view.timeline)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert await asyncio.to_thread(app.gateway.service.broadcaster.listening.wait, 30)
            assert not shows()
            elsewhere.note(incident, "bo", "written in another terminal")
            end = time.monotonic() + 30  # only ends a hang: the broadcaster looks every 0.1 s
            while not shows():
                assert time.monotonic() < end, "the note never reached the screen"
                await pilot.pause(0.05)
    try:
        asyncio.run(scenario())
    finally:
        app.gateway.release()
        elsewhere.store.close()
        engine.store.close()


def test_the_service_and_the_composition_root_import_no_face():
    """The service, its read models and broadcaster, and the composition root are below every
    face: no Textual, Rich, click, Starlette or Uvicorn is loaded with them."""
    import subprocess
    import sys

    modules = ["runbook.service", "runbook.read_models", "runbook.broadcaster", "runbook.runtime"]
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'textual', 'rich', 'click', 'starlette', 'uvicorn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
