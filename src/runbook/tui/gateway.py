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
from typing import NamedTuple
from datetime import datetime

from runbook.engine import answers, texts, timers
from runbook.engine.metrics import describe
from runbook.engine.roles import waiting_for
from runbook.engine.state import IncidentState
from runbook.errors import RunbookError
from runbook.text import one_line, shown, shown_data
from runbook.tui.alert_views import MAX_ROWS, NEEDS_A_HUMAN, AlertView, build_alerts


class GatewayClosed(RunbookError):
    """The TUI is shutting down: engine work that arrives after `close` is refused."""


class _Busy(Exception):
    """The lock of work that is skipped rather than waited for (a tick) is taken."""

TIMELINE_ROWS = 200
OUTPUT_LINES = 40  # of a step's last run, shown under the current step (the panel scrolls)

# The view records are NamedTuples, not dataclasses: immutable and compared by value all the
# same, and defining one costs a fifth as much, which the TUI pays before its first frame.


class StepRow(NamedTuple):
    id: str
    title: str
    kind: str
    status: str
    attempt: int
    current: bool
    settled: bool = False  # a restore step whose degradation is no longer applied (resolve restored it)


class TrackView(NamedTuple):
    id: str
    title: str
    role: str | None
    steps: tuple[StepRow, ...]
    current: str | None


class CurrentStep(NamedTuple):
    track: str
    id: str
    title: str
    kind: str
    instructions: str
    question: str
    options: tuple[str, ...]
    timebox_left: float | None
    approval_by: str | None
    approved_by: str | None
    automated: bool
    command: str
    degradation: str | None
    status: str
    role: str | None
    template: str | None
    last_poll: str
    approval_prompt: str = ""
    ran: bool = False  # whether its command ran; then exit_code and output are its last run's
    exit_code: int | None = None
    output: str = ""  # the tail of that run's stdout and stderr (OUTPUT_LINES lines), escaped
    output_of: str = ""  # the step that run was of: this one, or the step a decision's from: reads
    suggested: str = ""  # "Clean up (from check-disk: used=93)": the option its from: suggests
    suggested_index: int | None = None
    handoff: str | None = None  # a handoff step: the playbook the linked incident runs
    holder: str | None = None  # who holds the approving role; None when nobody does
    waiting_for: str | None = None  # the step (in another track) this one waits for, while not done
    option_degradations: tuple[str | None, ...] = ()  # the degradation each option applies, if any
    post_to: str = ""  # a communicate step: where its message goes (channel · audience)


class LadderRow(NamedTuple):
    level: int
    who: str
    after: int
    notified: bool


class FlagView(NamedTuple):
    name: str
    summary: str
    applied: bool
    pending: bool
    flags: tuple[tuple[str, str], ...]


class Line(NamedTuple):
    seq: int
    at: datetime
    rel: float
    actor: str
    type: str
    text: str
    loud: str | None  # "warning" / "error": announced with a notification and the bell
    tone: str  # the style family of the line: "", note, warning, error, flag, reminder


class IncidentView(NamedTuple):
    id: str
    title: str
    playbook: str
    severity: str
    severities: tuple[str, ...]
    status: str
    drill: bool
    now: datetime
    opened_at: datetime
    acknowledged_by: str | None
    targets: tuple[tuple[str, float, bool, bool], ...]  # name, seconds left (negative: late), met, breached
    next_escalation: tuple[int, float] | None  # level, seconds until
    tracks: tuple[TrackView, ...]
    current: tuple[CurrentStep, ...]
    ladder: tuple[LadderRow, ...]
    flags: tuple[FlagView, ...]
    timeline: tuple[Line, ...]
    events: int
    last_seq: int
    degradations: tuple[str, ...] = ()
    altered: str = ""  # what is wrong with the incident's record, when it does not verify
    parameters: tuple[tuple[str, str, str], ...] = ()  # name, value, where it came from
    phase: str = "response"  # response, follow-up, closed, or resolved (no follow-up phase)
    roles: tuple[tuple[str, str, str | None], ...] = ()  # role id, title, holder (None: nobody)
    resolved_at: datetime | None = None  # once resolved, the screen's clocks stop here
    by_pager: bool = False  # levels after the first are the pager's own escalation (RUNBOOK_ESCALATION=pager)

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the incident opened, up to its resolution (time stops once resolved)."""
        return ((self.resolved_at or self.now) - self.opened_at).total_seconds()


def _command(state, step, now) -> str:
    """The exact command that runs (shell-quoted), filled by the one renderer (engine/texts.py)."""
    if step.run is not None:
        return one_line(texts.shown_command(state, step, now))
    if step.uses:
        try:
            params = texts.params(state, step, now)
        except RunbookError as exc:
            return one_line(f"{step.uses} (cannot run yet: {exc})")
        return one_line(f"{step.uses} {params}" if params else step.uses)
    return ""


def _tail(output: str) -> str:
    lines = output.rstrip("\n").splitlines()
    cut = ["[… earlier lines in `runbook incident show` and the export]"] if len(lines) > OUTPUT_LINES else []
    return shown("\n".join(cut + lines[-OUTPUT_LINES:]))


def _last_run(state, step) -> tuple:
    """The last run shown under the current step: its own, else (a decision) the run its from: reads."""
    run = state.steps[step.id]
    if not run.ran and step.answer_from and step.answer_from.step in state.steps:
        run = state.steps[step.answer_from.step]
    if not run.ran:
        return False, None, "", ""
    return True, run.exit_code, _tail(run.output), one_line(run.id)


def _suggested(state, step) -> tuple[str, int | None]:
    hint = answers.suggestion(state, step) if step.answer_from else None
    if hint is None:
        return "", None
    return one_line(f"{hint.index + 1}. {hint.label} (from {hint.source})"), hint.index


def _maybe(text: str | None) -> str | None:
    return None if text is None else one_line(text)


def build_view(state: IncidentState, now: datetime, altered: str = "") -> IncidentView:
    pb = state.playbook
    targets = []
    for name, (deadline, met) in timers.deadlines(state).items():
        targets.append((name, (deadline - now).total_seconds(), met is not None, name in state.breaches or
                        (met is not None and met > deadline)))
    nxt = timers.next_escalation(state)
    tracks, current = [], []
    current_ids = set(state.current_steps())  # in the follow-up phase, only the follow-up's
    for track in pb.tracks:
        rows = tuple(StepRow(s.id, one_line(texts.text(state, s.title, s, now)), s.kind, state.steps[s.id].status,
                             state.steps[s.id].attempt, state.current.get(track.id) == s.id,
                             s.kind == "restore" and s.degradation in state.degradations
                             and not state.degradations[s.degradation].touched) for s in track.steps)
        tracks.append(TrackView(track.id, one_line(track.title), _maybe(track.role), rows,
                                state.current.get(track.id)))
        step_id = state.current.get(track.id)
        if step_id and step_id in current_ids:
            step, run = pb.step(step_id), state.steps[step_id]
            left = None
            if step.timebox and run.started_at:
                left = step.timebox - (now - run.started_at).total_seconds()
            fill = lambda text: texts.text(state, text, step, now)  # noqa: E731 - the step's templates
            current.append(CurrentStep(
                track.id, step.id, one_line(fill(step.title)), step.kind, shown(fill(step.instructions or "")),
                shown(fill(step.question or "")), tuple(one_line(o.label) for o in step.options), left,
                _maybe(step.approval.by if step.approval else None), _maybe(run.approved_by if run.approved else None),
                step.automated, _command(state, step, now), _maybe(step.degradation), run.status,
                _maybe(step.role or track.role), shown(fill(step.template)) if step.template else None,
                one_line(run.last_poll or ""), shown(fill(step.approval.prompt)) if step.approval else "",
                *_last_run(state, step), *_suggested(state, step), _maybe(step.playbook),
                _maybe(state.holders.get(step.approval.by)) if step.approval else None,
                _maybe(waiting_for(state, step)),
                tuple(_maybe(o.degradation) for o in step.options),
                " · ".join(one_line(x) for x in (step.channel, step.audience) if x)))
    ladder = []
    policy = timers.ladder(state)  # the current severity's
    if policy:
        for index, level in enumerate(policy.levels, 1):
            people = timers.recipients(state, level, now)
            ladder.append(LadderRow(index, one_line(", ".join(p.name for p in people)), level.escalate_after,
                                    index <= state.escalation.reached))
    flags = []
    for name, spec in pb.degradations.items():
        deg = state.degradations[name]
        flags.append(FlagView(one_line(name), one_line(spec.summary or ""), deg.applied, deg.pending is not None,
                              tuple((one_line(flag), one_line(_show(value))) for flag, value in spec.set.items())))
    opened = state.opened_at
    lines = tuple(Line(e.seq, e.at, (e.at - opened).total_seconds(), one_line(e.actor), e.type, describe(e),
                       e.record.loud, e.record.tone)
                  for e in state.events[-TIMELINE_ROWS:])
    return IncidentView(
        state.id, one_line(state.title), one_line(pb.id), one_line(state.severity),
        tuple(one_line(lv.id) for lv in state.snapshot.levels), state.status,
        state.drill, now, opened, _maybe(state.acknowledged_by), tuple(targets),
        (nxt.data["level"], (nxt.at - now).total_seconds()) if nxt else None, tuple(tracks), tuple(current),
        tuple(ladder), tuple(flags), lines, len(state.events), state.last_seq,
        tuple(one_line(name) for name in pb.degradations), one_line(altered or state.tampered),
        tuple((one_line(name), one_line(str(value)), state.parameter_sources.get(name, ""))
              for name, value in state.parameters.items()),
        state.phase, tuple((one_line(rid), one_line(role.title), _maybe(state.holders.get(rid)))
                           for rid, role in pb.roles.items()), state.resolved_at, state.escalation.by_pager)


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class EngineGateway:
    """The TUI's engines, one per kind of work, so that slow work never blocks the screen.

    Views, timers (which may poll a check or page someone) and commands (which may flip flags
    or run an action) each get their own Engine on their own database connection, and their
    own lock. They share the clock and plugins. Engines on separate connections are as safe
    together as responders in separate processes: the store's sequence check arbitrates.
    """

    def __init__(self, engine, catalog=None):
        self.engine = engine
        self.catalog = catalog
        self.lock = threading.Lock()
        self._ticker, self._tick_lock = self._sibling(engine), threading.Lock()
        self._commander, self._command_lock = self._sibling(engine), threading.Lock()
        self.closed = False
        self._verified: dict[str, str] = {}

    @staticmethod
    def _sibling(engine):
        from runbook.engine import Engine
        from runbook.store import Store

        if engine.store.path == ":memory:":
            return engine
        worker = Engine(Store(engine.store.path), engine.clock, engine.plugins, engine.catalog)
        worker.catalog_loader = engine.catalog_loader
        return worker

    def close(self) -> None:
        """Refuse engine work from now on, without waiting (the screen is being torn down).

        A connection is closed here only if nothing is using it; one in use (a tick appending
        an escalation, a command running a step's action) is closed by that work when it ends,
        because closing a connection under a running statement crashes the process and the
        event half-way through its append must land. `wait_idle` waits for that work."""
        self.closed = True
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
        which belongs to whoever created the engine."""
        sibling = {self._tick_lock: self._ticker, self._command_lock: self._commander}.get(lock)
        if sibling is not None and sibling is not self.engine:
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
        with self._open(self.lock):
            state = self.engine.state(incident)
            if state.id not in self._verified:  # the whole record is checked once per incident shown
                self._verified[state.id] = "; ".join(self.engine.integrity(state.id).problems)
            return build_view(state, self.engine.clock.now(), self._verified[state.id])

    def debrief(self, incident: str) -> dict:
        """What the debrief shows: times against targets, steps, notes and action items."""
        from runbook.engine.metrics import MEASURES, metrics

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
