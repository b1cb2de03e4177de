"""One change broadcaster for every live face (status page viewers, the TUI, chat bridges).

One watcher of the end of the log, whatever the number of viewers: PostgreSQL's LISTEN/NOTIFY
wakes it; on SQLite it asks where the log ends every POLL seconds (one indexed query). Each new
change is described once, on the engine service's reads lane, then fanned out: a callback per
TUI screen, an asyncio.Queue per viewer (encode/broadcaster's shape).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

from runbook.errors import RunbookError
from runbook.text import one_line

if TYPE_CHECKING:
    from runbook.service import EngineService, Lane

log = logging.getLogger("runbook.service")


class Change(NamedTuple):
    """One event appended to any incident, by anyone: where it is in the change feed, its
    timeline line (through one_line: safe to show as text), and that as a server-sent event,
    written once for every viewer."""

    position: int
    incident: str
    seq: int
    line: str
    sse: str


class Batch(NamedTuple):
    """What one look at the log found, as every viewer is sent it: the changes, and their
    server-sent events encoded once (a thousand viewers share these bytes). Empty: a heartbeat."""

    changes: tuple[Change, ...] = ()
    sse: bytes = b""

    @classmethod
    def of(cls, changes) -> Batch:
        return cls(tuple(changes), "".join(change.sse for change in changes).encode())


def changes_after(engine, cursor: int, limit: int = 500) -> list[Change]:
    """The changes after `cursor`, described from the events as stored (Engine.changes_since: one
    query, no incident folded); an event that does not verify is named as such, not described."""
    from runbook.engine.metrics import describe

    out = []
    for position, incident, seq, event in engine.changes_since(cursor, limit):
        line = one_line(f"{incident} · {event.actor}: {describe(event)}" if event is not None else
                        f"{incident}: event {seq} does not verify (runbook incident verify {incident})")
        data = json.dumps({"incident": incident, "seq": seq, "line": line})
        out.append(Change(position, incident, seq, line, f"id: {position}\nevent: change\ndata: {data}\n\n"))
    return out


class Broadcaster:
    """One watcher of the end of the log, fanning each change out to every subscriber.

    Started by the first subscriber. A store that notifies (PostgreSQL: LISTEN) wakes it; else
    it asks the reads lane where the log ends every POLL seconds (one indexed query, whatever
    the number of viewers). New changes are described once, on the reads lane, then handed to
    each callback (on the broadcaster's thread) and each queue (on its event loop)."""

    POLL = 0.1
    QUIET_POLL = 5.0  # with notifications, a look now and then anyway (one lost across a reconnect)
    HEARTBEAT = 15.0  # an empty batch to every queue after this long without changes (keeps proxies open)
    # After a look that found BURST changes or more, the next look comes GAP later, or later still
    # with many viewers (`burst_gap`): what people do goes out at the next look, a burst (an alert
    # storm opening incidents) in a batch every GAP seconds or so, not ten a second. Each batch is
    # a write to every viewer, and those writes share the event loop, the GIL and the cores with
    # the alert intake: a burst's batches go out at most WRITES viewer-writes a second (with 1,000
    # viewers, one batch every 2 s), which keeps the intake beside them as fast as without them
    # (benchmarks/viewers.py).
    BURST, GAP, WRITES, LONGEST = 20, 0.5, 500, 5.0
    MOST = 5000  # changes handed out in one batch at most

    def __init__(self, service: EngineService):
        self._service = service
        self._callbacks: list[Callable] = []
        self._queues: dict[asyncio.Queue, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener = None
        self.cursor: int | None = None
        self._ended = False
        self._fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}
        self.listening = threading.Event()  # set once changes from now on reach the subscribers

    def subscribe(self, callback: Callable[[list[Change]], None]) -> None:
        """Call `callback(changes)` on the broadcaster's thread whenever events were appended."""
        with self._lock:
            self._callbacks.append(callback)
        self._start()

    def unsubscribe(self, callback) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def queue(self) -> asyncio.Queue:
        """A queue of batches of changes (`Batch`) for the calling event loop's subscriber; `drop` it
        when done. None on it: the feed has ended (the service is closing); so it is on a queue made after."""
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            if self._ended:
                queue.put_nowait(None)
                return queue
            self._queues[queue] = asyncio.get_running_loop()
        self._start()
        return queue

    def queues(self) -> int:
        """How many queues are subscribed (live viewers)."""
        with self._lock:
            return len(self._queues)

    def end(self) -> None:
        """End every queue's feed (None on each), now and for queues made later, so that live
        streams finish and a server can stop without waiting for them; callbacks are unaffected."""
        with self._lock:
            self._ended = True
        self._to_queues(None)

    def drop(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._queues.pop(queue, None)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._callbacks) + len(self._queues)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._watch, name="runbook-broadcaster", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        reads = self._service.reads
        try:
            self.cursor = reads.call(lambda engine: engine.change_cursor())
            self._listener = reads.call(lambda engine: engine.store.listen(lambda incident, seq: self._wake.set()))
        except RunbookError as exc:
            log.error("live updates are off: %s", one_line(str(exc)))
            return
        if self._listener is not None:  # a store's listener (PostgreSQL) says when LISTEN is in place
            self._listener.connected.wait(self.QUIET_POLL)
        self.listening.set()
        wait = self.POLL if self._listener is None else self.QUIET_POLL
        sent, found = time.monotonic(), 0
        while not self._stop.is_set():
            if found >= self.BURST:  # a notification does not cut the gap short
                self._stop.wait(self.burst_gap())
            else:
                self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                found = self._publish(reads)
                if found:
                    sent = time.monotonic()
            except RunbookError as exc:  # the store is busy or gone; or the service is closing
                if not self._stop.is_set():
                    log.warning("live updates: %s", one_line(str(exc)))
            if time.monotonic() - sent >= self.HEARTBEAT:
                sent = time.monotonic()
                self._to_queues(Batch())

    def burst_gap(self) -> float:
        """Seconds from a look that found a burst to the next: GAP, or one viewer-write in WRITES
        per viewer, LONGEST at most (a batch holds MOST changes: the feed keeps up with a storm)."""
        return min(self.LONGEST, max(self.GAP, self.queues() / self.WRITES))

    def _publish(self, reads: Lane) -> int:
        """Hand out what was appended since the last look, as one batch (each batch is a write
        to every viewer); how many changes. With nobody subscribed (the last viewer left) the
        changes are passed over, not described: whoever subscribes next reads where the log ends
        after subscribing, and that is at or after this look's end."""
        end = reads.call(lambda engine: engine.change_cursor())
        if end <= self.cursor:
            return 0
        if not self.subscribers():  # checked after reading the end (see above)
            self.cursor = end
            return 0
        found: list[Change] = []
        while len(found) < self.MOST and (changes := reads.call(changes_after, self.cursor)):
            found += changes
            self.cursor = changes[-1].position
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(found)
            except Exception:  # one subscriber's failure is not another's
                log.exception("a live update subscriber failed")
        self._to_queues(Batch.of(found))
        return len(found)

    def _to_queues(self, batch: Batch | None) -> None:
        """Put `batch` on every queue, through each queue's event loop's fan-out."""
        with self._lock:
            queues = dict(self._queues)
        loops: dict = {}
        for queue, loop in queues.items():
            loops.setdefault(loop, []).append(queue)
        for loop, group in loops.items():
            with self._lock:
                fanout = self._fanouts.setdefault(loop, Fanout())
            try:
                loop.call_soon_threadsafe(fanout.add, group, batch)
            except RuntimeError:  # that loop is closed: its viewers are gone
                with self._lock:
                    self._fanouts.pop(loop, None)

    @contextmanager
    def first(self):
        """Work that goes before the live streams on the calling event loop (an alert being taken):
        while it runs, that loop's fan-out leaves it room (see Fanout)."""
        with self._lock:
            fanout = self._fanouts.setdefault(asyncio.get_running_loop(), Fanout())
        fanout.waiting += 1
        try:
            yield
        finally:
            fanout.waiting -= 1

    def close(self) -> None:
        self.end()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None


class Fanout:
    """One event loop's live queues woken with each batch, in the order the batches came, SLICE
    queues per turn of the loop: the viewers woken write their streams before the next slice is
    woken, so a request that arrived meanwhile waits for one slice's writes at each of its steps,
    not for a thousand. While work that goes first is running (`Broadcaster.first`: an alert
    being taken), the slices come STEP apart, leaving the loop to that work in between: a flood
    of alerts beside a thousand viewers is answered nearly as without them, and the viewers
    still get everything, a little later. Used on its loop's thread only."""

    SLICE = 10
    STEP = 0.002

    def __init__(self):
        self.pending: deque = deque()  # [queues, how many were woken, batch]
        self.waiting = 0
        self._running = False

    def add(self, queues: list, batch: Batch | None) -> None:
        last = self.pending[-1] if self.pending else None
        if (last is not None and last[1] == 0 and last[2] is not None and batch is not None
                and len(last[2].changes) + len(batch.changes) <= Broadcaster.MOST):
            # not started yet: one batch to the viewers there are now (a viewer that joined since
            # skips what it already has by position), so a backlog is one write per viewer, not many
            self.pending[-1] = [queues, 0, Batch.of(last[2].changes + batch.changes)]
            return
        self.pending.append([queues, 0, batch])
        if not self._running:
            self._running = True
            self._step()

    def _step(self) -> None:
        work = self.pending[0]
        queues, start, batch = work
        for queue in queues[start:start + self.SLICE]:
            queue.put_nowait(batch)
        work[1] = start + self.SLICE
        if work[1] >= len(queues):
            self.pending.popleft()
        if not self.pending:
            self._running = False
        elif self.waiting:
            asyncio.get_running_loop().call_later(self.STEP, self._step)
        else:
            asyncio.get_running_loop().call_soon(self._step)
