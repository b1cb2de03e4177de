"""The TUI's only door to the engine: the engine service's lanes, and plain view models built there.

Engine calls (which may wait on plugins) are made from worker threads and run on the service's
lanes (runbook/service.py): views on reads, commands on commands, timers on ticks, so a slow
check or page never holds up a key press or the screen. The UI thread only ever receives
finished, immutable views to render, so it never blocks and never reads a state that another
thread is advancing.

Every text in a view that came from the log, the playbook snapshot, the catalog or a plugin
has been through `runbook.text` here (`one_line` for titles, names and timeline rows, `shown`
where line breaks belong): the screens render views and nothing else, so no control or bidi
character reaches the terminal.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from runbook.errors import RunbookError
from runbook.read_models import alert_rows, report
from runbook.service import EngineService, ServiceClosed
from runbook.text import one_line
from runbook.tui.alert_views import MAX_ROWS, NEEDS_A_HUMAN, REJECTED, AlertView, build_alerts

# The view records live in runbook/view_models.py, built by runbook/views.py (the status page renders them
# too); the screens import them from here.
from runbook.view_models import CurrentStep, IncidentView  # noqa: F401

if TYPE_CHECKING:
    from runbook.engine.flips import FlipPlan


class GatewayClosed(ServiceClosed):
    """The TUI is shutting down: engine work that arrives after `close` is refused."""


class EngineGateway:
    """What the TUI's screens ask of the engine service it is given (made by the composition
    root, runbook/runtime.py), which it closes when the TUI ends.

    The service's first engine may be made when engine work is first asked for, off the screen's
    thread (`runbook resume` draws its first frame before the engine is made; see
    IncidentScreen.settle). `unavailable(error)` is called if it cannot be made: the screen
    cannot work."""

    def __init__(self, service: EngineService, catalog=None):
        self.service = service
        self.unavailable = None
        self._told = False  # whether `unavailable` was called
        self._telling = threading.Lock()
        self.catalog = catalog
        self.closed = False
        self._verified: dict[str, str] = {}
        self._watchers: list = []  # callbacks told of an append to an incident, by anyone
        self._subscribed = False  # to the broadcaster, for them all

    def _ready(self) -> EngineService:
        """The service, once its first engine is made: GatewayClosed once closed; else the error
        that stopped the engine being made, `unavailable` told of it once."""
        if self.closed:
            raise GatewayClosed("runbook is closing")
        try:
            self.service.first_engine()
        except RunbookError as exc:
            with self._telling:
                told, self._told = self._told, True
            if not told and self.unavailable is not None:
                self.unavailable(exc)
            raise
        return self.service

    def release(self) -> None:
        """Close the service (and the engine, when the gateway made it) once its work is done."""
        self.close()
        self.service.join()

    def watch(self, callback) -> None:
        """Call `callback(incident)` from the broadcaster's thread whenever anyone (another
        process, another machine) appends to an incident."""
        if self.closed:
            return
        self._watchers.append(callback)
        if not self._subscribed:  # once: a screen left and come back to does not subscribe again
            self._subscribed = True
            self.service.broadcaster.subscribe(self._changed)

    def _changed(self, changes) -> None:
        for incident in dict.fromkeys(change.incident for change in changes):
            for callback in list(self._watchers):
                callback(incident)

    def unwatch(self, callback) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def close(self) -> None:
        """Refuse engine work from now on, without waiting (the screen is being torn down).

        Work already on a lane (a tick appending an escalation, a command running a step's
        action) finishes, and its connection is closed after it on its own thread, because
        closing a connection under a running statement crashes the process and the event
        half-way through its append must land. `wait_idle` waits for that work."""
        self.closed = True
        self._watchers.clear()
        self.service.broadcaster.unsubscribe(self._changed)
        self.service.close(wait=False)

    def wait_idle(self, notice=None) -> None:
        """Block until engine work still in flight has finished (once the screen is gone);
        `notice()` is called first if that takes more than half a second."""
        if notice is not None and not all(lane.idle(0.5) for lane in self.service.lanes):
            notice()
        self.service.join()

    def warm(self, incident: str) -> None:
        """Read the incident on the commands and ticks lanes too, ahead of need: each engine
        folds the log once, and on a long incident that fold is what the first command key
        would otherwise wait for."""
        service = self._ready()
        service.commands.call(lambda engine: engine.state(incident))
        if not service.ticks.busy():  # a busy tick is warming it
            service.ticks.call(lambda engine: engine.state(incident))

    def set_catalog(self, catalog):
        self._ready().set_catalog(catalog)
        self.catalog = catalog
        return catalog

    def view(self, incident: str) -> IncidentView:
        service = self._ready()
        view = service.read(self._view, incident)
        # the timers as the record says; who fires them when this runbook's lease does not hold them
        by = service.timers_by(incident)
        return view._replace(timers_by=one_line(by)) if by else view

    def release_timers(self, incident: str) -> None:
        """The screen no longer ticks `incident`: let go of its timers' lease, so another runbook
        (`runbook serve`) fires them at once."""
        if not self.closed:
            self.service.release_timers(incident)

    def _view(self, engine, incident: str) -> IncidentView:
        from runbook.views import incident_view

        # the whole record is checked once per incident shown
        view, self._verified[incident] = incident_view(engine, incident, self._verified.get(incident))
        return view

    def debrief(self, incident: str) -> dict:
        """What the debrief shows: times against targets, steps, notes and action items."""
        return self._ready().debrief(incident)

    def learning(self, incident: str) -> dict:
        """Past incidents like this one, the review, the action items (read_models.learning_view)."""
        from runbook.read_models import learning_view

        return self._ready().read(learning_view, incident)

    def similar(self, incident: str) -> dict:
        """Past incidents like this one, with the repeat warning (read_models.similar_incidents)."""
        from runbook.read_models import similar_incidents

        return self._ready().read(similar_incidents, incident)

    def export(self, incident: str, path: str) -> str:
        """Write the incident's postmortem (Markdown) to `path` (its folders made); the path written."""
        return self._ready().read(_export, incident, path)

    def report(self, include_drills: bool = False) -> dict:
        return self._ready().read(report, include_drills)

    def drills(self) -> list[tuple[str, str, str, str]]:
        """Drills for the home screen: id, title, next run and the last run (service.drill_rows)."""
        if self.catalog is None:
            return []
        return self._ready().drills(self.catalog)

    def tick(self, incident: str) -> bool:
        """Fire what is due; True when something fired (the view changed). Skipped (False) while
        a previous tick is still busy with a slow plugin."""
        try:
            return self._ready().tick(incident)
        except GatewayClosed:
            return False

    def call(self, method: str, *args, **kwargs):
        return self._ready().command(method, *args, **kwargs)

    def run_attached(self, incident: str, actor: str, step: str, terminal, expect: str | None):
        """An interactive step's command, run by `terminal` on this (a worker's) thread; its start and
        end recorded through the commands lane (EngineService.run_attached)."""
        return self._ready().run_attached(incident, actor, step, terminal, expect)

    def plan(self, method: str, incident: str, *args) -> FlipPlan | None:
        """What a flip would write (`method`: plan_degrade, plan_restore, plan_stage, plan_step), from
        the engine that then writes it: each dialog states this, and sends its lines back as the
        command's `expect`. Reads the flag backend: call it from a worker."""
        return self._ready().command(method, incident, *args)

    def alerts(self) -> tuple[AlertView, ...]:
        """The alerts `runbook serve` received in the last 24 hours (tui/alert_views.py): the
        newest, and the unmatched and failed ones even behind many newer ones."""
        return self._ready().read(_alerts)

    def incidents(self) -> list[dict]:
        return self._ready().incidents(open_only=True)


def _export(engine, incident: str, where: str) -> str:
    from pathlib import Path

    from runbook.engine.metrics import export_markdown

    state = engine.state(incident)
    path = Path(where).expanduser()
    if path.is_dir():
        path = path / f"{state.id}-postmortem.md"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(export_markdown(state), encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"cannot write {path}: {exc.strerror or exc}") from None
    return str(path)


def _alerts(engine) -> tuple[AlertView, ...]:
    return build_alerts(alert_rows(engine, limit=MAX_ROWS, also=(*NEEDS_A_HUMAN, REJECTED)), engine.clock.now())
