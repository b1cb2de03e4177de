"""Live status-page viewers of a real `runbook serve`: how many it streams to at once, and that a
server with viewers connected stops cleanly when told to (SIGTERM)."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import DEADLINE, wait_for

HERE = Path(__file__).parent
TOKEN = "intake-token-for-the-viewer-tests"
VIEW = "viewer-token-for-the-viewer-tests"


@pytest.fixture
def serve(tmp_path, fixture_env):
    """`serve(*options)`: `runbook serve` on a free loopback port with the status page on; the
    process, its port and its log. Stopped (SIGTERM) at the end if the test left it running."""
    started = []

    def start(*options: str):
        env = {**fixture_env, "RUNBOOK_DB": str(tmp_path / "incidents.db"), "HOME": str(tmp_path),
               "RUNBOOK_SERVE_TOKEN": TOKEN, "RUNBOOK_VIEW_TOKEN": VIEW,
               "RUNBOOK_PLUGINS_DIR": str(tmp_path / "no-plugins")}
        log = tmp_path / "serve.log"
        catalog = ["--catalog", str(HERE / "serve_catalog"),
                   "--catalog", str(HERE / "fixtures" / "catalog" / "playbooks")]
        proc = subprocess.Popen([sys.executable, "-m", "runbook", *catalog, "serve", "--port", "0", *options],
                                stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env, cwd=tmp_path)
        started.append(proc)

        def listening():
            if proc.poll() is not None:
                raise AssertionError(f"runbook serve exited {proc.returncode}: {log.read_text()}")
            return re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())

        return proc, int(wait_for(listening, "runbook serve to listen").group(1)), log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def watch(port: int) -> tuple[int, bytes, socket.socket]:
    """Open /live as a browser's EventSource does: the status code, what came with the headers,
    and the connection (left open for a 200)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.sendall(f"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {VIEW}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            break
        head += chunk
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        head += read_to_end(sock)
        sock.close()
    return status, head, sock


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_viewers_beyond_the_cap_are_refused_with_503_and_a_place_frees_when_one_leaves(serve):
    _, port, _ = serve("--max-viewers", "2")
    first, second = watch(port), watch(port)
    assert (first[0], second[0]) == (200, 200)
    status, answer, _ = watch(port)
    assert status == 503
    assert b"retry-after: 60\r\n" in answer.lower()
    assert b"too many live viewers: this server streams to at most 2 (runbook serve --max-viewers)" in answer
    first[2].close()  # a viewer leaves: the server notices on its next write (a heartbeat) or read

    def admitted():
        status, _, sock = watch(port)
        if status == 200:
            return sock
        return None

    again = wait_for(admitted, "a place for a new viewer", deadline=60)
    again.close()
    second[2].close()


def test_sigterm_with_viewers_connected_ends_their_streams_and_stops_without_a_traceback(serve):
    proc, port, log = serve()
    viewers = [watch(port) for _ in range(20)]
    assert {status for status, _, _ in viewers} == {200}
    proc.send_signal(signal.SIGTERM)
    ends = [read_to_end(sock) for _, _, sock in viewers]  # EOF, or the socket's DEADLINE ends a hang
    proc.wait(timeout=DEADLINE)
    text = log.read_text()
    assert "Traceback" not in text
    assert "timeout graceful shutdown exceeded" not in text  # uvicorn waited for no stream and cancelled none
    for (_, head, _), end in zip(viewers, ends, strict=True):
        assert (head + end).endswith(b"0\r\n\r\n")  # each stream ended as a response does, not cut off


def test_the_fan_out_hands_every_viewer_every_batch_in_order_also_while_an_alert_goes_first():
    from runbook.broadcaster import Batch, Change, Fanout

    def batch(position: int) -> Batch:
        return Batch.of([Change(position, "INC-1", position, f"change {position}", f"id: {position}\n\n")])

    async def scenario():
        fanout, queues = Fanout(), [asyncio.Queue() for _ in range(3 * Fanout.SLICE + 5)]
        fanout.waiting = 1  # an alert is being taken all along: the slices come apart, none is skipped
        fanout.add(queues, batch(1))
        fanout.add(queues[:-1], batch(2))  # the last viewer left meanwhile
        got = [[await asyncio.wait_for(queue.get(), DEADLINE) for _ in range(2 if queue is not queues[-1] else 1)]
               for queue in queues]
        return got, fanout

    got, fanout = asyncio.run(scenario())
    assert got[:-1] == [[batch(1), batch(2)]] * (len(got) - 1)
    assert got[-1] == [batch(1)]
    assert not fanout.pending


def test_batches_waiting_for_the_fan_out_are_merged_into_one_write_per_viewer():
    from runbook.broadcaster import Batch, Change, Fanout

    def changes(*positions: int) -> tuple:
        return tuple(Change(p, "INC-1", p, f"change {p}", f"id: {p}\n\n") for p in positions)

    async def scenario():
        fanout, queues = Fanout(), [asyncio.Queue() for _ in range(2 * Fanout.SLICE)]
        fanout.waiting = 1
        fanout.add(queues, Batch.of(changes(1)))  # the first slice is woken at once, the rest later
        fanout.add(queues, Batch.of(changes(2)))
        fanout.add(queues, Batch.of(changes(3)))  # still waiting behind the first: merged with the second
        return [[(await asyncio.wait_for(queue.get(), DEADLINE)).changes for _ in range(2)] for queue in queues]

    assert asyncio.run(scenario()) == [[changes(1), changes(2, 3)]] * (2 * Fanout.SLICE)


class Viewer:
    """A /live stream read without blocking: every `id:` it was sent, in order."""

    def __init__(self, port: int, after: int | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        resume = f"Last-Event-ID: {after}\r\n" if after is not None else ""
        self.sock.sendall(f"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {VIEW}\r\n{resume}"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.sock.setblocking(False)
        self.data = b""

    def read(self) -> list[int]:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
        except BlockingIOError:
            pass
        return [int(n) for n in re.findall(rb"^id: (\d+)$", self.data, re.MULTILINE)]


def test_every_viewer_ends_at_the_newest_change_through_a_storm_slow_and_late_ones_too(serve, tmp_path):
    """Through bursts of changes (an alert storm opening incidents, merged into batches), every
    viewer is sent every change once, in order, and ends at the last one appended: one that
    reads only at the end, and one that came part way, resuming from where it had been."""
    import http.client
    import json
    import sqlite3

    _, port, _ = serve()
    viewers = [Viewer(port) for _ in range(20)]
    slow = Viewer(port)  # reads nothing until the storm is over

    def positions() -> list[int]:
        with sqlite3.connect(f"file:{tmp_path / 'incidents.db'}?mode=ro", uri=True) as conn:
            return [row[0] for row in conn.execute("SELECT rowid FROM events ORDER BY rowid")]

    def deliver(first: int) -> None:
        alerts = [{"status": "firing", "labels": {"alertname": "DiskFull", "instance": f"h{n}.example"},
                   "annotations": {}, "startsAt": "2026-11-30T10:00:00Z", "fingerprint": f"{n:06x}"}
                  for n in range(first, first + 20)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        conn.request("POST", "/alertmanager", json.dumps({"version": "4", "alerts": alerts}),
                     {"Authorization": f"Bearer {TOKEN}"})
        assert conn.getresponse().status == 200
        conn.close()

    for viewer in [*viewers, slow]:
        wait_for(lambda viewer=viewer: viewer.read() is not None and b"\r\n\r\n" in viewer.data, "its stream to open")
        assert viewer.data.startswith(b"HTTP/1.1 200 ")
    for n in range(3):
        deliver(n * 100)
    resume = wait_for(lambda: positions() and positions()[len(positions()) // 2], "changes to resume part way from")
    late = Viewer(port, after=resume)
    for n in range(3, 6):
        deliver(n * 100)

    def still() -> list[int] | None:
        """The log, once its incidents are all open and every reading viewer has caught up with it."""
        log = positions()
        with sqlite3.connect(f"file:{tmp_path / 'incidents.db'}?mode=ro", uri=True) as conn:
            pending = conn.execute("SELECT count(*) FROM alerts WHERE outcome = 'pending'").fetchone()[0]
        caught_up = all(v.read()[-1:] == log[-1:] for v in [*viewers, late])
        return log if caught_up and not pending and log == positions() else None

    log = wait_for(still, "every viewer to be sent the last change", deadline=120)
    assert len(log) > 120 * 3  # 120 incidents opened, several events each
    for viewer in viewers:
        assert viewer.read() == log  # every change once, in order, up to the newest
    assert late.read() == [p for p in log if p > resume]  # what it missed, then the rest
    assert wait_for(lambda: slow.read()[-1:] == log[-1:] and slow.read(), "the slow viewer to read it all") == log
    for viewer in [*viewers, late, slow]:
        viewer.sock.close()
