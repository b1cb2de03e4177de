"""The TUI's only door to the engine: one lock, and plain view models built under it.

Engine calls (which may wait on plugins) run in worker threads; the UI thread only ever
receives finished, immutable views to render, so it never blocks and never reads a state
that another thread is advancing.

Every text in a view that came from the log, the playbook snapshot, the catalog or a plugin
has been through `runbook.text` here (`one_line` for titles, names and timeline rows, `shown`
where line breaks belong): the screens render views and nothing else, so no control or bidi
character reaches the terminal.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING

from runbook.errors import RunbookError
from runbook.text import one_line, shown_data
from runbook.tui.alert_views import MAX_ROWS, NEEDS_A_HUMAN, AlertView, build_alerts

# The view records live in runbook/view_models.py, built by runbook/views.py (the status page renders them
# too); the screens import them from here.
from runbook.view_models import CurrentStep, IncidentView  # noqa: F401

if TYPE_CHECKING:
    from runbook.engine.flips import FlipPlan


class GatewayClosed(RunbookError):
    """The TUI is shutting down: engine work that arrives after `close` is refused."""


class _Busy(Exception):
    """The lock of work that is skipped rather than waited for (a tick) is taken."""

class EngineGateway:
    """The TUI's engines, one per kind of work, so that slow work never blocks the screen.

    Views, timers (which may poll a check or page someone) and commands (which may flip flags
    or run an action) each get their own Engine on their own database connection, and their
    own lock. They share the clock and plugins. Engines on separate connections are as safe
    together as responders in separate processes: the store's sequence check arbitrates.
    """

    def __init__(self, engine, catalog=None):
        """`engine` is the Engine, or a function that makes one: then it is made when engine work
        is first asked for, off the screen's thread (`runbook resume` draws its first frame
        before the engine is loaded; see IncidentScreen.settle).

        `unavailable(error)` is called if the engines cannot be made: the screen cannot work."""
        self._make = engine if callable(engine) else None
        self.unavailable = None
        self._failed: RunbookError | None = None
        self._listening = threading.Lock()
        self.catalog = catalog
        self.lock = threading.Lock()
        self._tick_lock, self._command_lock = threading.Lock(), threading.Lock()
        self._making = threading.Lock()
        self._made: tuple | None = None  # (engine, ticker, commander)
        self.closed = False
        self._verified: dict[str, str] = {}
        self._watchers: list = []  # callbacks told of another process's append (a store that notifies)
        self._listener = None
        if self._make is None:
            self._build(engine)

    def _build(self, engine) -> tuple:
        made = [engine]
        try:
            made += [self._sibling(engine), self._sibling(engine)]
        except BaseException:
            if self._make is not None:  # ours: nothing may keep a connection it cannot use
                for each in made:
                    each.store.close()
            raise
        self._made = tuple(made)
        if self._watchers:
            self._listen()
        return self._made

    @staticmethod
    def _sibling(engine):
        from runbook.engine import Engine
        from runbook.store import open_store

        if not engine.store.features.persistent:  # nothing to open again: share the one engine
            return engine
        worker = Engine(open_store(engine.store.location), engine.clock, engine.plugins, engine.catalog)
        worker.catalog_loader = engine.catalog_loader
        return worker

    def _engines(self) -> tuple:
        made = self._made
        if made is None:
            with self._making:
                if self._failed is not None:  # once: the screen is ending (no retry on every tick)
                    raise self._failed
                try:
                    made = self._made or self._build(self._make())
                except RunbookError as exc:
                    self._failed = exc
                    if self.unavailable is not None:
                        self.unavailable(exc)
                    raise
        return made

    @property
    def engine(self):
        return self._engines()[0]

    @property
    def _ticker(self):
        return self._engines()[1]

    @property
    def _commander(self):
        return self._engines()[2]

    def release(self) -> None:
        """Close the engine this gateway made itself (one it was given belongs to its caller)."""
        if self._make is not None and self._made is not None:
            self._made[0].close()
            self._made[0].store.close()

    def watch(self, callback) -> None:
        """Call `callback(incident)` from the listener's thread whenever another process or
        machine appends to an incident (`incident` None: the connection was lost and is back, so
        anything may have changed). Only stores that notify (PostgreSQL's LISTEN) do this; with
        the others the screen's own refresh timer is all there is. An engine not made yet is not
        made for this: the listener starts when it is."""
        if self.closed:
            return
        self._watchers.append(callback)
        if self._made is not None:
            self._listen()

    def _listen(self) -> None:
        store = self._made[0].store
        with self._listening:  # the screen's watch and a worker making the engines may both get here
            if store.features.notifies and self._listener is None and not self.closed:
                self._listener = store.listen(lambda incident, seq: [cb(incident) for cb in list(self._watchers)])

    def unwatch(self, callback) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def close(self) -> None:
        """Refuse engine work from now on, without waiting (the screen is being torn down).

        A connection is closed here only if nothing is using it; one in use (a tick appending
        an escalation, a command running a step's action) is closed by that work when it ends,
        because closing a connection under a running statement crashes the process and the
        event half-way through its append must land. `wait_idle` waits for that work."""
        self.closed = True
        self._watchers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for lock in (self._tick_lock, self._command_lock):
            if lock.acquire(blocking=False):
                try:
                    self._close_sibling(lock)
                finally:
                    lock.release()

    def wait_idle(self, notice=None) -> None:
        """Block until engine work still in flight has finished (once the screen is gone);
        `notice()` is called first if that takes more than half a second."""
        for lock in (self.lock, self._tick_lock, self._command_lock):
            if not lock.acquire(timeout=0.5):
                if notice is not None:
                    notice()
                    notice = None
                lock.acquire()
            lock.release()

    def _close_sibling(self, lock) -> None:
        """Close the connection `lock` guards (caller holds it), unless it is the main engine's,
        which belongs to whoever created the engine (or to `release`)."""
        if self._made is None:
            return
        engine, ticker, commander = self._made
        sibling = {self._tick_lock: ticker, self._command_lock: commander}.get(lock)
        if sibling is not None and sibling is not engine:
            sibling.store.close()

    @contextmanager
    def _open(self, *locks, wait: bool = True):
        """Hold `locks` for one piece of engine work: GatewayClosed once closed, _Busy when
        `wait` is false and one is taken; a connection closed meanwhile is closed on the way out."""
        taken = []
        try:
            for lock in locks:
                if not lock.acquire(blocking=wait):
                    raise _Busy
                taken.append(lock)
            if self.closed:
                raise GatewayClosed("runbook is closing")
            yield
        finally:
            for lock in reversed(taken):
                if self.closed:  # closed while this work ran: its connection is done with now
                    self._close_sibling(lock)
                lock.release()

    def warm(self, incident: str) -> None:
        """Read the incident on the ticker's and the commander's connections too, ahead of need:
        each engine folds the log once, and on a long incident that fold is what the first
        command key would otherwise wait for."""
        with self._open(self._command_lock):
            self._commander.state(incident)
        with suppress(_Busy), self._open(self._tick_lock, wait=False):  # a busy tick is warming it
            self._ticker.state(incident)

    def set_catalog(self, catalog):
        with self._open(self.lock, self._command_lock):
            self.engine.catalog = self._commander.catalog = self.catalog = catalog
        return catalog

    def view(self, incident: str) -> IncidentView:
        from runbook.views import incident_view

        with self._open(self.lock):
            # the whole record is checked once per incident shown
            view, self._verified[incident] = incident_view(self.engine, incident, self._verified.get(incident))
            return view

    def debrief(self, incident: str) -> dict:
        """What the debrief shows: times against targets, steps, notes and action items."""
        from runbook.engine.metrics import MEASURES, metrics
        from runbook.views import _maybe

        with self._open(self.lock):
            state = self.engine.state(incident)
            m = metrics(state, self.engine.clock.now())
            times = []
            for key, name, _ in MEASURES:
                target = m.targets.get(name)
                times.append((f"Time to {name}", getattr(m, key), target["target"] if target else None,
                              bool(target and target["breached"])))
            steps = [{**run, "step": one_line(run["step"]), "outcome": _maybe(run["outcome"])} for run in m.steps]
            return {"id": state.id, "title": one_line(state.title), "drill": state.drill, "times": times,
                    "steps": steps,
                    "notes": [(f"{n.at:%H:%M:%S}", one_line(n.actor), one_line(n.data["text"])) for n in state.notes],
                    "items": [(one_line(a.data["text"]), one_line(a.data.get("owner") or a.actor))
                              for a in state.action_items]}

    def export(self, incident: str, folder: str = ".") -> str:
        """Write the incident's postmortem (Markdown) next to where runbook was started; its path."""
        from pathlib import Path

        from runbook.engine.metrics import export_markdown

        with self._open(self.lock):
            state = self.engine.state(incident)
            path = Path(folder) / f"{state.id}-postmortem.md"
            try:
                path.write_text(export_markdown(state), encoding="utf-8")
            except OSError as exc:
                raise RunbookError(f"cannot write {path}: {exc.strerror or exc}") from None
        return str(path)

    def report(self, include_drills: bool = False) -> dict:
        from runbook.drills.report import build

        with self._open(self.lock):
            return shown_data(build(self.engine, include_drills=include_drills).to_dict())

    def drills(self) -> list[tuple[str, str, str, str]]:
        """Drills for the home screen: id, title, next run (local time; "—" when unscheduled) and
        the last run, whether the scheduler fired it or someone ran it by hand."""
        from runbook.drills.scheduler import next_occurrence

        catalog = self.catalog
        if catalog is None:
            return []
        out = []
        with self._open(self.lock):
            now = self.engine.clock.now()
            for drill in catalog.models("Drill").values():
                ran = self._last_run(drill)
                if drill.schedule is None and ran is None:
                    continue  # a simulation profile, never rehearsed by people
                upcoming = next_occurrence(drill, now) if drill.schedule else None
                state = self.engine.store.schedule_state(drill.id) if drill.schedule else None
                fired = (datetime.fromisoformat(state["last_scheduled"]), state["last_outcome"]) \
                    if state and state["last_scheduled"] else None
                if fired and fired[0].tzinfo is None:
                    fired = (fired[0].replace(tzinfo=now.tzinfo), fired[1])
                last = max((r for r in (ran, fired) if r is not None), key=lambda r: r[0], default=None)
                out.append((one_line(drill.id), one_line(drill.title),
                            f"{upcoming:%a %d %b %H:%M %Z}" if upcoming else "—",
                            one_line(f"{last[1]} {last[0]:%a %d %b %H:%M}") if last else "never run"))
        return sorted(out, key=lambda row: row[2])

    def _last_run(self, drill) -> tuple[datetime, str] | None:
        """When the drill was last rehearsed and how it went ("resolved", "open"), from the log."""
        for row in self.engine.store.incidents(drills=True, playbook=drill.playbook, limit=20):
            state = self.engine.state(row["id"])
            rehearsed = state.snapshot.drill
            if rehearsed is not None and rehearsed.id == drill.id:
                return state.opened_at, f"{state.status} ({state.id})"
        return None

    def tick(self, incident: str) -> bool:
        """Fire what is due; True when something fired (the view changed). Skipped (False) while
        a previous tick is still busy with a slow plugin."""
        try:
            with self._open(self._tick_lock, wait=False):
                return bool(self._ticker.tick(incident))
        except (_Busy, GatewayClosed):
            return False

    def call(self, method: str, *args, **kwargs):
        with self._open(self._command_lock):
            return getattr(self._commander, method)(*args, **kwargs)

    def plan(self, method: str, incident: str, *args) -> FlipPlan | None:
        """What a flip would write (`method`: plan_degrade, plan_restore, plan_stage, plan_step), from
        the engine that then writes it: each dialog states this, and sends its lines back as the
        command's `expect`. Reads the flag backend: call it from a worker."""
        with self._open(self._command_lock):
            return getattr(self._commander, method)(incident, *args)

    def alerts(self) -> tuple[AlertView, ...]:
        """The alerts `runbook serve` received in the last 24 hours (tui/alert_views.py): the
        newest, and the unmatched and failed ones even behind many newer ones."""
        with self._open(self.lock):
            now = self.engine.clock.now()
            rows = self.engine.alerts(limit=MAX_ROWS)
            for outcome in NEEDS_A_HUMAN:
                rows += self.engine.alerts(outcome=outcome, limit=MAX_ROWS)
            return build_alerts(rows, now)

    def incidents(self) -> list[dict]:
        with self._open(self.lock):
            rows = self.engine.list(open_only=True)
        return [{**row, "title": one_line(row["title"] or ""), "severity": one_line(row["severity"] or "")}
                for row in rows]
