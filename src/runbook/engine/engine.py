"""The incident engine: commands checked against state, appended as events, side effects in two phases.

The TUI, the CLI, drills and simulations all drive this API; nothing else appends events.
Every command re-reads the incident, checks itself against the current state, and appends
with the expected sequence number; when another writer got there first it re-reads and tries
again, so a command that became invalid meanwhile ("already acknowledged by ana") fails with a
clear message instead of being recorded twice.

Commands and reads live here; each command builds event records (`engine/events.py`), and every
command that finishes a step takes its events from the one step transition
(`engine/transition.py`). Side effects in two phases (flag flips, actions, pages, reconcile) are
in `engine/effects.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook.catalog import parameters
from runbook.catalog.models import Step
from runbook.catalog.suggest import did_you_mean
from runbook.engine import answers, integrity, restarts, roles, timers
from runbook.engine.clock import SystemClock, iso, parse
from runbook.engine.effects import SYSTEM, Effects, in_flight, plugin_errors
from runbook.engine.events import (Acknowledged, ActionItemAdded, AlertStateChanged, ApprovalGranted, Closed, Event,
                                   EventFormatError, EventRecord, HandedOff, Mitigated, NoteAdded, Opened,
                                   ParametersSet, Resolved, SeverityChanged, StepStarted, apply, fold)
from runbook.engine.events.alerts import FIRING, RESOLVED
from runbook.engine.snapshot import Snapshot, documents_hash, take
from runbook.engine.state import FAILED, IncidentState
from runbook.engine.limits import check_size
from runbook.engine.ticks import fire_due
from runbook.engine.transition import Chosen, Done, Failed, Skipped, finish
from runbook.errors import CommandError, DocumentError, NotFoundError, PluginError
from runbook.store import ConflictError, Store
from runbook.text import check_actor

if TYPE_CHECKING:  # the loader pulls in PyYAML; only its types are needed here
    from runbook.catalog.loader import Catalog

RETRIES = 20
RESOLVE_WAIT = 10.0  # seconds `resolve` waits for a flag change in flight before refusing

__all__ = ["CommandError", "Engine", "MissingParameters", "ReasonNeeded", "SYSTEM"]


class ReasonNeeded(CommandError):
    """A command that must say why was given no reason (lowering the severity)."""


class MissingParameters(parameters.ParameterError):
    """Required parameters nobody gave; carries what was resolved, so a form can ask for the rest."""

    def __init__(self, message: str, playbook: str, resolved: parameters.Resolved):
        super().__init__(message)
        self.playbook, self.resolved = playbook, resolved


class Engine:
    def __init__(self, store: Store, clock=None, plugins=None, catalog: Catalog | None = None):
        self.store = store
        self.clock = clock or SystemClock()
        self.plugins = plugins
        self.catalog = catalog
        self.catalog_loader = None  # loads the catalog when a command needs it and none was given (a handoff)
        self.effects = Effects(self)
        self.resolve_wait = RESOLVE_WAIT
        self._states: dict[str, IncidentState] = {}
        # Snapshots taken and loaded per (catalog, playbook, drill): simulations open thousands of
        # incidents on one playbook, and a loaded Snapshot is immutable.
        self._taken: dict[tuple, tuple] = {}  # values keep the keyed objects alive, so ids stay unique

    # reading ------------------------------------------------------------------------------

    def resolve_id(self, incident: str) -> str:
        """The full incident id from what was typed: a unique start, any case, INC- optional (854: INC-854ABC)."""
        from runbook.engine.ids import resolve_incident_id

        return resolve_incident_id(self.store, incident)

    def state(self, incident: str) -> IncidentState:
        """The incident's state, caught up with every event appended so far (by anyone).

        A record too damaged to load (its snapshot or its opened event gone, an event of an unknown
        type) is a `RecordError` naming what is missing; `integrity` names every problem."""
        cached = self._states.get(incident)
        if cached is None:
            stored, events, row = self.store.read_record(incident)
            if stored is None and not events and row is None:
                full = self.resolve_id(incident)  # a unique prefix, or NotFoundError with suggestions
                if full != incident:
                    return self.state(full)
            if stored is None:
                raise integrity.RecordError(f"the record of {incident} is damaged: the playbook snapshot it runs on "
                                            f"is missing; `runbook incident verify {incident}` names every problem")
            start = integrity.first_event(events)
            if start:
                raise integrity.RecordError(f"the record of {incident} is damaged: {start}; "
                                            f"`runbook incident verify {incident}` names every problem")
            loaded = next((entry[4] for entry in self._taken.values() if entry[3] is stored), None)
            try:
                cached = fold(incident, events, loaded or Snapshot.load(stored))
            except EventFormatError as exc:
                raise integrity.RecordError(f"the record of {incident} cannot be read: {exc}; "
                                            f"`runbook incident verify {incident}` names every problem") from None
            if loaded is None and self.store.path != ":memory:":
                cached.tampered = "; ".join(integrity.quick(self.store, incident, row, stored, events, cached))
            self._states[incident] = cached
            return cached
        for stored_event in self.store.events(incident, after=cached.last_seq):
            apply(cached, Event.from_stored(stored_event))
        return cached

    def list(self, **filters) -> list[dict]:
        """Summary rows, newest first; each says whether its summary agrees with its log
        (`log_intact`, and `log_problem` saying how not), cheaply: the count of events, the status
        implied by which of acknowledged/mitigated/resolved events exist, and the drill flag,
        severity, title, playbook and opening time the log says (two indexed queries for the rows
        shown). Rows the filters would leave out only because their status or drill column was
        edited ("resolved" with no resolved event) are listed too. `integrity` checks everything."""
        rows = self.store.incidents(**filters)
        shown = {r["id"] for r in rows}
        if not filters.get("status"):
            hidden = [r for r in self.store.hidden_by_summary(bool(filters.get("open_only")), filters.get("drills"))
                      if r["id"] not in shown
                      and (not filters.get("playbook") or r["playbook"] == filters["playbook"])
                      and (not filters.get("since") or (r["opened_at"] or "") >= filters["since"])]
            if hidden:
                rows = sorted(sorted(rows + hidden, key=lambda r: r["id"]), key=lambda r: r["opened_at"] or "",
                              reverse=True)
        facts = self.store.log_facts([r["id"] for r in rows])
        for row in rows:
            problems = _listing_problems(row, facts.get(row["id"]))
            row["log_intact"] = not problems
            row["log_problem"] = "; ".join(problems)
        return rows

    def without_summary(self) -> list[str]:
        """Incidents whose events or snapshot remain but whose summary row was deleted: no listing
        would show them otherwise."""
        return self.store.without_summary()

    def integrity(self, incident: str) -> integrity.Integrity:
        """Every check of the incident's record: hash chain, events, summary, snapshot, chain key.
        Works on a record too damaged to load (no snapshot, no summary row, unknown events)."""
        return integrity.check(self.store, self.resolve_id(incident))

    # appending ----------------------------------------------------------------------------

    def _append(self, state: IncidentState, actor: str, records: list[EventRecord]) -> list[Event]:
        for rec in records:
            if not isinstance(rec, EventRecord):
                raise TypeError(f"the engine appends event records (runbook.engine.events), not {rec!r}")
        now = iso(self.clock.now())
        stored = self.store.append(state.id, state.last_seq, [
            {"ts": now, "actor": actor, "type": r.type, "data": r.to_data(), "summary": r.project(now)}
            for r in records])
        at = parse(now)
        appended = [Event(e.seq, at, e.actor, r, e.data, e.hash) for e, r in zip(stored, records)]
        for event in appended:
            apply(state, event)
        self._observe(state, appended)
        return appended

    def _command(self, incident: str, actor: str, build) -> list[Event]:
        """Check-and-append with optimistic concurrency: on a conflict re-read, re-check, retry.

        `build(state)` returns the event records to append (or none), or raises CommandError."""
        check_actor(actor)
        for _ in range(RETRIES):
            state = self.state(incident)
            records = build(state)
            if not records:
                return []
            try:
                appended = self._append(state, actor, records)
            except ConflictError:
                continue
            if self.plugins is not None:
                self._record_observer_failures(self.plugins.take_observer_failures())
            return appended
        raise ConflictError(f"incident {incident} kept changing under this command; try again")

    def _observe(self, state: IncidentState, appended: list[Event]) -> None:
        """Hand appended events to the plugins' observers, which run on the host's own threads."""
        if self.plugins is not None:
            for event in appended:
                self.plugins.observe(state.id, event)

    def _record_observer_failures(self, failures) -> None:
        """Observers never write (their threads would interleave with this connection's
        transactions); what they failed is appended here, to the incident each was observing."""
        by_incident: dict[str, list] = {}
        for incident, failure in failures:
            by_incident.setdefault(incident, []).extend(plugin_errors([failure]))
        for incident, records in by_incident.items():
            self._command(incident, SYSTEM, lambda s, records=records: records)

    def close(self, grace: float | None = None) -> None:
        """Before exit: give event observers still working up to `grace` seconds (default: the
        plugin settings'), then record what failed or did not finish. The store stays open."""
        if self.plugins is not None:
            self._record_observer_failures(self.plugins.drain(grace))

    # opening ------------------------------------------------------------------------------

    def open(self, playbook: str, actor: str, symptom: str | None = None, severity: str | None = None,
             drill: bool = False, incident: str | None = None, rehearse: str | None = None,
             live: bool = False, params: dict | None = None, labels: dict | None = None,
             form: dict | None = None, from_incident: str | None = None) -> IncidentState:
        """Open an incident on `playbook`; `rehearse` names a Drill whose injects and targets apply.

        `labels` are the alert's labels: the playbook's `severity_from` maps one of them to the
        severity, unless `severity` is given (an explicit severity wins). The playbook's parameters
        come from `params` (--param), `form` (the TUI), the labels (through each parameter's label:)
        and defaults; every value is checked before anything is recorded (ParameterError,
        MissingParameters). `from_incident` is the incident handing off to this one."""
        check_actor(actor)
        if self.catalog is None:
            raise CommandError("opening an incident needs the playbook catalog")
        _refuse_if_broken(self.catalog, playbook, "Playbook")
        doc = self.catalog.find(playbook, "Playbook")
        if doc is None:
            left_out = " or `runbook validate`: invalid documents are left out" if self.catalog.errors else ""
            raise NotFoundError(f"no playbook '{playbook}'{did_you_mean(playbook, self.catalog.ids('Playbook'))} "
                                f"(see `runbook list --kind Playbook`{left_out})")
        drill_doc = None
        if rehearse is not None:
            _refuse_if_broken(self.catalog, rehearse, "Drill")
            drill_doc = self.catalog.find(rehearse, "Drill")
            if drill_doc is None:
                raise NotFoundError(f"no drill '{rehearse}'{did_you_mean(rehearse, self.catalog.ids('Drill'))}")
            drill = True
        key = (id(self.catalog), id(doc), id(drill_doc))
        if key not in self._taken:
            stored = take(self.catalog, doc, drill_doc)
            self._taken[key] = (self.catalog, doc, drill_doc, stored, Snapshot.load(stored),
                                documents_hash(stored["documents"]))
        stored, snapshot, digest = self._taken[key][3:]
        pb = snapshot.playbook
        if symptom is not None and symptom not in {s.id for s in pb.symptoms}:
            raise CommandError(f"playbook {pb.id} has no symptom '{symptom}'"
                               f"{did_you_mean(symptom, [s.id for s in pb.symptoms])}; symptoms: "
                               f"{', '.join(s.id for s in pb.symptoms) or 'none'}")
        severity, source = _opening_severity(pb, severity, labels or {})
        if snapshot.levels and snapshot.level(severity) is None:
            raise CommandError(f"unknown severity '{severity}', expected one of: "
                               f"{', '.join(lv.id for lv in snapshot.levels)}")
        if symptom is None and pb.symptoms:
            symptom = pb.symptoms[0].id
        given = parameters.resolve(pb, params, labels, form)
        if given.missing:
            raise MissingParameters(parameters.missing_message(pb, given.missing), pb.id, given)
        import secrets

        incident = incident or f"{'DRL' if drill else 'INC'}-{secrets.token_hex(3).upper()}"
        now = iso(self.clock.now())
        first = [(actor, Opened(pb.id, pb.title, severity, pb.service, symptom, drill, stored["hash"], rehearse,
                                bool(live and drill), digest, source, from_incident))]
        if given.values:
            first.append((actor, ParametersSet(given.values, given.sources)))
        first += [(SYSTEM, StepStarted(track.steps[0].id, track.id, 1)) for track in pb.response_tracks if track.steps]
        self.store.create_incident(incident, stored, {"playbook": pb.id, "title": pb.title, "service": pb.service,
                                                      "severity": severity, "drill": drill},
                                   [{"ts": now, "actor": who, "type": r.type, "data": r.to_data()} for who, r in first])
        state = self.state(incident)
        self._observe(state, state.events)
        if self.plugins is not None:
            self._record_observer_failures(self.plugins.take_observer_failures())
        return state

    def set_parameter(self, incident: str, actor: str, name: str, value: str) -> list[Event]:
        """Set (or change) one parameter mid-incident, checked like the values given at open:
        the next server of a "drain the next server" loop."""
        def build(state):
            self.require_live(state)
            checked = parameters.check(state.playbook, name, value, "param")
            if state.parameters.get(name) == checked:
                raise CommandError(f"parameter {name} is already {checked!r}")
            return [ParametersSet({name: checked}, {name: "param"})]
        return self._command(incident, actor, build)

    # checks -------------------------------------------------------------------------------

    @staticmethod
    def require_live(state: IncidentState) -> None:
        if state.closed:
            raise CommandError(f"incident {state.id} is closed; only notes and action items can be added")
        if state.in_followup:
            raise CommandError(f"incident {state.id} is resolved and in its follow-up phase; only follow-up steps, "
                               "roles, notes, action items and restoring leftover degradations are allowed")
        if state.resolved:
            raise CommandError(f"incident {state.id} is resolved; only notes can be added")

    def _require_step_phase(self, state: IncidentState, step: Step) -> None:
        """Response steps while the incident is live; follow-up steps once it is resolved, until closed."""
        followup = state.playbook.followup is not None and step.track == state.playbook.followup.id
        if not followup or state.closed or not state.resolved:
            self.require_live(state)
        if followup and not state.resolved:
            raise CommandError(f"step '{step.id}' is a follow-up step; it becomes current when the incident is "
                               "resolved")

    def _step(self, state: IncidentState, step_id: str | None) -> Step:
        """The named step, or the one current step (main track first) when none is named."""
        pb = state.playbook
        if step_id is None:
            current = state.current_steps()
            if not current:
                raise CommandError(f"incident {state.id} has no current step; every track is finished")
            step_id = current[0]
        try:
            step = pb.step(step_id)
        except KeyError:
            raise CommandError(f"playbook {pb.id} has no step '{step_id}'"
                               f"{did_you_mean(step_id, [s.id for s in pb.steps])}") from None
        return step

    def _current(self, state: IncidentState, step_id: str | None) -> Step:
        if step_id is None and not state.in_followup:
            self.require_live(state)  # "resolved" says more than "no current step"
        step = self._step(state, step_id)
        self._require_step_phase(state, step)
        if state.current.get(step.track) != step.id:
            now = state.current.get(step.track)
            where = f"the current step of that track is '{now}'" if now else "that track is finished"
            raise CommandError(f"step '{step.id}' is not current; {where}")
        return step

    @staticmethod
    def _approved(state: IncidentState, step: Step) -> None:
        if step.approval and not state.steps[step.id].approved:
            raise CommandError(f"step '{step.id}' needs approval by {step.approval.by} first "
                               f"(runbook incident approve {state.id} {step.id})")

    # commands -----------------------------------------------------------------------------

    def acknowledge(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self.require_live(state)
            if state.acknowledged_at:
                raise CommandError(f"incident {state.id} was already acknowledged by {state.acknowledged_by} "
                                   f"at {state.acknowledged_at:%H:%M:%S}")
            return [Acknowledged()]
        return self._command(incident, actor, build)

    def complete(self, incident: str, actor: str, step_id: str | None = None, outcome: str = "") -> list[Event]:
        check_size("the outcome", outcome)
        state = self.state(incident)
        step = self._current(state, step_id)
        roles.refuse_if_waiting(state, step)
        if step.kind in ("decision", "choose"):
            options = ", ".join(f"{i}. {o.label}" for i, o in enumerate(step.options, 1))
            raise CommandError(f"step '{step.id}' is a {step.kind}; choose an option: {options}")
        if step.kind == "handoff":
            return self._hand_off(state, actor, step, outcome)
        if step.kind in ("degrade", "restore"):
            self._approved(state, step)
            deg = state.degradations[step.degradation]
            already = deg.applied if step.kind == "degrade" else not deg.applied
            if not already:
                return self.effects.flip(incident, actor, step.degradation,
                                         "apply" if step.kind == "degrade" else "restore", step.id, None)
            outcome = outcome or (f"{step.degradation} was already applied" if step.kind == "degrade"
                                  else f"{step.degradation} was not applied; nothing to restore")

        def build(state):
            current = self._current(state, step.id)
            self._approved(state, current)
            roles.refuse_if_waiting(state, current)
            return finish(state, current, Done(outcome))
        return self._command(incident, actor, build)

    def _hand_off(self, state: IncidentState, actor: str, step: Step, outcome: str) -> list[Event]:
        """Open the linked incident on the step's playbook (a drill hands off to a drill), then
        record it on this one with the step done. The new incident gets this one's values of the
        parameters it declares; it names this one in its `opened` event."""
        self._approved(state, step)
        if self.catalog is None and self.catalog_loader is not None:
            self.catalog = self.catalog_loader()
        if self.catalog is None or self.catalog.find(step.playbook, "Playbook") is None:
            raise NotFoundError(f"cannot hand off: no playbook '{step.playbook}' in the catalog"
                                + (" (it has errors; `runbook validate`)" if self.catalog is not None
                                   and self.catalog.errors else ""))
        target = self.catalog.find(step.playbook, "Playbook").model
        carried = {name: value for name, value in state.parameters.items() if name in target.parameters}
        opened = self.open(step.playbook, actor, drill=state.drill, params=carried, from_incident=state.id)

        def build(current):
            checked = self._current(current, step.id)
            return [HandedOff(step.id, step.playbook, opened.id),
                    *finish(current, checked, Done(outcome or f"handed off to {opened.id}"))]
        return self._command(state.id, actor, build)

    def skip(self, incident: str, actor: str, step_id: str | None, reason: str) -> list[Event]:
        if not reason.strip():
            raise CommandError("skipping a step needs a reason")
        check_size("the reason", reason)

        def build(state):
            step = self._current(state, step_id)
            return finish(state, step, Skipped(reason))
        return self._command(incident, actor, build)

    def fail(self, incident: str, actor: str, step_id: str | None, reason: str = "") -> list[Event]:
        check_size("the reason", reason)

        def build(state):
            step = self._current(state, step_id)
            if state.steps[step.id].status == FAILED:
                raise CommandError(f"step '{step.id}' has already failed; complete it to retry or skip it")
            return finish(state, step, Failed(reason or "failed"))
        return self._command(incident, actor, build)

    def choose(self, incident: str, actor: str, option: str | None, step_id: str | None = None,
               suggested: bool = False) -> list[Event]:
        """Answer a decision with `option` (its number or label), or with the option its from:
        suggests (`suggested`); the record says whether the choice followed the suggestion."""
        state = self.state(incident)
        step = self._current(state, step_id)
        if step.kind not in ("decision", "choose"):
            raise CommandError(f"step '{step.id}' is a {step.kind} step, not a decision")
        roles.refuse_if_waiting(state, step)
        if suggested:
            hint = answers.suggestion(state, step)
            if hint is None:
                raise CommandError(answers.why_none(state, step))
            index = hint.index
        else:
            index = _option_index(step, option)
        chosen = step.options[index]
        if chosen.degradation:
            self._approved(state, step)
            return self.effects.flip(incident, actor, chosen.degradation, "apply", step.id, index)

        def build(state):
            self._current(state, step.id)
            self._approved(state, step)
            roles.refuse_if_waiting(state, step)
            hint = answers.suggestion(state, step)
            if suggested and (hint is None or hint.index != index):
                raise CommandError(f"the suggestion for step '{step.id}' changed meanwhile; look again")
            return finish(state, step, Chosen(index, hint.label if hint else None))
        return self._command(incident, actor, build)

    def approve(self, incident: str, actor: str, step_id: str | None = None, override: str = "") -> list[Event]:
        """Approve a step's gate: by the holder of its approving role, by anyone when nobody holds
        it (the event says so), or by someone else with an `override` reason, recorded."""
        check_size("the reason", override)

        def build(state):
            step = self._step(state, step_id)
            self._require_step_phase(state, step)
            if not step.approval:
                raise CommandError(f"step '{step.id}' has no approval gate")
            if state.current.get(step.track) != step.id:
                raise CommandError(f"step '{step.id}' is not current yet; approve it when the flow reaches it")
            if state.steps[step.id].approved:
                raise CommandError(f"step '{step.id}' was already approved by {state.steps[step.id].approved_by}")
            holder, why = roles.approval(state, step, actor, override)
            return [ApprovalGranted(step.id, step.approval.by, holder, why)]
        return self._command(incident, actor, build)

    def severity(self, incident: str, actor: str, severity: str, reason: str = "") -> list[Event]:
        check_size("the reason", reason)

        def build(state):
            self.require_live(state)
            levels = [lv.id for lv in state.snapshot.levels]
            if levels and severity not in levels:
                raise CommandError(f"unknown severity '{severity}', expected one of: {', '.join(levels)}"
                                   f"{did_you_mean(severity, levels)}")
            if severity == state.severity:
                raise CommandError(f"incident {state.id} is already {severity}")
            if not reason.strip() and state.snapshot.rank(severity) > state.snapshot.rank(state.severity):
                raise ReasonNeeded(f"lowering the severity of {state.id} from {state.severity} to {severity} "
                                   "needs a reason")
            return [SeverityChanged(state.severity, severity, reason.strip())]
        return self._command(incident, actor, build)

    def restart(self, incident: str, actor: str, step_id: str, reason: str) -> list[Event]:
        """Make `step_id` current again in its track, with a reason: it and every later step of the
        track are pending again (their next visits are new attempts). Only a step the incident has
        already reached; never after resolve. Flags stay as they are: restore them by hand or with
        the track's own restore step."""
        if not reason.strip():
            raise ReasonNeeded("restarting from a step needs a reason")
        check_size("the reason", reason)

        def build(state):
            self.require_live(state)
            if step_id not in state.steps:
                pb = state.playbook
                raise CommandError(f"playbook {pb.id} has no step '{step_id}'"
                                   f"{did_you_mean(step_id, [s.id for s in pb.steps])}")
            return restarts.records(state, state.playbook.step(step_id), reason.strip())
        return self._command(incident, actor, build)

    def alert_resolved(self, incident: str, actor: str, alert: str = "") -> list[Event]:
        """The alert stopped firing at its source: severity rises wait (their clock stops)."""
        return self.alert_state(incident, actor, RESOLVED, alert)

    def alert_firing(self, incident: str, actor: str, alert: str = "") -> list[Event]:
        """The alert fires again: severity rises count on from where they stopped."""
        return self.alert_state(incident, actor, FIRING, alert)

    def alert_state(self, incident: str, actor: str, state_name: str, alert: str = "") -> list[Event]:
        """Record what the alert's source says. Saying what is already so records nothing (an
        intake may repeat itself); allowed after resolve, like a note: it is what the source said."""
        if state_name not in (FIRING, RESOLVED):
            raise CommandError(f"an alert is {FIRING} or {RESOLVED}, not '{state_name}'"
                               f"{did_you_mean(state_name, [FIRING, RESOLVED])}")
        check_size("the alert name", alert)

        def build(state):
            if state.alert_firing == (state_name == FIRING):
                return []
            return [AlertStateChanged(state_name, alert)]
        return self._command(incident, actor, build)

    def note(self, incident: str, actor: str, text: str) -> list[Event]:
        if not text.strip():
            raise CommandError("a note needs text")
        check_size("the note", text)
        return self._command(incident, actor, lambda state: [NoteAdded(text)])

    def add_action_item(self, incident: str, actor: str, text: str, owner: str = "") -> list[Event]:
        """An action item from the debrief or postmortem; allowed after resolve, like notes."""
        if not text.strip():
            raise CommandError("an action item needs text")
        check_size("the action item", text)
        return self._command(incident, actor, lambda state: [ActionItemAdded(text, owner)])

    def mitigate(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self.require_live(state)
            if state.mitigated_at:
                raise CommandError(f"incident {state.id} was already marked mitigated at {state.mitigated_at:%H:%M:%S}")
            return [Mitigated()]
        return self._command(incident, actor, build)

    def resolve(self, incident: str, actor: str, keep_degradations: bool = False) -> list[Event]:
        """Resolve, restoring every degradation fully or partly applied (unless kept). Never while a
        flag change is in flight: waits up to `resolve_wait` seconds for its owner to finish it
        (settling it first when its owner is gone), then refuses, naming it."""
        self.require_live(self.state(incident))
        settled = self.effects.settle_in_flight(incident, self.resolve_wait)
        state = self.state(incident)
        restored: list[Event] = []
        if not keep_degradations:
            for name in [name for name, deg in state.degradations.items() if deg.touched]:
                restored += self.restore(incident, actor, name)
            state = self.state(incident)
            still = [name for name, deg in state.degradations.items() if deg.touched]
            if still:
                reasons = [e.record.reason for e in restored if e.type == "degradation_failed"]
                raise PluginError(f"not resolved: could not restore {', '.join(still)}: {'; '.join(reasons)}. "
                                  "Fix the flag backend and resolve again, or resolve --keep-degradations")

        def build(state):
            # checked on the very state the event is appended to: no change may start in between
            self.require_live(state)
            busy = [deg for deg in state.degradations.values() if deg.pending]
            if busy:
                raise CommandError(f"not resolved: {in_flight(busy[0])}")
            kept = [name for name, deg in state.degradations.items() if deg.touched]
            if kept and not keep_degradations:
                raise CommandError(f"not resolved: {', '.join(kept)} was applied meanwhile; resolve again")
            followup = state.playbook.followup
            if followup is None:
                return [Resolved(kept)]
            first = followup.steps[0].id
            return [Resolved(kept, followup=True), StepStarted(first, followup.id, state.steps[first].attempt + 1)]
        return settled + restored + self._command(incident, actor, build)

    def close_incident(self, incident: str, actor: str, reason: str = "") -> list[Event]:
        """Close a resolved incident before its follow-up steps are all done (they close it when
        they are); steps left open need a reason."""
        check_size("the reason", reason)

        def build(state):
            if state.closed:
                raise CommandError(f"incident {state.id} was already closed at {state.closed_at:%H:%M:%S}")
            if not state.resolved:
                raise CommandError(f"incident {state.id} is not resolved yet; resolve it first "
                                   f"(runbook incident resolve {state.id})")
            if state.playbook.followup is None:
                raise CommandError(f"incident {state.id} has no follow-up phase; resolving it was final")
            left = state.current_steps()
            if left and not reason.strip():
                raise ReasonNeeded(f"closing {state.id} with follow-up step{'s' if len(left) > 1 else ''} "
                                   f"{', '.join(left)} not done needs a reason (--reason)")
            return [Closed(reason.strip(), left)]
        return self._command(incident, actor, build)

    def assign(self, incident: str, actor: str, role: str, person: str) -> list[Event]:
        """Give a role to a person; a handoff when someone held it (the event names both)."""
        def build(state):
            if not state.in_followup:
                self.require_live(state)
            return [roles.assignment(state, role, person)]
        return self._command(incident, actor, build)

    def escalate_now(self, incident: str, actor: str) -> list[Event]:
        state = self.state(incident)
        self.require_live(state)
        policy = timers.ladder(state)
        if policy is None or not policy.levels:
            raise CommandError(f"incident {state.id} has no escalation policy at {state.severity}")
        esc = state.escalation
        level, rnd = (1, 0) if esc.paged == 0 else (esc.level + 1, esc.round)
        if level > len(policy.levels):
            level, rnd = 1, rnd + 1
        return self.effects.escalate(incident, actor, level, rnd, self.clock.now(), "manual")

    def degrade(self, incident: str, actor: str, name: str, step: str | None = None,
                option: int | None = None) -> list[Event]:
        if step is None:
            self._gate_of(self.state(incident), name)
        return self.effects.flip(incident, actor, name, "apply", step, option)

    def _gate_of(self, state: IncidentState, name: str) -> None:
        """Applying a degradation by hand must not get round the approval gate of a current step
        (or a current step's option) that would apply the same degradation."""
        for step_id in state.current_steps():
            step = state.playbook.step(step_id)
            if (step.kind == "degrade" and step.degradation == name) or \
                    any(option.degradation == name for option in step.options):
                self._approved(state, step)

    def restore(self, incident: str, actor: str, name: str, step: str | None = None) -> list[Event]:
        return self.effects.flip(incident, actor, name, "restore", step, None)

    def run(self, incident: str, actor: str, step_id: str | None = None) -> list[Event]:
        """Run the current step's automation (run: or uses:) and record the outcome."""
        state = self.state(incident)
        step = self._current(state, step_id)
        if not step.automated:
            raise CommandError(f"step '{step.id}' has nothing to run; complete it when done")
        self._approved(state, step)
        roles.refuse_if_waiting(state, step)
        if self.plugins is None:
            raise CommandError("no plugins loaded: cannot run actions")
        if step.kind == "wait":
            return self.effects.poll(state, step.id)  # checking a wait by hand is one more poll
        return self.effects.run(incident, actor, step)

    def reconcile(self, incident: str, force: bool = False) -> list[Event]:
        """Settle side effects a crash left half-done: flag intents, actions, unsent notifications.

        Only intents older than a minute are touched unless `force` (another process may still
        be in the middle of them).
        """
        return self.effects.reconcile(incident, force)

    # time ---------------------------------------------------------------------------------

    def tick(self, incident: str) -> list[Event]:
        """Fire everything that is due by now, earliest first (a late tick catches up in order);
        a rehearsal whose end conditions hold is then over: noted and resolved."""
        fired = fire_due(self, incident)
        state = self.state(incident)
        over = drill_over(state)
        if over:
            try:
                fired += self.note(incident, SYSTEM, f"drill over: {over}")
                fired += self.resolve(incident, SYSTEM)
            except CommandError:
                pass  # another responder's tick ended it first
        return fired


def drill_over(state: IncidentState) -> str | None:
    """What ended the rehearsal, when every one of its drill's `ends` conditions holds (else None)."""
    drill = state.snapshot.drill
    if drill is None or not drill.ends or state.resolved:
        return None
    finished = ("done", "skipped")
    main = state.playbook.tracks[0].steps if state.playbook.tracks else ()
    for condition in drill.ends:
        if condition == "acknowledged":
            met = state.acknowledged_at is not None
        elif condition == "mitigated":
            met = state.mitigated_at is not None
        elif condition == "first-step":
            met = bool(main) and state.steps[main[0].id].status in finished
        else:
            met = condition in state.steps and state.steps[condition].status in finished
        if not met:
            return None
    return " and ".join(drill.ends)


def _refuse_if_broken(catalog, doc_id: str, kind: str) -> None:
    """DocumentError listing them when the catalog has errors about `doc_id` itself: a document of
    that id left out for failing its schema, or several documents sharing the id. Opening must
    never pick whichever of them happens to load, nor say "no playbook" when one is broken."""
    problems = catalog.problems_with(doc_id, kind) if hasattr(catalog, "problems_with") else []
    if problems:
        what = "drill" if kind == "Drill" else "playbook"
        count = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        raise DocumentError(problems, f"cannot open an incident on {what} '{doc_id}': the catalog has {count} "
                                      f"about documents with that id (fix them; `runbook validate` checks the "
                                      "catalog):")


def _listing_problems(row: dict, facts) -> list[str]:
    """How a summary row disagrees with what its log cheaply says (Store.log_facts)."""
    if facts is None:
        return ["the log holds no events"]
    count, last, said = facts
    problems = []
    if row["last_seq"] is None:
        problems.append("the summary has no event count")
    elif not count == last == row["last_seq"]:
        problems.append(f"the log holds {count} events but the summary counts {row['last_seq']}")
    for column, value in said.items():
        if row.get(column) != value:
            problems.append(f"the summary says {column} {row.get(column)!r} but the log says {value!r}")
    return problems


def _opening_severity(pb, severity: str | None, labels: dict) -> tuple[str, str | None]:
    """The severity an incident opens at and where it came from (None: the playbook's default,
    with no alert label to say otherwise)."""
    if severity is not None:
        return severity, "given at open"
    rule = pb.severity_from
    if rule is None or not labels:
        return pb.severity, None
    if rule.label not in labels:
        return pb.severity, f"playbook default; no {rule.label} label"
    label = f"label {rule.label}={labels[rule.label]}"
    mapped = rule.severity(labels)
    if mapped is not None:
        return mapped, f"from {label}"
    return pb.severity, f"playbook default; {label} is not mapped"


def _option_index(step: Step, option: str) -> int:
    labels = [o.label for o in step.options]
    text = str(option).strip()
    if text.isdigit() and 1 <= int(text) <= len(labels):
        return int(text) - 1
    exact = [i for i, label in enumerate(labels) if label.lower() == text.lower()]
    prefix = [i for i, label in enumerate(labels) if label.lower().startswith(text.lower())]
    found = exact or prefix
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"{i}. {label}" for i, label in enumerate(labels, 1))
    raise CommandError(f"'{option}' is not {'one' if not found else 'exactly one'} of the options of step "
                       f"'{step.id}': {listed}")
