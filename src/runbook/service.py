"""The engine service: one door to the engine for every face (TUI, CLI, `runbook serve`, drills).

Work runs on three lanes, each an Engine on its own store connection with one worker thread of
its own, so that no kind of work waits behind another:

- commands: what a person or an alert asks for (acknowledge, complete a step, flip a flag,
  record an alert delivery);
- reads: what faces show (views, lists, alerts, drills, debriefs, the status page);
- ticks: server-owned work that may wait on the outside world (timers, checks that query
  Prometheus, pages, opening the incidents of alerts just recorded).

Work on one lane runs in order; lanes run side by side. Engines on separate connections are
as safe together as responders in separate processes: the store's sequence check arbitrates.
A store with no second connection (the memory store of simulations and tests) gives every
lane the one engine and the one thread.

One `Broadcaster` (runbook/broadcaster.py) watches the end of the log for every live face and
fans each change out to its subscribers. What faces show is built by the read models
(runbook/read_models.py) on the reads lane.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from runbook.broadcaster import Broadcaster
from runbook.engine import intake
from runbook.engine import owner as owners
from runbook.engine.clock import iso
from runbook.errors import RunbookError
from runbook.read_models import debrief, drill_rows, incident_rows
from runbook.text import one_line

log = logging.getLogger("runbook.service")


class ServiceClosed(RunbookError):
    """The service is shutting down: work that arrives after `close` is refused."""


class Lane:
    """An engine and the one thread that uses it: `submit`ted work runs there, in order.
    `inline`: the thread is the caller's own (work runs as it is submitted), for a one-shot
    command that does one thing at a time: its errors, and Ctrl-C, are as without a service."""

    def __init__(self, name: str, make_engine: Callable, inline: bool = False):
        self.name = name
        self._pool = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"runbook-{name}")
        self._make = make_engine
        self._engine = None
        self._queued = 0  # work submitted and not finished yet
        self._count = threading.Lock()
        self.closed = False

    @property
    def engine(self):
        """The lane's engine (made on first use); use it only from the lane's own thread."""
        if self._engine is None:
            self._engine = self._make()
        return self._engine

    def submit(self, function, *args, **kwargs) -> Future:
        """Run `function(engine, *args, **kwargs)` on the lane's thread."""
        if self.closed:
            raise ServiceClosed("runbook is closing")
        with self._count:
            self._queued += 1
        if self._pool is None:
            done = Future()
            try:
                done.set_result(self._call(function, args, kwargs))
            except Exception as exc:
                done.set_exception(exc)
            return done
        try:
            return self._pool.submit(self._call, function, args, kwargs)
        except RuntimeError:  # shut down between the check and the submit
            with self._count:
                self._queued -= 1
            raise ServiceClosed("runbook is closing") from None

    def _call(self, function, args, kwargs):
        try:
            return function(self.engine, *args, **kwargs)
        finally:
            with self._count:
                self._queued -= 1

    def call(self, function, *args, **kwargs):
        """`submit` and wait for the result (from any thread but the lane's own)."""
        if self._pool is None:  # inline: the error raised as it was raised
            if self.closed:
                raise ServiceClosed("runbook is closing")
            with self._count:
                self._queued += 1
            return self._call(function, args, kwargs)
        return self.submit(function, *args, **kwargs).result()

    async def run(self, function, *args, **kwargs):
        """`submit` and await the result (from an event loop)."""
        return await asyncio.wrap_future(self.submit(function, *args, **kwargs))

    def busy(self) -> bool:
        return self._queued > 0

    def close(self, last: Callable[[], None] | None = None, wait: bool = True) -> None:
        """Refuse new work; queued work finishes, then `last()` runs on the lane's own thread
        (closing a connection there never closes it under a running statement). `wait`: until
        then (else `join` later)."""
        if not self.closed:
            self.closed = True
            if self._pool is None:
                if last is not None:
                    last()
                return
            if last is not None:
                self._pool.submit(last)
            self._pool.shutdown(wait=False)
        if wait:
            self.join()

    def join(self) -> None:
        """Wait until the work queued before `close` has finished."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def idle(self, timeout: float) -> bool:
        """Whether the lane has nothing queued or running, waiting up to `timeout` seconds."""
        import time

        end = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True


class EngineService:
    """The engine's one door: three lanes (see the module's text), read models and a broadcaster.

    `engine` is the commands lane's engine, or a function that makes it on first use; the
    reads and ticks lanes get engines of their own on new connections to the same store,
    sharing its clock, plugins and catalog. `own`: the service closes the stores it made and
    that first engine too (else the engine given belongs to its caller). `one_lane`: every lane
    is the commands lane, on that one engine and connection, run on the caller's own thread: a
    one-shot command (the CLI's) opens no connection and starts no thread it does not use."""

    def __init__(self, engine, own: bool = False, one_lane: bool = False):
        self._one_lane = one_lane
        self._given = None if callable(engine) else engine
        self._make = engine if callable(engine) else None
        self._own = own
        self._first = None
        self._failed: RunbookError | None = None
        self._making = threading.Lock()
        self.commands = Lane("commands", self.first_engine, inline=one_lane)
        if self._shared():
            self.reads = self.ticks = self.commands
        else:
            self.reads = Lane("reads", self._sibling)
            self.ticks = Lane("ticks", self._sibling)
        self.chat: Lane | None = None  # made by chat_lane(): only a server with a chat has it
        self.timer_pass = TimerPass()
        self.backlog = AlertBacklog(self.ticks)
        self.broadcaster = Broadcaster(self)
        self.keeper: LeaseKeeper | None = None
        self.timer_leases: owners.IncidentLeases | None = None  # see lease_timers
        self._lease_seconds = owners.DEFAULT_LEASE
        self._keeping = threading.Lock()
        self.closed = False

    def _shared(self) -> bool:
        """Whether every lane uses the one engine: asked for (`one_lane`), or a store that has no
        second connection."""
        if self._one_lane:
            return True
        return self._given is not None and self._given.store.location == ":memory:"

    def first_engine(self):
        """The commands lane's engine, made once (from any thread); an error making it is raised
        again to every later caller, not retried (the database is gone: the face is ending)."""
        with self._making:
            if self._failed is not None:
                raise self._failed
            if self._first is None:
                try:
                    self._first = self._given if self._given is not None else self._make()
                except RunbookError as exc:
                    self._failed = exc
                    raise
                if self.timer_leases is not None:
                    self._first.timer_leases = self.timer_leases
            return self._first

    def _sibling(self):
        from runbook.engine import Engine
        from runbook.store import open_store

        first = self.first_engine()
        if first.store.location == ":memory:":
            return first
        store = open_store(first.store.location, key=first.store.key,
                           key_created=first.store.key_created)
        engine = Engine(store, first.clock, first.plugins, first.catalog)
        engine.catalog_loader = first.catalog_loader
        engine.metrics_source = first.metrics_source
        engine.timer_leases = self.timer_leases
        return engine

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return tuple(dict.fromkeys((self.commands, self.reads, self.ticks, *([self.chat] if self.chat else []))))

    def chat_lane(self) -> Lane:
        """A fourth lane for the team's chat (engine/chat.py): its posts and the commands people
        write there wait on the homeserver, never on intake, and intake never on them."""
        if self.chat is None:
            self.chat = self.commands if self._shared() else Lane("chat", self._sibling)
        return self.chat

    # commands -----------------------------------------------------------------------------

    def command(self, method: str, *args, **kwargs):
        """An engine command (`acknowledge`, `complete`, `degrade`...) on the commands lane."""
        return self.commands.call(lambda engine: getattr(engine, method)(*args, **kwargs))

    def run_attached(self, incident: str, actor: str, step: str | None, terminal, expect: str | None = None):
        """Run an interactive step's command with `terminal` (the face's runner) on the caller's
        thread: its start and its end are recorded through the commands lane, but the lane is not
        held while the responder works in the command, so other commands (a second responder's,
        an alert's) go on meanwhile."""
        from runbook.engine.effects import attached

        events, ticket = self.commands.call(
            lambda engine: engine.start_attached(incident, actor, step, terminal.where, expect))
        result = attached(terminal, ticket[1])
        return events + self.commands.call(lambda engine: engine.finish_attached(incident, actor, ticket, result))

    def set_catalog(self, catalog) -> None:
        """Match and open against `catalog` from now on: on each lane, before the work asked of it
        after this call (without waiting for the work before it: a tick may be slow)."""
        for lane in self.lanes:
            lane.submit(_set_catalog, catalog)

    async def receive_alerts(self, alerts: list, actor: str = intake.ACTOR) -> list:
        """Alert intake: the delivery is recorded in one transaction on the commands lane and
        answered as recorded (a new matched alert: "pending" with its reserved incident id);
        the incidents it opens, joins or resolves are then acted on by the ticks lane, which may
        wait on plugins (a pager, a flag backend) while the next delivery is already taken."""
        owner = owners.claim()
        try:
            received = await self.commands.run(intake.record, alerts, owner)
        except BaseException:
            owners.release(owner)
            raise
        self.backlog.add(received, owner, actor)
        return [each.answer() for each in received]

    # reads --------------------------------------------------------------------------------

    def read(self, function, *args, **kwargs):
        """`function(engine, ...)` on the reads lane."""
        return self.reads.call(function, *args, **kwargs)

    def query(self, method: str, *args, **kwargs):
        """An engine read (`state`, `list`, `integrity`, `plan_degrade`...) on the reads lane."""
        return self.reads.call(lambda engine: getattr(engine, method)(*args, **kwargs))

    def incidents(self, **filters) -> list[dict]:
        return self.read(incident_rows, **filters)

    def drills(self, catalog) -> list[tuple[str, str, str, str]]:
        return self.read(drill_rows, catalog)

    def debrief(self, incident: str) -> dict:
        return self.read(debrief, incident)

    # ticks --------------------------------------------------------------------------------

    def tick(self, incident: str) -> bool:
        """Fire what is due on `incident`; True when something fired. Skipped (False) while the
        ticks lane is still busy (a slow plugin or check): the next tick catches up."""
        if self.ticks.busy():
            return False
        try:
            return bool(self.ticks.call(lambda engine: engine.tick(incident)))
        except ServiceClosed:
            return False

    async def timers(self) -> int:
        """One timer pass over the incidents that can have timers (see TimerPass)."""
        fired, live = await self.ticks.run(self.timer_pass)
        for lane in self.lanes:
            if lane is not self.ticks:  # the other engines let go of what the server no longer works on
                lane.submit(lambda engine: engine.forget(live))
        return fired

    def next_pass(self, every: float) -> float:
        """Seconds until the next timer pass: `every`, or sooner when another server's lease ends
        before then (its work is taken over at that instant, not at the next periodic pass)."""
        ends = self.timer_pass.lease_ends_in
        return every if ends is None else max(0.0, min(every, ends + TimerPass.PAST_LEASE))

    def lease_timers(self) -> None:
        """Fire incidents' timers only under their leases, as every face does (engine/owner.py):
        an incident's timers are fired by the one process whose lease holds them, taken when free
        or ended. This process's own lease is taken when a tick first needs it, renewed while the
        service runs, and ended when it closes, which lets go of every incident it held at once.
        Called by the composition root (runtime.py) before any work."""
        leases = owners.IncidentLeases(owners.process_holder(), hold=self._hold_for_timers)
        self.timer_leases = leases
        for engine in {id(e): e for e in (self._given, self._first, *(lane._engine for lane in self.lanes))
                       if e is not None}.values():
            engine.timer_leases = leases

    def _hold_for_timers(self, engine) -> bool:
        """This process's lease runs (taken now if need be); False when it may hold none."""
        with self._keeping:
            if self.keeper is not None:
                return True
            if not engine.store.may_lease():
                return False
            self._keep(self._lease_seconds)
            return True

    def _keep(self, seconds: float) -> None:
        from runbook.store import open_store

        first = self.first_engine()
        location = first.store.location
        # a one-shot command (one lane) holds it on its own connection, unrenewed: its tick is
        # shorter than a lease, and a tick that outlasts it is fenced once another takes it over
        store = first.store if location == ":memory:" or self._one_lane else open_store(
            location, key=first.store.key, key_created=first.store.key_created)
        try:
            self.keeper = LeaseKeeper(owners.Lease(store, first.clock, seconds), own=store is not first.store,
                                      renewed=not self._one_lane)
        except BaseException:
            if store is not first.store:
                store.close()
            raise

    def hold_lease(self, seconds: float) -> None:
        """Hold this process's lease on the work it owns (pending alerts, flag changes in flight,
        the timers of the incidents it ticks) for `seconds` at a time from now on, renewed on a
        thread and connection of its own until `join` ends it; once it runs out, any other
        server takes that work over (engine/owner.py)."""
        if self.timer_leases is None:
            self.lease_timers()
        with self._keeping:
            self._lease_seconds = seconds
            if self.keeper is None:
                self._keep(seconds)
            else:  # taken by a tick before: held for `seconds` from its next renewal on
                self.keeper.lease.seconds = seconds
        self.timer_pass.leases = self.timer_leases

    def release_timers(self, incident: str) -> None:
        """Let go of `incident`'s timers (a face no longer shows it): after any tick running, on
        the ticks lane; whoever ticks it next takes it at once."""
        leases = self.timer_leases
        if leases is None or not leases.holds(incident):
            return
        try:
            self.ticks.submit(lambda engine: leases.release(engine, incident))
        except ServiceClosed:
            pass  # closing: the lease it ends lets go of every incident

    def timers_holder(self, incident: str) -> str:
        """The runbook whose running lease holds `incident`'s timers now ("" : none), read now."""
        return self.read(_timers_holder, incident)

    def timers_by(self, incident: str) -> str:
        """Who fires `incident`'s timers when this process left them alone at its last tick, read
        now ("" : this process fires them, or has not ticked it, or nobody's lease holds them)."""
        leases = self.timer_leases
        if leases is None or not leases.left_alone(incident):
            return ""
        who = self.timers_holder(incident)
        if who:
            return f"run by {who}"
        if not leases.may:
            return ("not run here: this database role may not hold their lease (`runbook serve` runs them; "
                    "runbook db migrate --grant-server ROLE)")
        return ""

    # lifetime ----------------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        """Stop the broadcaster and the lanes: new work is refused, queued work finishes, then an
        engine the service made is closed (observers' failures recorded) and the connections it
        opened. `wait`: until all that is done (else `join` later)."""
        if not self.closed:
            self.closed = True
            self.broadcaster.close()
            if self._one_lane and self.keeper is not None:  # its work ran inline and is done; its connection next
                self.keeper.stop()
                self.keeper = None
            first = self._first
            for lane in self.lanes:
                engine = first if lane is self.commands else lane._engine
                if engine is None or (engine is first and not self._own):
                    lane.close(wait=False)
                else:
                    lane.close(lambda engine=engine: _close_engine(engine, engine is first), wait=False)
        if wait:
            self.join()

    def join(self) -> None:
        for lane in self.lanes:
            lane.join()
        if self.keeper is not None:  # the work it owned is finished: others need not wait a lease out
            self.keeper.stop()
            self.keeper = None


class LeaseKeeper:
    """Renews a lease every third of its length on a thread of its own (a renewal never waits
    behind a slow tick); `stop` ends the lease. A failed renewal is logged and tried again:
    if the database stays away past the lease, other servers take the work over."""

    def __init__(self, lease, own: bool, renewed: bool = True):
        self.lease, self._own = lease, own
        self._stop = threading.Event()
        lease.renew(first=True)  # held before the first alert is taken; a failure here stops the start
        self._end_dead()
        self._thread = None
        if renewed:  # else held once, for a one-shot command, until `stop`
            self._thread = threading.Thread(target=self._run, name="runbook-lease", daemon=True)
            self._thread.start()

    def _end_dead(self) -> None:
        """Those of this host's servers that died leave their work at once (engine/owner.py)."""
        try:
            for held in owners.end_dead_leases(self.lease.store, self.lease.clock):
                log.info("ended the lease of %s, a server on this host that is gone: its work is taken over",
                         one_line(held))
        except RunbookError as exc:
            log.warning("could not look for dead servers' leases on this host: %s", one_line(str(exc)))

    def _run(self) -> None:
        while not self._stop.wait(self.lease.due):
            try:
                running = self.lease.renew()
            except RunbookError as exc:
                log.warning("could not renew this server's lease: %s", one_line(str(exc)))
                continue
            self._end_dead()
            if not running:  # stalled (or cut off) past it: its incidents' epochs fence what it held
                log.warning("this server's lease had run out before it was renewed (stalled?): other servers may "
                            "have taken its work over; it stands down from what they took")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.lease.end()
        except RunbookError as exc:
            log.warning("could not end this server's lease (others take over when it runs out): %s",
                        one_line(str(exc)))
        finally:
            if self._own:
                self.lease.store.close()


def _close_engine(engine, drain: bool) -> None:
    try:
        if drain:
            engine.close()
    except RunbookError as exc:
        log.warning("could not record what the plugins' observers failed: %s", one_line(str(exc)))
    finally:
        engine.store.close()


def _set_catalog(engine, catalog) -> None:
    engine.catalog = catalog


def _timers_holder(engine, incident: str) -> str:
    return owners.held_by(engine.store.incident_holder(incident, iso(engine.clock.now())))


class AlertBacklog:
    """The alerts recorded and not yet acted on (their incidents opened, joined or resolved), in
    the order they came, acted on by the ticks lane PORTION at a time: a timer pass queued on
    the lane meanwhile runs between two portions, so the escalations of the incidents already
    open are not held up while an alert storm's thousands of incidents open (each a few ms)."""

    PORTION = 50

    def __init__(self, ticks: Lane):
        self._ticks = ticks
        self._deliveries: deque = deque()  # [alerts not acted on yet, owner, actor] per delivery
        self._lock = threading.Lock()
        self._draining = False

    def add(self, received: list, owner: dict, actor: str) -> None:
        with self._lock:
            self._deliveries.append([list(received), owner, actor])
            if self._draining:
                return
            self._draining = True
        self._next()

    def pending(self) -> int:
        with self._lock:
            return sum(len(delivery[0]) for delivery in self._deliveries)

    def _next(self) -> None:
        try:
            self._ticks.submit(self._portion)
        except ServiceClosed:  # closing: the rows stay pending with a gone owner; recovered at start
            with self._lock:
                gone, self._deliveries, self._draining = self._deliveries, deque(), False
            for _, owner, _ in gone:
                owners.release(owner)

    def _portion(self, engine) -> None:
        left = self.PORTION
        while left > 0:
            with self._lock:
                if not self._deliveries:
                    self._draining = False
                    return
                alerts, owner, actor = delivery = self._deliveries[0]
                now, delivery[0] = alerts[:left], alerts[left:]
                if not delivery[0]:
                    self._deliveries.popleft()
            left -= len(now)
            if not _act_on_alerts(engine, now, owner, actor):
                with self._lock:  # the rest of that delivery stays pending too
                    if self._deliveries and self._deliveries[0] is delivery:
                        self._deliveries.popleft()
                delivery[0] = []
            if not delivery[0]:
                owners.release(owner)
        self._next()


def _act_on_alerts(engine, received, owner, actor) -> bool:
    """Act on `received`; False when that failed (the rows stay pending: the timer pass takes
    them over, `recover`)."""
    try:
        for outcome in intake.act(engine, received, owner, actor):
            if outcome.outcome != "repeat":
                log.info("alert %s %s: %s%s%s", one_line(outcome.alertname or outcome.fingerprint), outcome.status,
                         outcome.outcome, f" {outcome.incident}" if outcome.incident else "",
                         f" ({one_line(outcome.reason)})" if outcome.reason else "")
    except RunbookError as exc:
        log.error("could not act on a delivery: %s", one_line(str(exc)))
        return False
    return True


# ticks ------------------------------------------------------------------------------------

class TimerPass:
    """Fire what is due on the incidents that can still have timers: open ones, those in their
    follow-up phase, and those resolved in the last RESOLVED_WINDOW (a pager's resolve being
    retried). First what a server that is gone left: the incidents of alerts it left pending,
    then on every incident the flag changes and actions whose owner is gone (a server killed in
    the middle of a stage change: its stage checks wait on that change), before any timer fires,
    so a take-over never waits behind other incidents' timers. An incident whose log has not
    changed and that has nothing in flight is skipped until its next timer is due (looked at
    again every RECHECK anyway), so an alert storm's thousand open incidents do not keep the lane
    busy; one with a change in flight is looked at on every pass, to take it over as soon as its
    owner's lease runs out. With `leases` (a server's IncidentLeases) an incident's timers fire
    only on the server that holds it (Engine.tick), and the pass notes when the next lease of
    another server ends (`lease_ends_in`), so the next pass runs then. Returns (events fired,
    the ids still worked on).

    Which incidents those are is listed in full (Engine.list: the summaries, checked against
    their logs) on the first pass and every RECHECK; in between, a pass asks the log only what
    was appended since it last looked (Engine.appended_since: one indexed query), and an incident
    that appears there joins the ones worked on. An idle server with thousands of open incidents
    so costs one query a pass, not a listing of them all (benchmarks/viewers.py, idle CPU)."""

    RECHECK = timedelta(seconds=30)
    RESOLVED_WINDOW = timedelta(minutes=15)
    PAST_LEASE = 0.005  # seconds after another server's lease ends that the pass looks again
    FEED = 5000  # appended events read from the change feed per query

    def __init__(self):
        # id -> (last seq, next due, checked at, something in flight)
        self.known: dict[str, tuple[int, object, object, bool]] = {}
        self.worked: dict[str, int | None] = {}  # the incidents worked on -> the last seq their log was seen at
        self.listed_at = None  # when they were last listed in full (the engine's clock)
        self.cursor = 0  # the change feed's position then, or when it was last asked
        self.leases: owners.IncidentLeases | None = None
        self.lease_ends_in: float | None = None  # seconds from the end of the last pass
        self._take_over_at: float | None = None  # time.monotonic() then

    def __call__(self, engine) -> tuple[int, set[str]]:
        now = engine.clock.now()
        rows = self._rows(engine, now)
        looked = [row for row in rows if not self._skipped(row, now)]
        fired = self._take_over(engine, looked)
        for row in looked:
            if self._take_over_at is not None and time.monotonic() >= self._take_over_at:
                fired += self._take_over(engine, looked)  # a lease ended in the middle of the pass: at once
            try:
                fired += len(engine.tick(row["id"]))
                state = engine.state(row["id"])
                # a background command running is looked at on every pass (it may end by itself)
                in_flight = bool(state.actions_pending or state.background) or \
                    any(d.pending for d in state.degradations.values())
                self.known[row["id"]] = (state.last_seq, engine.next_due(row["id"]), now, in_flight)
            except RunbookError as exc:
                log.warning("timers of %s: %s", row["id"], one_line(str(exc)))
        live = {row["id"] for row in rows}
        self.known = {i: v for i, v in self.known.items() if i in live}
        engine.forget(live)  # the folded states of closed incidents go; memory stays flat for months
        if self.leases is not None:
            self.leases.forget(live)
            self._next_lease_end(engine)
        return fired, live

    def _take_over(self, engine, rows: list[dict]) -> int:
        """What servers that are gone left: the incidents of their pending alerts opened, their
        flag changes and actions in flight settled (only those of a gone owner, engine/owner.py)."""
        for outcome in engine.recover_alerts():
            log.info("opened the incident of a pending alert: %s %s", outcome.outcome, outcome.incident or "")
        fired = 0
        for row in rows:
            seen = self.known.get(row["id"])
            if seen is not None and seen[0] == row["last_seq"] and not seen[3]:
                continue  # nothing in flight when it was last looked at, and its log has not moved since
            try:
                fired += len(engine.effects.reconcile(row["id"]))
            except RunbookError as exc:
                log.warning("settling what a gone owner left on %s: %s", row["id"], one_line(str(exc)))
        if self.leases is not None:
            self._next_lease_end(engine)
        return fired

    def _next_lease_end(self, engine) -> None:
        try:
            self.lease_ends_in = engine.store.next_lease_end(self.leases.holder, iso(engine.clock.now()))
        except RunbookError as exc:
            self.lease_ends_in = None
            log.warning("could not read other servers' leases: %s", one_line(str(exc)))
        self._take_over_at = None if self.lease_ends_in is None else time.monotonic() + self.lease_ends_in

    def _rows(self, engine, now) -> list[dict]:
        """The incidents worked on, each as {"id", "last_seq"}: listed in full every RECHECK, else
        those of the last listing and any whose log was appended to since."""
        if self.listed_at is None or not timedelta(0) <= now - self.listed_at < self.RECHECK:
            self.cursor = engine.change_cursor()  # before listing: an append in between is seen next pass
            rows = engine.list(open_only=True)
            rows += engine.list(status="resolved", resolved_since=iso(now - self.RESOLVED_WINDOW))
            self.worked = {row["id"]: row["last_seq"] for row in rows}
            self.listed_at = now
        else:
            new: set[str] = set()
            while changes := engine.appended_since(self.cursor, self.FEED):
                for _, incident, seq in changes:
                    if incident not in self.worked:
                        new.add(incident)
                    self.worked[incident] = max(seq, self.worked.get(incident) or 0)
                self.cursor = changes[-1][0]
                if len(changes) < self.FEED:
                    break
            for incident in new:  # only those a listing would give (a note on a long-closed one is not)
                if not self._worked_on(engine, incident, now):
                    del self.worked[incident]
        return [{"id": incident, "last_seq": seq} for incident, seq in self.worked.items()]

    def _worked_on(self, engine, incident: str, now) -> bool:
        """Whether the listing would give `incident`: open or in its follow-up phase, or resolved
        within RESOLVED_WINDOW; read from its log."""
        try:
            state = engine.state(incident)
        except RunbookError as exc:
            log.warning("timers of %s: %s", incident, one_line(str(exc)))
            return False
        if state.phase == "closed":
            return False
        return state.phase != "resolved" or state.resolved_at >= now - self.RESOLVED_WINDOW

    def _skipped(self, row: dict, now) -> bool:
        seen = self.known.get(row["id"])
        return bool(seen and seen[0] == row["last_seq"] and not seen[3] and (seen[1] is None or now < seen[1])
                    and now - seen[2] < self.RECHECK)
