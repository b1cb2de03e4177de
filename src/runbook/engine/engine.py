"""The incident engine: commands checked against state, appended as events, side effects in two phases.

The TUI, the CLI, drills and simulations all drive this API; nothing else appends events.
Every command re-reads the incident, checks itself against the current state, and appends
with the expected sequence number; when another writer got there first it re-reads and tries
again, so a command that became invalid meanwhile ("already acknowledged by ana") fails with a
clear message instead of being recorded twice.

Side effects (flag flips, actions, notifications) are recorded in two phases: the intent is
appended first, then the plugin is called, then the result is appended. `reconcile` settles
an intent left without a result by a crash, by asking the flag backend what is true now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datetime import datetime, timedelta

from runbook.catalog.flow import default_next
from runbook.catalog.models import END, Step
from runbook.catalog.suggest import did_you_mean
from runbook.engine import timers
from runbook.engine.clock import SystemClock, iso
from runbook.engine.snapshot import Snapshot, take
from runbook.engine.state import ACTIVE, FAILED, Event, IncidentState, apply, fold
from runbook.errors import CommandError, NotFoundError, PluginError, RunbookError  # CommandError: re-exported
from runbook.pluginapi import ActionRequest, EscalationNotice, FlagState
from runbook.store import ConflictError, Store

if TYPE_CHECKING:  # the loader pulls in PyYAML; only its types are needed here
    from runbook.catalog.loader import Catalog

SYSTEM = "runbook"
RETRIES = 20
STALE_INTENT = timedelta(seconds=60)


class Engine:
    def __init__(self, store: Store, clock=None, plugins=None, catalog: Catalog | None = None):
        self.store = store
        self.clock = clock or SystemClock()
        self.plugins = plugins
        self.catalog = catalog
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
        """The incident's state, caught up with every event appended so far (by anyone)."""
        cached = self._states.get(incident)
        if cached is None:
            stored = self.store.snapshot(incident)
            if stored is None:
                full = self.resolve_id(incident)  # a unique prefix, or NotFoundError with suggestions
                return self.state(full)
            loaded = next((entry[4] for entry in self._taken.values() if entry[3] is stored), None)
            cached = fold(incident, self.store.events(incident), loaded or Snapshot.load(stored))
            self._states[incident] = cached
            return cached
        for stored_event in self.store.events(incident, after=cached.last_seq):
            apply(cached, Event.from_stored(stored_event))
        return cached

    def list(self, **filters) -> list[dict]:
        return self.store.incidents(**filters)

    # appending ----------------------------------------------------------------------------

    def _append(self, state: IncidentState, actor: str, events: list[tuple[str, dict]]) -> list[Event]:
        now = iso(self.clock.now())
        stored = self.store.append(state.id, state.last_seq, [{"ts": now, "actor": actor, "type": t, "data": d}
                                                              for t, d in events])
        appended = [Event.from_stored(e) for e in stored]
        for event in appended:
            apply(state, event)
        if self.plugins is not None:
            for event in appended:
                for failure in self.plugins.event_appended(event):
                    self._record_plugin_error(state, failure)
        return appended

    def _command(self, incident: str, actor: str, build) -> list[Event]:
        """Check-and-append with optimistic concurrency: on a conflict re-read, re-check, retry."""
        for _ in range(RETRIES):
            state = self.state(incident)
            events = build(state)
            if not events:
                return []
            try:
                return self._append(state, actor, events)
            except ConflictError:
                continue
        raise ConflictError(f"incident {incident} kept changing under this command; try again")

    def _record_plugin_error(self, state: IncidentState, failure) -> None:
        if failure.hook == "event_appended":
            return  # an observer failing must not cause an endless chain of events
        self._command(state.id, SYSTEM, lambda s: [("plugin_error", failure.to_dict())])

    # opening ------------------------------------------------------------------------------

    def open(self, playbook: str, actor: str, symptom: str | None = None, severity: str | None = None,
             drill: bool = False, incident: str | None = None, rehearse: str | None = None,
             live: bool = False) -> IncidentState:
        """Open an incident on `playbook`; `rehearse` names a Drill whose injects and targets apply."""
        if self.catalog is None:
            raise CommandError("opening an incident needs the playbook catalog")
        doc = self.catalog.find(playbook, "Playbook")
        if doc is None:
            raise NotFoundError(f"no playbook '{playbook}'{did_you_mean(playbook, self.catalog.ids('Playbook'))} "
                                "(see `runbook list --kind Playbook`)")
        drill_doc = None
        if rehearse is not None:
            drill_doc = self.catalog.find(rehearse, "Drill")
            if drill_doc is None:
                raise NotFoundError(f"no drill '{rehearse}'{did_you_mean(rehearse, self.catalog.ids('Drill'))}")
            drill = True
        key = (id(self.catalog), id(doc), id(drill_doc))
        if key not in self._taken:
            stored = take(self.catalog, doc, drill_doc)
            self._taken[key] = (self.catalog, doc, drill_doc, stored, Snapshot.load(stored))
        stored, snapshot = self._taken[key][3:]
        pb = snapshot.playbook
        if symptom is not None and symptom not in {s.id for s in pb.symptoms}:
            raise CommandError(f"playbook {pb.id} has no symptom '{symptom}'"
                               f"{did_you_mean(symptom, [s.id for s in pb.symptoms])}; symptoms: "
                               f"{', '.join(s.id for s in pb.symptoms) or 'none'}")
        severity = severity or pb.severity
        if snapshot.levels and snapshot.level(severity) is None:
            raise CommandError(f"unknown severity '{severity}', expected one of: "
                               f"{', '.join(lv.id for lv in snapshot.levels)}")
        if symptom is None and pb.symptoms:
            symptom = pb.symptoms[0].id
        import secrets

        incident = incident or f"{'DRL' if drill else 'INC'}-{secrets.token_hex(3).upper()}"
        now = iso(self.clock.now())
        first = [{"ts": now, "actor": actor, "type": "opened", "data": {
            "playbook": pb.id, "title": pb.title, "service": pb.service, "severity": severity,
            "symptom": symptom, "drill": drill, "snapshot": stored["hash"], "rehearsal": rehearse,
            "live": bool(live and drill)}}]
        for track in pb.tracks:
            if track.steps:
                first.append({"ts": now, "actor": SYSTEM, "type": "step_started",
                              "data": {"step": track.steps[0].id, "track": track.id, "attempt": 1}})
        self.store.create_incident(incident, stored, {"playbook": pb.id, "title": pb.title, "service": pb.service,
                                                      "severity": severity, "drill": drill}, first)
        state = self.state(incident)
        if self.plugins is not None:
            for event in state.events:
                self.plugins.event_appended(event)
        return state

    # checks -------------------------------------------------------------------------------

    @staticmethod
    def _live(state: IncidentState) -> None:
        if state.resolved:
            raise CommandError(f"incident {state.id} is resolved; only notes can be added")

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
        step = self._step(state, step_id)
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

    # flow ---------------------------------------------------------------------------------

    def _advance(self, state: IncidentState, step: Step, target: str) -> list[tuple[str, dict]]:
        track = next(t for t in state.playbook.tracks if t.id == step.track)
        if target == END:
            return [("track_finished", {"track": track.id})]
        attempt = state.steps[target].attempt + 1
        return [("step_started", {"step": target, "track": track.id, "attempt": attempt})]

    def _next(self, state: IncidentState, step: Step) -> str:
        track = next(t for t in state.playbook.tracks if t.id == step.track)
        return default_next(track, step)

    @staticmethod
    def _mitigation(state: IncidentState, mitigates: bool, step: str) -> list[tuple[str, dict]]:
        return [("mitigated", {"step": step})] if mitigates and state.mitigated_at is None else []

    # commands -----------------------------------------------------------------------------

    def acknowledge(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self._live(state)
            if state.acknowledged_at:
                raise CommandError(f"incident {state.id} was already acknowledged by {state.acknowledged_by} "
                                   f"at {state.acknowledged_at:%H:%M:%S}")
            return [("acknowledged", {})]
        return self._command(incident, actor, build)

    def complete(self, incident: str, actor: str, step_id: str | None = None, outcome: str = "") -> list[Event]:
        state = self.state(incident)
        self._live(state)
        step = self._current(state, step_id)
        if step.kind in ("decision", "choose"):
            options = ", ".join(f"{i}. {o.label}" for i, o in enumerate(step.options, 1))
            raise CommandError(f"step '{step.id}' is a {step.kind}; choose an option: {options}")
        if step.kind in ("degrade", "restore"):
            self._approved(state, step)
            deg = state.degradations[step.degradation]
            already = deg.applied if step.kind == "degrade" else not deg.applied
            if not already:
                flip = self.degrade if step.kind == "degrade" else self.restore
                return flip(incident, actor, step.degradation, step=step.id)
            outcome = outcome or (f"{step.degradation} was already applied" if step.kind == "degrade"
                                  else f"{step.degradation} was not applied; nothing to restore")

        def build(state):
            self._live(state)
            current = self._current(state, step.id)
            self._approved(state, current)
            events = self._retry(state, step)
            events.append(("step_completed", {"step": step.id, "track": step.track, "outcome": outcome}))
            events += self._mitigation(state, step.mitigates, step.id)
            return events + self._advance(state, step, self._next(state, step))
        return self._command(incident, actor, build)

    @staticmethod
    def _retry(state: IncidentState, step: Step) -> list[tuple[str, dict]]:
        """Working on a failed step again is a new attempt, so its time is measured on its own."""
        run = state.steps[step.id]
        if run.status != FAILED:
            return []
        return [("step_started", {"step": step.id, "track": step.track, "attempt": run.attempt + 1, "retry": True})]

    def skip(self, incident: str, actor: str, step_id: str | None, reason: str) -> list[Event]:
        if not reason.strip():
            raise CommandError("skipping a step needs a reason")

        def build(state):
            self._live(state)
            step = self._current(state, step_id)
            return [("step_skipped", {"step": step.id, "track": step.track, "reason": reason})] + \
                self._advance(state, step, self._next(state, step))
        return self._command(incident, actor, build)

    def fail(self, incident: str, actor: str, step_id: str | None, reason: str = "") -> list[Event]:
        def build(state):
            self._live(state)
            step = self._current(state, step_id)
            if state.steps[step.id].status == FAILED:
                raise CommandError(f"step '{step.id}' has already failed; complete it to retry or skip it")
            events = [("step_failed", {"step": step.id, "track": step.track, "reason": reason or "failed"})]
            if step.on_fail:
                events += self._advance(state, step, step.on_fail)
            return events
        return self._command(incident, actor, build)

    def choose(self, incident: str, actor: str, option: str, step_id: str | None = None) -> list[Event]:
        state = self.state(incident)
        self._live(state)
        step = self._current(state, step_id)
        if step.kind not in ("decision", "choose"):
            raise CommandError(f"step '{step.id}' is a {step.kind} step, not a decision")
        index = _option_index(step, option)
        chosen = step.options[index]
        if chosen.degradation:
            self._approved(state, step)
            return self.degrade(incident, actor, chosen.degradation, step=step.id, option=index)

        def build(state):
            self._live(state)
            self._current(state, step.id)
            self._approved(state, step)
            target = chosen.next or self._next(state, step)
            events = [("decision_made", {"step": step.id, "track": step.track, "option": index + 1,
                                         "label": chosen.label, "next": target})]
            events += self._mitigation(state, chosen.mitigates or step.mitigates, step.id)
            return events + self._advance(state, step, target)
        return self._command(incident, actor, build)

    def approve(self, incident: str, actor: str, step_id: str | None = None) -> list[Event]:
        def build(state):
            self._live(state)
            step = self._step(state, step_id)
            if not step.approval:
                raise CommandError(f"step '{step.id}' has no approval gate")
            if state.current.get(step.track) != step.id:
                raise CommandError(f"step '{step.id}' is not current yet; approve it when the flow reaches it")
            if state.steps[step.id].approved:
                raise CommandError(f"step '{step.id}' was already approved by {state.steps[step.id].approved_by}")
            return [("approval_granted", {"step": step.id, "role": step.approval.by})]
        return self._command(incident, actor, build)

    def severity(self, incident: str, actor: str, severity: str, reason: str = "") -> list[Event]:
        def build(state):
            self._live(state)
            levels = [lv.id for lv in state.snapshot.levels]
            if levels and severity not in levels:
                raise CommandError(f"unknown severity '{severity}', expected one of: {', '.join(levels)}"
                                   f"{did_you_mean(severity, levels)}")
            if severity == state.severity:
                raise CommandError(f"incident {state.id} is already {severity}")
            return [("severity_changed", {"from": state.severity, "to": severity, "reason": reason})]
        return self._command(incident, actor, build)

    def note(self, incident: str, actor: str, text: str) -> list[Event]:
        if not text.strip():
            raise CommandError("a note needs text")
        return self._command(incident, actor, lambda state: [("note_added", {"text": text})])

    def add_action_item(self, incident: str, actor: str, text: str, owner: str = "") -> list[Event]:
        """An action item from the debrief or postmortem; allowed after resolve, like notes."""
        if not text.strip():
            raise CommandError("an action item needs text")
        return self._command(incident, actor, lambda state: [("action_item_added", {"text": text, "owner": owner})])

    def mitigate(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self._live(state)
            if state.mitigated_at:
                raise CommandError(f"incident {state.id} was already marked mitigated at {state.mitigated_at:%H:%M:%S}")
            return [("mitigated", {"step": None})]
        return self._command(incident, actor, build)

    def resolve(self, incident: str, actor: str, keep_degradations: bool = False) -> list[Event]:
        state = self.state(incident)
        self._live(state)
        kept = [name for name, deg in state.degradations.items() if deg.applied]
        restored: list[Event] = []
        if not keep_degradations:
            for name in kept:
                restored += self.restore(incident, actor, name)
            state = self.state(incident)
            still = [name for name, deg in state.degradations.items() if deg.applied]
            if still:
                reasons = [e.data["reason"] for e in restored if e.type == "degradation_failed"]
                raise PluginError(f"not resolved: could not restore {', '.join(still)}: {'; '.join(reasons)}. "
                                  "Fix the flag backend and resolve again, or resolve --keep-degradations")
            kept = []

        def build(state):
            self._live(state)
            return [("resolved", {"kept_degradations": kept})]
        return restored + self._command(incident, actor, build)

    def escalate_now(self, incident: str, actor: str) -> list[Event]:
        state = self.state(incident)
        self._live(state)
        policy = state.snapshot.escalation
        if policy is None or not policy.levels:
            raise CommandError(f"incident {state.id} has no escalation policy")
        esc = state.escalation
        level, rnd = (1, 0) if esc.count == 0 else (esc.level + 1, esc.round)
        if level > len(policy.levels):
            level, rnd = 1, rnd + 1
        return self._escalate(incident, actor, level, rnd, self.clock.now(), "manual")

    # escalation ---------------------------------------------------------------------------

    def _escalate(self, incident: str, actor: str, level: int, rnd: int, due_at: datetime, reason: str):
        state = self.state(incident)
        policy = state.snapshot.escalation
        people = timers.recipients(state, policy.levels[level - 1], due_at)
        def build(s):
            if reason == "timer" and (s.acknowledged_at or s.resolved or s.escalation.count >= state.escalation.count + 1):
                return []  # acknowledged (or paged by someone else) since the timer was read
            return [("escalated", {"level": level, "round": rnd, "due_at": iso(due_at), "reason": reason,
                                   "recipients": [{"id": r.id, "name": r.name, "via": r.via} for r in people]})]
        events = self._command(incident, actor, build)
        return events + self._notify(incident, level, rnd, people) if events else events

    def _notify(self, incident: str, level: int, rnd: int, people) -> list[Event]:
        state = self.state(incident)
        results, failures = [], []
        if self.plugins is not None:
            notice = EscalationNotice(state.id, state.title, state.severity, level, tuple(people),
                                      summary=f"{state.title} — escalation level {level}",
                                      playbook=state.playbook.id, service=state.service, drill=state.drill,
                                      dedup_key=f"runbook-{state.id}")
            results, failures = self.plugins.notify(notice)
        return self._command(incident, SYSTEM, lambda s: [("notified", {
            "level": level, "round": rnd, "results": [r.to_dict() for r in results],
            "failures": [f.to_dict() for f in failures]})])

    # degradations (two-phase) -------------------------------------------------------------

    def degrade(self, incident: str, actor: str, name: str, step: str | None = None,
                option: int | None = None) -> list[Event]:
        return self._flip(incident, actor, name, "apply", step, option)

    def restore(self, incident: str, actor: str, name: str, step: str | None = None) -> list[Event]:
        return self._flip(incident, actor, name, "restore", step, None)

    def _flip(self, incident, actor, name, op, step_id, option) -> list[Event]:
        state = self.state(incident)
        self._live(state)
        pb = state.playbook
        if name not in pb.degradations:
            raise CommandError(f"playbook {pb.id} has no degradation '{name}'{did_you_mean(name, pb.degradations)}; "
                               f"degradations: {', '.join(pb.degradations) or 'none'}")
        deg, spec = state.degradations[name], pb.degradations[name]
        if deg.pending:
            raise CommandError(f"degradation '{name}' is already being changed (event {deg.pending_seq}); "
                               "wait for it or run `runbook incident resume`")
        if op == "apply" and deg.applied:
            raise CommandError(f"degradation '{name}' is already applied")
        if op == "restore" and not deg.applied:
            raise CommandError(f"degradation '{name}' is not applied")
        if self.plugins is None:
            raise CommandError("no flag backend: the engine was started without plugins")
        if op == "apply":
            plan = {}
            for flag, value in spec.set.items():
                current, _ = self.plugins.get_flag(flag, drill=state.sandboxed)
                plan[flag] = {"old": current.to_dict(), "new": value}
        else:
            plan = {flag: {"old": None, "new": None, "restore_to": (
                FlagState(True, spec.restore[flag]).to_dict() if spec.restore and flag in spec.restore
                else applied["old"])} for flag, applied in deg.flags.items()}

        def intent(state):
            # Re-checked on the state the intent is appended to: another responder may have
            # applied or restored it while this one was reading the flags.
            self._live(state)
            current = state.degradations[name]
            if current.pending:
                raise CommandError(f"degradation '{name}' is already being changed")
            if op == "apply" and current.applied:
                raise CommandError(f"degradation '{name}' was just applied by someone else")
            if op == "restore" and not current.applied:
                raise CommandError(f"degradation '{name}' was just restored by someone else")
            if op == "restore" and set(current.flags) != set(plan):
                raise CommandError(f"degradation '{name}' changed while restoring; try again")
            return [("degradation_started", {"degradation": name, "op": op, "flags": plan, "step": step_id,
                                              "option": option})]
        events = self._command(incident, actor, intent)
        results, errors = [], []
        for flag, entry in plan.items():
            try:
                if op == "apply":
                    change, failures = self.plugins.set_flag(flag, entry["new"], drill=state.sandboxed)
                else:
                    previous = FlagState.from_dict(entry["restore_to"])
                    change, failures = self.plugins.restore_flag(flag, previous, drill=state.sandboxed)
                results.append(("flag_changed", {"degradation": name, "flag": flag, "op": op,
                                                 "old": change.previous.to_dict(), "new": change.current.value,
                                                 "location": change.location}))
                errors += [("plugin_error", f.to_dict()) for f in failures]
            except RunbookError as exc:
                failures = getattr(exc, "failures", [])
                errors += [("plugin_error", f.to_dict()) for f in failures] or \
                    [("plugin_error", {"plugin": "?", "hook": f"{op}_flag", "message": str(exc), "kind": "error"})]
        return events + self._finish_flip(incident, actor, name, op, step_id, option, results, errors)

    def _finish_flip(self, incident, actor, name, op, step_id, option, results, errors) -> list[Event]:
        def build(state):
            out = list(results) + list(errors)
            if errors:
                out.append(("degradation_failed", {"degradation": name, "op": op,
                                                   "reason": "; ".join(e[1]["message"] for e in errors)}))
                return out
            out.append(("degradation_applied" if op == "apply" else "degradation_restored",
                        {"degradation": name, "step": step_id}))
            if step_id and state.current.get(state.playbook.step(step_id).track) == step_id:
                step = state.playbook.step(step_id)
                if option is not None:
                    chosen = step.options[option]
                    target = self._next(state, step)
                    out.append(("decision_made", {"step": step.id, "track": step.track, "option": option + 1,
                                                  "label": chosen.label, "next": target}))
                    out += self._mitigation(state, chosen.mitigates or step.mitigates, step.id)
                else:
                    out.append(("step_completed", {"step": step.id, "track": step.track, "outcome": op}))
                    out += self._mitigation(state, step.mitigates, step.id)
                    target = self._next(state, step)
                out += self._advance(state, step, target)
            return out
        return self._command(incident, actor, build)

    # automation ---------------------------------------------------------------------------

    def run(self, incident: str, actor: str, step_id: str | None = None) -> list[Event]:
        """Run the current step's automation (run: or uses:) and record the outcome."""
        state = self.state(incident)
        self._live(state)
        step = self._current(state, step_id)
        if not step.automated:
            raise CommandError(f"step '{step.id}' has nothing to run; complete it when done")
        self._approved(state, step)
        if self.plugins is None:
            raise CommandError("no plugins loaded: cannot run actions")
        if step.kind == "wait":
            return self._poll(state, step.id)  # checking a wait by hand is one more poll

        def intent(s):
            self._live(s)
            if step.id in s.actions_pending:
                raise CommandError(f"step '{step.id}' is already running (started by {s.actions_pending[step.id].actor})")
            return [("action_started", {"step": step.id, "argv": list(step.run) if step.run else None,
                                        "action": step.uses, "params": step.params})]
        events = self._command(incident, actor, intent)
        result, failures = self.plugins.run_action(self._request(state, step))

        def build(state):
            out = [("plugin_error", f.to_dict()) for f in failures]
            out.append(("action_finished", {"step": step.id, **result.to_dict()}))
            if state.resolved or state.current.get(step.track) != step.id:
                return out  # resolved or moved on while it ran: record the outcome only
            out = self._retry(state, step) + out
            if result.ok:
                out.append(("step_completed", {"step": step.id, "track": step.track, "outcome": result.summary}))
                out += self._mitigation(state, step.mitigates, step.id)
                out += self._advance(state, step, self._next(state, step))
            else:
                out.append(("step_failed", {"step": step.id, "track": step.track, "reason": result.summary}))
                if step.on_fail:
                    out += self._advance(state, step, step.on_fail)
            return out
        return events + self._command(incident, actor, build)

    def _request(self, state: IncidentState, step: Step) -> ActionRequest:
        timeout = step.timeout if step.kind != "wait" else min(step.every or timers.DEFAULT_POLL, 60)
        return ActionRequest(argv=tuple(step.run) if step.run else None, action=step.uses, params=dict(step.params),
                             timeout=float(timeout or self.plugins.settings.action_timeout),
                             incident=state.id, step=step.id, drill=state.sandboxed)

    # time ---------------------------------------------------------------------------------

    def tick(self, incident: str) -> list[Event]:
        """Fire everything that is due by now, earliest first (a late tick catches up in order)."""
        fired: list[Event] = []
        now = self.clock.now()
        for _ in range(10_000):
            state = self.state(incident)
            due = timers.due(state, now)
            if not due:
                break
            fired += self._fire(state, due[0])
        return fired

    def _fire(self, state: IncidentState, timer) -> list[Event]:
        data = timer.data
        if timer.kind == "escalation":
            return self._escalate(state.id, SYSTEM, data["level"], data["round"], timer.at, "timer")
        if timer.kind == "breach":
            return self._command(state.id, SYSTEM, lambda s: [] if data["target"] in s.breaches else [
                ("target_breached", {"target": data["target"], "deadline": iso(data["deadline"])})])
        if timer.kind == "rise":
            return self._command(state.id, SYSTEM, lambda s: [] if data["rise"] in s.rises else [
                ("severity_changed", {"from": s.severity, "to": data["to"], "rise": data["rise"],
                                      "due_at": iso(timer.at),
                                      "reason": f"symptom persisted for {data['after'] // 60} minutes"})])
        if timer.kind == "reminder":
            # after a long gap only the latest occurrence is worth saying: one reminder, with the count missed
            latest = max(data["n"], int((self.clock.now() - data["start"]).total_seconds() // data["every"]))
            fired = {"reminder": data["reminder"], "n": latest, "message": data["message"], "role": data["role"],
                     "missed": latest - data["n"]}
            return self._command(state.id, SYSTEM, lambda s: [] if s.reminders.get(data["reminder"], 0) >= latest
                                 else [("reminder_fired", fired)])
        if timer.kind == "inject":
            return self._command(state.id, SYSTEM, lambda s: [] if s.injects >= data["n"] else [
                ("drill_inject", {"n": data["n"], "message": data["message"], "signal": data["signal"],
                                  "due_at": iso(timer.at)})])
        if timer.kind == "poll":
            # likewise one check now stands for every poll that fell due while nobody was ticking
            elapsed = (min(self.clock.now(), data["ends"]) - data["start"]).total_seconds()
            latest = max(data["poll"], int(elapsed // data["every"]))
            if data["start"] + timedelta(seconds=latest * data["every"]) >= data["ends"]:
                latest -= 1
            return self._poll(state, data["step"], max(latest, data["poll"]))
        if timer.kind == "wait_timeout":
            step = state.playbook.step(data["step"])

            def build(s):
                if s.current.get(step.track) != step.id or s.steps[step.id].status != ACTIVE:
                    return []
                out = [("step_failed", {"step": step.id, "track": step.track,
                                        "reason": f"condition did not hold within {step.timeout}s", "timeout": True})]
                return out + (self._advance(s, step, step.on_timeout) if step.on_timeout else [])
            return self._command(state.id, SYSTEM, build)
        raise AssertionError(timer.kind)

    def _poll(self, state: IncidentState, step_id: str, number: int | None = None) -> list[Event]:
        step = state.playbook.step(step_id)
        result, failures = (self.plugins.run_action(self._request(state, step)) if self.plugins is not None
                            else (None, []))
        ok = bool(result and result.ok)
        summary = result.summary if result else "no plugins loaded"

        def build(s):
            if s.current.get(step.track) != step.id or s.steps[step.id].status != ACTIVE:
                return []
            out = [("plugin_error", f.to_dict()) for f in failures]
            out.append(("check_polled", {"step": step.id, "ok": ok, "summary": summary,
                                         "poll": number or s.steps[step.id].polls + 1}))
            if ok and not s.resolved:
                out.append(("step_completed", {"step": step.id, "track": step.track, "outcome": summary}))
                out += self._mitigation(s, step.mitigates, step.id)
                out += self._advance(s, step, self._next(s, step))
            return out
        return self._command(state.id, SYSTEM, build)

    # crash recovery -----------------------------------------------------------------------

    def reconcile(self, incident: str, force: bool = False) -> list[Event]:
        """Settle side effects a crash left half-done: flag intents, actions, unsent notifications.

        Only intents older than a minute are touched unless `force` (another process may still
        be in the middle of them).
        """
        state = self.state(incident)
        now = self.clock.now()
        out: list[Event] = []
        for name, deg in list(state.degradations.items()):
            if deg.pending and (force or now - deg.pending_at >= STALE_INTENT):
                out += self._reconcile_flags(state, name, deg.pending)
        for step_id, intent in list(state.actions_pending.items()):
            if force or now - intent.at >= STALE_INTENT:
                out += self._command(state.id, SYSTEM, lambda s, sid=step_id: [] if sid not in s.actions_pending else [
                    ("action_finished", {"step": sid, "ok": False, "summary": "interrupted: the outcome was never "
                                         "recorded; check by hand and complete or retry the step", "exit_code": None,
                                         "output": "", "duration": 0.0, "handler": "reconcile"})])
        for event in list(self.state(incident).escalation.unnotified):
            if force or now - event.at >= STALE_INTENT:
                people = timers.recipients(state, state.snapshot.escalation.levels[event.data["level"] - 1],
                                           event.at)
                out += self._notify(incident, event.data["level"], event.data["round"], people)
        return out

    def _reconcile_flags(self, state: IncidentState, name: str, intent: dict) -> list[Event]:
        results, unknown = [], []
        for flag, entry in intent["flags"].items():
            current, _ = self.plugins.get_flag(flag, drill=state.sandboxed)
            if intent["op"] == "apply":
                done = current.exists and current.value == entry["new"] and type(current.value) is type(entry["new"])
                old = entry["old"]
            else:
                target = FlagState.from_dict(entry["restore_to"])
                done = current.exists == target.exists and current.value == target.value
                old = None
            if done:
                results.append(("flag_changed", {"degradation": name, "flag": flag, "op": intent["op"], "old": old,
                                                 "new": current.value, "reconciled": True}))
            else:
                unknown.append(flag)

        def build(s):
            if not s.degradations[name].pending:
                return []
            out = list(results)
            changed = [r[1]["flag"] for r in results]
            if unknown and changed:
                verb = "degraded" if intent["op"] == "apply" else "restored"
                undo = f"restore {name}" if intent["op"] == "apply" else f"restore {name} again"
                out.append(("degradation_failed", {"degradation": name, "op": intent["op"], "reconciled": True,
                                                   "reason": f"interrupted half-way: {', '.join(changed)} "
                                                             f"{'is' if len(changed) == 1 else 'are'} {verb}, "
                                                             f"{', '.join(unknown)} not; {undo} to finish"}))
            elif unknown:
                out.append(("degradation_failed", {"degradation": name, "op": intent["op"], "reconciled": True,
                                                   "reason": f"interrupted before {', '.join(unknown)} changed; "
                                                             "nothing half-done remains, try again"}))
            else:
                out.append(("degradation_applied" if intent["op"] == "apply" else "degradation_restored",
                            {"degradation": name, "reconciled": True}))
            return out
        return self._command(state.id, SYSTEM, build)


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
