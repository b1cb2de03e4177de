"""Side effects outside runbook, in two phases: flag changes, automated actions, reconcile
(pages are in engine/pages.py).

Each records its intent first, then calls the plugin, then records the result, so a crash in
between leaves an intent without a result that `reconcile` settles on resume by asking the
flag backend what is true now (or by marking the action's outcome unknown). The engine's
commands call these; nothing else does.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from runbook.catalog import captures
from runbook.catalog.models import FAIL, KEEP_POLLING, Step
from runbook.engine import answers, approvals, expectations, texts, waits
from runbook.engine import owner as owners
from runbook.engine.clock import iso, parse
from runbook.engine.events import (
    ActionFinished,
    ActionStarted,
    BackgroundStarted,
    CheckPolled,
    DegradationApplied,
    DegradationFailed,
    DegradationRestored,
    DegradationStarted,
    Event,
    FlagChanged,
    Mitigated,
    PluginErrorRecorded,
)
from runbook.engine.flips import in_flight, plan_flip, refuse_if_tampered
from runbook.engine.roles import waiting_for
from runbook.engine.state import ACTIVE, IncidentState
from runbook.engine.transition import Chosen, Done, Failed, finish, mitigation
from runbook.errors import CommandError, RunbookError
from runbook.metric_checks import BROKEN, Reading, evaluate, source_for
from runbook.pluginapi import ActionRequest, ActionResult, FlagState

if TYPE_CHECKING:
    from runbook.engine.engine import Engine

SYSTEM = "runbook"
STALE_INTENT = timedelta(seconds=60)  # an intent recorded without an owner (by 0.1) counts as abandoned after this
FLAG_LEASE = 15.0  # seconds per flag an owner on another host is trusted to finish a change in
ACTION_LEASE_GRACE = 30.0
INTERACTIVE_LEASE = 12 * 3600.0  # a responder may keep an editor or a shell open that long; no timeout applies


POLL_OUTPUT = 4096  # a check polled every 30 s for hours keeps only the tail of each poll's output


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[…]" + text[-limit:]


class Started(NamedTuple):
    """A command's intent recorded (`Effects.begin`): those events, and the request to run."""

    events: list
    request: ActionRequest


def plugin_errors(failures) -> list[PluginErrorRecorded]:
    return [PluginErrorRecorded(**f.to_dict()) for f in failures]


class Effects:
    def __init__(self, engine: Engine):
        self.engine = engine

    @property
    def plugins(self):
        return self.engine.plugins

    def command(self, incident, actor, build):
        return self.engine.command(incident, actor, build)

    # degradations -------------------------------------------------------------------------

    def flip(self, incident: str, actor: str, name: str, op: str, step_id: str | None,
             option: int | None, stage: int | None = None, expect: tuple[str, ...] | None = None) -> list[Event]:
        """Apply or restore a degradation; a staged one (rollout:) applies its first stage, or
        `stage` when moving between stages (engine/stages.py). It writes the plan `plan_flip`
        makes (engine/flips.py), the one every face states; `expect`: the lines the responder was
        shown, refused when the plan now says something else."""
        owner = owners.claim()
        try:
            return self._flip(incident, actor, name, op, step_id, option, owner, stage, expect)
        finally:
            owners.release(owner)

    def _flip(self, incident, actor, name, op, step_id, option, owner, stage=None, expect=None) -> list[Event]:
        state = self.engine.state(incident)
        plan = plan_flip(self.engine, state, name, op, stage)
        if expect is not None and tuple(expect) != plan.lines:
            raise CommandError(f"{'restoring' if op == 'restore' else 'applying'} {name} would now write something "
                               f"else than what was shown: {'; '.join(plan.lines) or 'nothing'}; look again")
        deg, stage, share, flags = state.degradations[name], plan.stage, plan.share, plan.intent()

        def intent(state):
            # Re-checked on the state the intent is appended to: another responder may have
            # applied or restored it while this one was reading the flags.
            if not (op == "restore" and state.resolved):
                self.engine.require_live(state)
            if step_id is not None:  # its approval must still cover what the step flips
                _refuse(approvals.refusal_if_changed(state, state.playbook.step(step_id)))
            current = state.degradations[name]
            if current.pending:
                raise CommandError(in_flight(current))
            if op == "apply" and current.applied and (stage is None or current.stage == stage
                                                       or current.stage != deg.stage):
                raise CommandError(f"degradation '{name}' was just applied by someone else")
            if op == "restore" and not current.touched:
                raise CommandError(f"degradation '{name}' was just restored by someone else")
            if op == "restore" and set(current.flags) != set(flags):
                raise CommandError(f"degradation '{name}' changed while restoring; try again")
            lease = owners.lease_end(self.engine, FLAG_LEASE * max(len(flags), 1))
            return [DegradationStarted(name, op, flags, step_id, option, owner, lease, stage, share,
                                       list(plan.lines))]
        events = self.command(incident, actor, intent)
        results, errors = [], []
        for write in plan.writes:
            flag = write.flag
            try:
                if op == "apply" or write.kept_by:
                    if write.share is not None:
                        change, failures = self.plugins.set_flag_share(flag, write.value, write.share, write.by,
                                                                       normal=write.normal, drill=state.sandboxed)
                    else:
                        change, failures = self.plugins.set_flag(flag, write.value, drill=state.sandboxed)
                else:
                    change, failures = self.plugins.restore_flag(flag, FlagState.from_dict(write.restore_to),
                                                                 drill=state.sandboxed)
                if op == "restore" and write.kept_by:  # another degradation still holds it: it keeps theirs
                    results.append(FlagChanged(name, flag, op, None, change.current.value,
                                               location=deg.flags[flag].get("location", ""),
                                               held_by=write.kept_by, share=write.share))
                else:
                    old = write.old if write.recorded_old else change.previous.to_dict()
                    results.append(FlagChanged(name, flag, op, old, change.current.value, location=change.location,
                                               share=write.share))
                errors += plugin_errors(failures)
            except RunbookError as exc:
                failures = getattr(exc, "failures", [])
                errors += plugin_errors(failures) or [PluginErrorRecorded("?", f"{op}_flag", str(exc))]
        staged = (stage, share, plan.of) if stage is not None else None
        return events + self._finish_flip(incident, actor, name, op, step_id, option, results, errors, staged)

    def _finish_flip(self, incident, actor, name, op, step_id, option, results, errors, staged=None) -> list[Event]:
        def build(state):
            out = list(results) + list(errors)
            if errors:
                out.append(DegradationFailed(name, op, "; ".join(e.message for e in errors)))
                return out
            if op == "apply" and staged is not None:
                out.append(DegradationApplied(name, step_id, stage=staged[0], share=staged[1], of=staged[2]))
            else:
                out.append((DegradationApplied if op == "apply" else DegradationRestored)(name, step_id))
            if step_id and not state.resolved:
                step = state.playbook.step(step_id)
                if state.current.get(step.track) == step_id:
                    out += finish(state, step, Chosen(option) if option is not None else Done(op),
                                  reached=staged[0] if staged is not None else None)
            if op == "apply" and staged is not None and not any(isinstance(r, Mitigated) for r in out):
                out += awaited(state, name, staged[0])
            return out
        return self.command(incident, actor, build)

    # automation ---------------------------------------------------------------------------

    def run(self, incident: str, actor: str, step: Step, terminal=None) -> list[Event]:
        """Run a step's automation (run: or uses:) and record the outcome. An interactive step's
        command is run by `terminal(request)`, the face's runner attached to the responder's
        terminal (its `where` is recorded); none is captured."""
        owner = owners.claim()
        try:
            return self._run(incident, actor, step, owner, terminal)
        finally:
            owners.release(owner)

    def _run(self, incident: str, actor: str, step: Step, owner: dict, terminal=None) -> list[Event]:
        if step.prometheus is not None:
            state = self.engine.state(incident)
            refuse_if_tampered(state)
            return self._check(state, actor, step, owner)
        if step.interactive and terminal is None:
            raise CommandError(f"step '{step.id}' is interactive: run it from your terminal, with `runbook incident "
                               f"step {incident} {step.id} --run` or in the TUI")
        started = self.begin(incident, actor, step, owner, terminal.where if step.interactive else "")
        try:
            result, failures = (attached(terminal, started.request), []) if step.interactive \
                else self.plugins.run_action(started.request)
        finally:
            if not step.background:  # a background command's group stays findable until its handle is recorded
                _remove(started.request.pidfile)
        return started.events + self.conclude(incident, actor, step, started.request, result, failures)

    def begin(self, incident: str, actor: str, step: Step, owner: dict, attached_to: str = "") -> Started:
        """Record that step's command (run: or uses:) is about to run (action_started): the intent, with
        the request rendered from the state it is checked against. `attached_to`: where an interactive
        command runs attached (its runner's `where`)."""
        refuse_if_tampered(self.engine.state(incident))
        pidfile = action_pidfile(owner)
        request = None

        def intent(s):
            nonlocal request
            self.engine.require_live(s)
            if step.id in s.actions_pending:
                raise CommandError(f"step '{step.id}' is already running "
                                   f"(started by {s.actions_pending[step.id].actor})")
            if step.id in s.background:
                handle = s.background[step.id].record
                raise CommandError(f"step '{step.id}' already has a command running in the background (pid "
                                   f"{handle.pid} on {handle.host}); stop it first: runbook incident stop {s.id} "
                                   f"{step.id}")
            # what runs is rendered from the state the intent is checked against, and its approval
            # must still cover it: a parameter set meanwhile is never run unapproved
            _refuse(approvals.refusal_if_changed(s, step))
            request = self.request(s, step)._replace(pidfile=pidfile)
            if step.background:
                request = request._replace(output=background_output(s.id, step.id))
            held = INTERACTIVE_LEASE if step.interactive else request.timeout + ACTION_LEASE_GRACE
            lease = owners.lease_end(self.engine, held)
            return [ActionStarted(step.id, list(request.argv) if request.argv is not None else None, step.uses,
                                  dict(request.params), owner, lease, request.pidfile, request.cwd,
                                  dict(request.env), attached=attached_to if step.interactive else "")]
        events = self.command(incident, actor, intent)
        return Started(events, request)

    def conclude(self, incident: str, actor: str, step: Step, request: ActionRequest, result: ActionResult,
                 failures=()) -> list[Event]:
        """Record how a step's command ended (action_finished, a background command's handle) and
        finish the step by it, if it is still the current one."""
        # a plugin that ran it to its end (an exit status, no process) did not start it in the background;
        # one that says neither (a simulation) has nothing to hand over
        if step.background and result.ok and result.process is None and result.exit_code is not None:
            result = result._replace(ok=False, summary=f"not started in the background ({result.handler or 'a plugin'}"
                                                       f" ran it to its end): {result.summary}")

        def build(state):
            out = plugin_errors(failures) + [ActionFinished(step.id, **result.to_dict())]
            if step.background and result.process is not None:  # its handle, recorded whatever else happened
                out.append(BackgroundStarted(step.id, list(request.argv), result.process["pid"],
                                             result.process["pgid"], owners.host(), result.process["start"],
                                             request.output, step.background_until))
            if not state.resolved:  # what the run printed, ok or not, feeds later steps
                out += answers.recorded(state, step, result.output)
            if state.resolved or state.current.get(step.track) != step.id:
                return out  # resolved or moved on while it ran: record the outcome only
            ok, summary = result.ok, result.summary
            if step.expect is not None:  # passes by what it printed (and findings), not only by its exit status
                ok, summary = expectations.judge(step, result.ok, result.exit_code, result.output, result.summary)[:2]
            outcome = Done(summary) if ok else Failed(summary, automated=True)
            return out + finish(state, step, outcome, values=answers.values(out))
        events = self.command(incident, actor, build)
        _remove(request.pidfile)  # not when recording failed: then reconcile kills what was started
        return events

    def _check(self, state: IncidentState, actor: str, step: Step, owner: dict) -> list[Event]:
        """A verify step's prometheus: check, recorded like an action: the query about to be read, then
        the reading (holds: done; not met or broken: failed, saying which, so retry: and on_fail: apply)."""
        timeout = float(step.timeout or getattr(getattr(self.plugins, "settings", None), "action_timeout", 60.0))
        try:
            query = texts.query(state, step, self.engine.clock.now())
        except CommandError:
            query = step.prometheus.query  # recorded as written; the reading says what is missing

        def intent(s):
            self.engine.require_live(s)
            if step.id in s.actions_pending:
                raise CommandError(f"step '{step.id}' is already running "
                                   f"(started by {s.actions_pending[step.id].actor})")
            _refuse(approvals.refusal_if_changed(s, step))
            lease = self.engine.clock.now() + timedelta(seconds=timeout + ACTION_LEASE_GRACE)
            return [ActionStarted(step.id, None, None, {}, owner, iso(lease),
                                  check={"query": query, "expect": step.prometheus.expect})]
        events = self.command(state.id, actor, intent)
        started = time.monotonic()
        reading = self.read_metrics(state, step, timeout)
        summary = reading.detail if reading.outcome != BROKEN else f"the check broke: {reading.detail}"
        finished = ActionFinished(step.id, reading.holds, summary, None, tail(reading.output, POLL_OUTPUT),
                                  round(time.monotonic() - started, 3), "prometheus", outcome=reading.outcome)

        def build(s):
            out = [finished]
            if not s.resolved:
                out += answers.recorded(s, step, reading.output)
            if s.resolved or s.current.get(step.track) != step.id:
                return out
            return out + finish(s, step, Done(summary) if reading.holds else Failed(summary, automated=True),
                                values=answers.values(out))
        return events + self.command(state.id, actor, build)

    def request(self, state: IncidentState, step: Step) -> ActionRequest:
        """The step's action with every template filled (engine/texts.py): what was shown is what runs.
        CommandError, before anything is recorded or run, when a value is missing."""
        timeout = step.timeout if step.kind != "wait" else waits.poll_timeout(step)
        now = self.engine.clock.now()
        command = texts.command(state, step, now) if step.run else None
        return ActionRequest(argv=command.argv if command else None, action=step.uses,
                             params=texts.params(state, step, now),
                             timeout=float(timeout or self.plugins.settings.action_timeout),
                             incident=state.id, step=step.id, drill=state.sandboxed,
                             cwd=command.cwd if command else None, env=command.env if command else {},
                             rendered=True)

    def read_metrics(self, state: IncidentState, step: Step, timeout: float) -> Reading:
        """A prometheus: check's reading now: from the engine's `metrics_source` when one is set (tests),
        else from the plugin host (its settings' Prometheus; a simulation's stand-in answers itself)."""
        now = self.engine.clock.now()
        try:
            check = step.prometheus._replace(query=texts.query(state, step, now))
        except CommandError as exc:  # a value is missing: the check is broken, saying which
            return Reading(BROKEN, None, str(exc))
        return self.reading(check, now, timeout)

    def reading(self, check, now, timeout: float | None = None) -> Reading:
        """One metric check (a query already filled) read at `now`: from `engine.metrics_source`
        when one is set (tests), else the plugin host's Prometheus (RUNBOOK_PROMETHEUS_URL)."""
        if self.engine.metrics_source is not None:
            return evaluate(check, self.engine.metrics_source, at=now, timeout=timeout)
        if self.plugins is not None and hasattr(self.plugins, "read_metrics"):
            return self.plugins.read_metrics(check, at=now, timeout=timeout)
        return evaluate(check, source_for(os.environ.get("RUNBOOK_PROMETHEUS_URL")), at=now, timeout=timeout)

    def poll(self, state: IncidentState, step_id: str, number: int | None = None) -> list[Event]:
        step = state.playbook.step(step_id)
        if step.prometheus is not None:
            reading = self.read_metrics(state, step, waits.poll_timeout(step))
            # "no data" is its own outcome where the wait says what it means (on_no_data:), else broken as before
            outcome = waits.NO_DATA if reading.no_data and step.on_no_data else reading.outcome
            summary, exit_code, output, failures = reading.detail, None, reading.output, []
            value = reading.shown_value
        else:
            try:
                result, failures = (self.plugins.run_action(self.request(state, step)) if self.plugins is not None
                                    else (None, []))
            except CommandError as exc:  # a value is missing: the check fails, saying which
                result, failures = ActionResult(False, str(exc), handler="runbook"), []
            outcome = waits.classify(step, result, failures)
            summary = result.summary if result else "no plugins loaded"
            exit_code, output = (result.exit_code, result.output) if result else (None, "")
            value = None
        # what this poll saw, recorded whether or not it held (only a poll that held sets parameters)
        captured = {c.name: c.value for c in captures.run(state.playbook, step, output) if c.value is not None}
        seen = waits.seen(step, summary, exit_code, captured) if outcome not in (waits.BROKEN, waits.NO_DATA) else ""
        meaning = waits.means(step, outcome)  # the outcome is recorded as it was; "no data" means what the step says

        def build(s):
            if s.current.get(step.track) != step.id or s.steps[step.id].status != ACTIVE:
                return []
            out = plugin_errors(failures)
            out.append(CheckPolled(step.id, meaning == waits.HOLDS, summary, number or s.steps[step.id].polls + 1,
                                   exit_code, tail(output, POLL_OUTPUT), outcome, seen, value, captured))
            if s.resolved:
                return out
            if meaning == waits.HOLDS and waiting_for(s, step) is None:  # a step waiting for another stays
                out += answers.recorded(s, step, output)  # a wait captures from the poll that held
                out += finish(s, step, Done(summary), values=answers.values(out))
            elif meaning == waits.BROKEN and step.on_broken != KEEP_POLLING:
                to = None if step.on_broken == FAIL else step.on_broken
                out += finish(s, step, Failed(f"the check broke: {summary}", to=to))
            return out
        return self.command(state.id, SYSTEM, build)

    def wait_timed_out(self, state: IncidentState, step_id: str) -> list[Event]:
        step = state.playbook.step(step_id)

        def build(s):
            if s.current.get(step.track) != step.id or s.steps[step.id].status != ACTIVE:
                return []
            return finish(s, step, Failed(f"condition did not hold within {step.timeout}s", timeout=True))
        return self.command(state.id, SYSTEM, build)

    def settle_in_flight(self, incident: str, wait: float) -> list[Event]:
        """Wait for flag changes in flight to finish; settle those whose owner is gone."""
        deadline = time.monotonic() + wait
        settled: list[Event] = []
        while True:
            settled += self.reconcile(incident, flags_only=True)
            busy = [deg for deg in self.engine.state(incident).degradations.values() if deg.pending]
            if not busy:
                return settled
            if time.monotonic() >= deadline:
                raise CommandError(f"not resolved: {in_flight(busy[0])}")
            time.sleep(0.05)

    # crash recovery -----------------------------------------------------------------------

    def reconcile(self, incident: str, force: bool = False, flags_only: bool = False) -> list[Event]:
        state = self.engine.state(incident)
        now = self.engine.clock.now()
        out: list[Event] = []
        for name, deg in list(state.degradations.items()):
            if deg.pending and abandoned(deg.pending, deg.pending_at, now, force, self.engine.store):
                out += self._reconcile_flags(state, name, deg.pending, deg.pending_seq)
        if flags_only:
            return out
        for step_id, intent in list(state.actions_pending.items()):
            if abandoned(intent.data, intent.at, now, force, self.engine.store):
                killed = kill_orphan(intent.record.pidfile)
                summary = ("interrupted: the outcome was never recorded" +
                           (f"; its orphaned process group {killed} was killed" if killed else "") +
                           "; check by hand and complete or retry the step")
                # settled only if that very intent is still the pending one (not a retry started since)
                out += self.command(state.id, SYSTEM, lambda s, sid=step_id, text=summary, seq=intent.seq: [] if
                                     sid not in s.actions_pending or s.actions_pending[sid].seq != seq
                                     else [ActionFinished(sid, False, text, handler="reconcile")])
        return out

    def _reconcile_flags(self, state: IncidentState, name: str, intent: dict, seq: int) -> list[Event]:
        results, unknown = [], []
        for flag, entry in intent["flags"].items():
            current, _ = self.plugins.get_flag(flag, drill=state.sandboxed)
            # the share each flag was given (older intents: the stage's own)
            share = entry["share"] if "share" in entry else intent.get("share")
            share = share if share is not None and share < 100 else None
            kept = intent["op"] == "restore" and entry.get("held_by")
            if intent["op"] == "apply" or (kept and "share" in entry):
                done = (current.exists and current.value == entry["new"] and type(current.value) is type(entry["new"])
                        and current.share == share)
            elif kept:  # recorded by an older runbook, which left a held flag as it was
                done = True
            else:
                target = FlagState.from_dict(entry["restore_to"])
                done = current.exists == target.exists and current.value == target.value
            if done:
                results.append(FlagChanged(name, flag, intent["op"], entry["old"] if intent["op"] == "apply" else None,
                                           current.value, reconciled=True, held_by=entry.get("held_by"),
                                           share=share if intent["op"] == "apply" or kept else None))
            else:
                unknown.append(flag)

        def build(s):
            # Only the intent that was read: while the flags were being read, someone else may have
            # settled it and started a new change of this degradation, whose owner is alive.
            if not s.degradations[name].pending or s.degradations[name].pending_seq != seq:
                return []
            out = list(results)
            changed = [r.flag for r in results]
            op = intent["op"]
            if unknown and changed:
                verb = "degraded" if op == "apply" else "restored"
                undo = f"restore {name}" if op == "apply" else f"restore {name} again"
                out.append(DegradationFailed(name, op, f"interrupted half-way: {', '.join(changed)} "
                                                       f"{'is' if len(changed) == 1 else 'are'} {verb}, "
                                                       f"{', '.join(unknown)} not; {undo} to finish", reconciled=True))
            elif unknown:
                out.append(DegradationFailed(name, op, f"interrupted before {', '.join(unknown)} changed; "
                                                       "nothing half-done remains, try again", reconciled=True))
            elif op == "apply" and intent.get("stage") is not None:
                out.append(DegradationApplied(name, reconciled=True, stage=intent["stage"], share=intent.get("share"),
                                              of=len(state.playbook.degradations[name].rollout.stages)))
                out += awaited(s, name, intent["stage"])
            else:
                out.append((DegradationApplied if op == "apply" else DegradationRestored)(name, reconciled=True))
            return out
        return self.command(state.id, SYSTEM, build)


def awaited(state: IncidentState, name: str, stage: int) -> list[Mitigated]:
    """The incident mitigated when staged degradation `name` reaches `stage` and a mitigating step
    waits for it (MitigationAwaited), and not before."""
    awaiting = state.degradations[name].awaiting
    if awaiting is None or state.mitigated_at is not None \
            or stage < state.playbook.degradations[name].rollout.mitigating_stage:
        return []
    return [mitigation(state, awaiting, name, stage)]


def abandoned(intent: dict, at: datetime, now: datetime, force: bool, leases=None) -> bool:
    """Whether an intent may be settled: its owner is gone (`leases`: the store, whose server
    leases decide for an owner on another host). Intents recorded without an owner (by runbook
    0.1) count as abandoned after a minute, or at once when forced."""
    lease = intent.get("lease_until")
    state = owners.status(intent.get("owner"), parse(lease) if lease else None, now, leases)
    if state == owners.UNKNOWN:
        return force or now - at >= STALE_INTENT
    return state == owners.GONE


def attached(terminal, request: ActionRequest) -> ActionResult:
    """An interactive command run by the face's runner; a runner that breaks is the run's failure,
    recorded, so no intent is left without its result."""
    try:
        return terminal(request)
    except Exception as exc:
        return ActionResult(False, f"not run: {exc}", handler=terminal.where)


def background_output(incident: str, step: str) -> str:
    """Where a background command's output goes: the incident's folder of the data directory."""
    from runbook.settings import data_dir

    return os.path.join(data_dir(), "incidents", incident, "background", f"{step}.log")


def _refuse(refusal: str) -> None:
    if refusal:
        raise CommandError(refusal)


def action_pidfile(owner: dict) -> str:
    """Where an action's runner writes the process group it started: a private runtime directory."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = os.path.join(base, f"runbook-{os.getuid()}" if hasattr(os, "getuid") else "runbook", "actions")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, f"{owner['token']}.pid")


def _remove(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def kill_orphan(pidfile: str | None) -> int | None:
    """Kill the process group an abandoned action left running; its id, or None if none is left."""
    if not pidfile:
        return None
    try:
        with open(pidfile, encoding="ascii") as handle:
            pgid_text, start = handle.read().split()
        pgid = int(pgid_text)
    except (OSError, ValueError):
        return None
    _remove(pidfile)
    if owners.process_start(pgid) != start:
        return None  # the group's leader has ended (or its pid now belongs to someone else)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return None
    return pgid
