"""The commands that work on steps: done, skip, fail, choose, approve, run, restart, and the checks
they share (the step is current, in the right phase, approved). Each finishes a step through the
one step transition (engine/transition.py). Mixed into Engine, whose `command` they use."""

from __future__ import annotations

from runbook.catalog import parameters
from runbook.catalog.models import Step
from runbook.catalog.suggest import did_you_mean
from runbook.engine import answers, approvals, cadence, conditions, lifecycle, restarts, roles, texts
from runbook.engine import owner as owners
from runbook.engine.events import ApprovalGranted, Event, HandedOff, ParametersSet
from runbook.engine.events.parameters import ASK
from runbook.engine.limits import check_size
from runbook.engine.state import FAILED, IncidentState
from runbook.engine.transition import PUBLIC_STATUSES, Chosen, Done, Failed, Skipped, finish
from runbook.errors import CommandError, NotFoundError, PluginError, ReasonNeeded
from runbook.text import one_line


class StepCommands:
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
            raise NotFoundError(f"playbook {pb.id} has no step '{step_id}'"
                                f"{did_you_mean(step_id, [s.id for s in pb.steps])}") from None
        return step

    def _current(self, state: IncidentState, step_id: str | None, actor: str | None = None) -> Step:
        """The named (or first) current step; with `actor`, one they may work (an enforced role's: a holder)."""
        if step_id is None and not state.in_followup:
            self.require_live(state)  # "resolved" says more than "no current step"
        step = self._step(state, step_id)
        self._require_step_phase(state, step)
        if state.current.get(step.track) != step.id:
            now = state.current.get(step.track)
            where = f"the current step of that track is '{now}'" if now else "that track is finished"
            raise CommandError(f"step '{step.id}' is not current; {where}")
        if actor is not None:
            roles.refuse_if_not_holder(state, step, actor)
        return step

    @staticmethod
    def _approved(state: IncidentState, step: Step) -> None:
        """The step's gate is open: approved in this attempt, for what the step covers now
        (engine/approvals.py); else one line saying why, old → new when its content changed."""
        refused = approvals.refusal(state, step)
        if refused:
            raise CommandError(refused)

    def complete(self, incident: str, actor: str, step_id: str | None = None, outcome: str = "",
                 expect: tuple[str, ...] | None = None, status: str | None = None, value: str | None = None,
                 message: str | None = None) -> list[Event]:
        """Finish a step by hand; a degrade or restore step flips its flags (`expect`: the lines of
        its plan the responder was shown, refused when the plan now says something else); `status`:
        the public phase a communicate step's message announces, overriding the step's own; an ask
        step records `value`, the answer, as its parameter's value; a compose: true communicate
        step posts `message`, the text the responder wrote."""
        check_size("the outcome", outcome)
        if message is not None:
            check_size("the message", message)
        state = self.state(incident)
        step = self._current(state, step_id, actor)
        if status is not None and (step.audience != "customers" or status not in PUBLIC_STATUSES):
            raise CommandError(f"the status is one of {', '.join(PUBLIC_STATUSES)}" if step.audience == "customers"
                               else f"step '{step.id}' posts nothing to customers; a status is for communicate "
                                    "steps with audience: customers")
        roles.refuse_if_waiting(state, step)
        if step.kind == "ask":
            return self._answer(incident, actor, step, value, outcome)
        if value is not None:
            raise CommandError(f"step '{step.id}' is a {step.kind} step; only an ask step takes a value")
        if message is not None and not step.compose:
            raise CommandError(f"step '{step.id}' posts its template; only a step with compose: true takes a message")
        if step.compose and message is None:  # the text its approval approved, when it approved one
            message = approvals.approved_text(state, step)
        if step.compose and not (message or "").strip():
            raise CommandError(f"step '{step.id}' posts what you write: give the message, e.g. `runbook incident step "
                               f"{incident} {step.id} --done --message TEXT`")
        if step.kind in ("decision", "choose"):
            options = ", ".join(f"{i}. {o.label}" for i, o in enumerate(step.options, 1))
            raise CommandError(f"step '{step.id}' is a {step.kind}; choose an option: {options}")
        if step.kind == "handoff" and step.hand_to is not None:
            return self._hand_to(state, actor, step, outcome)
        if step.kind == "handoff":
            return self._hand_off(state, actor, step, outcome)
        if step.kind in ("degrade", "restore"):
            self._approved(state, step)
            deg = state.degradations[step.degradation]
            already = deg.applied if step.kind == "degrade" else not deg.applied
            if not already:
                return self.effects.flip(incident, actor, step.degradation,
                                         "apply" if step.kind == "degrade" else "restore", step.id, None,
                                         expect=expect)
            staged = f" (stage {deg.stage + 1}, {deg.share}% of users: `runbook incident stage` steers it)" \
                if step.kind == "degrade" and deg.stage >= 0 and deg.share is not None and deg.share < 100 else ""
            outcome = outcome or (f"{step.degradation} was already applied{staged}" if step.kind == "degrade"
                                  else f"{step.degradation} was not applied; nothing to restore")

        def build(state):
            current = self._current(state, step.id, actor)
            self._approved(state, current)
            roles.refuse_if_waiting(state, current)
            text = message.strip() if message is not None else None
            refused = approvals.refusal_if_other_text(state, current, text) if text is not None else ""
            if refused:
                raise CommandError(refused)
            return finish(state, current, Done(outcome, self.clock.now(), status, text))  # a communicate step posts now
        return self.command(incident, actor, build)

    def _answer(self, incident: str, actor: str, step: Step, value: str | None, outcome: str) -> list[Event]:
        """An ask step done: its parameter set to the answer, checked like any value, with the step
        as its source (`ask:STEP`), in one transaction with the step's completion."""
        name = step.parameter
        if value is None:
            raise CommandError(f"step '{step.id}' asks for parameter {name}; answer it with "
                               f"`runbook incident step {incident} {step.id} --done --value VALUE`")

        def build(state):
            current = self._current(state, step.id, actor)
            self._approved(state, current)
            roles.refuse_if_waiting(state, current)
            checked = parameters.check(state.playbook, name, value.strip(), "ask")
            return [ParametersSet({name: checked}, {name: f"{ASK}{step.id}"}),
                    *finish(state, current, Done(outcome or f"{name} = {checked}", self.clock.now()),
                            values={name: checked})]
        return self.command(incident, actor, build)

    def _hand_off(self, state: IncidentState, actor: str, step: Step, outcome: str) -> list[Event]:
        """Open the linked incident on the step's playbook (a drill hands off to a drill), record
        it on this one with the step done and its track finished, page the new one at once (as
        `incident open` does), then resolve this one by the handoff: its time to resolve ends
        here, its degradations are restored as a resolve would, and its record names the new
        incident. The new incident gets this one's values of the parameters it declares; it
        names this one in its `opened` event."""
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
                    *finish(current, checked, Done(outcome or f"handed off to {opened.id}"), ends=True)]
        handed = self.command(state.id, actor, build)
        self.tick(opened.id)  # pages the new incident now, not at the next tick
        try:
            ended = lifecycle.resolve(self, state.id, actor, handed_off_to=opened.id)
        except (CommandError, PluginError) as exc:
            raise type(exc)(f"handed off to {opened.id}, but {state.id} is {exc}") from None
        return handed + ended

    def _hand_to(self, state: IncidentState, actor: str, step: Step, outcome: str) -> list[Event]:
        """Hand the incident to someone who is not a playbook (a vendor's support, a security
        process, another team): record who, how to reach them and the instructions as shown now,
        with the step done. The incident stays open and its track goes on, unless the step
        `resolves:` it, which then happens as a resolve would."""
        self._approved(state, step)

        def build(current):
            checked = self._current(current, step.id, actor)
            self._approved(current, checked)
            now = self.clock.now()
            to = one_line(texts.text(current, step.hand_to.name, checked, now))
            contact = one_line(texts.text(current, step.hand_to.contact, checked, now))
            handed = HandedOff(step.id, to=to, contact=contact,
                               instructions=texts.text(current, step.instructions, checked, now),
                               resolves=step.resolves)
            return [handed, *finish(current, checked, Done(outcome or f"handed off to {to}", now),
                                    ends=step.resolves)]
        handed = self.command(state.id, actor, build)
        if not step.resolves:
            return handed
        try:
            ended = lifecycle.resolve(self, state.id, actor)
        except (CommandError, PluginError) as exc:
            raise type(exc)(f"handed off to {handed[0].record.to}, but {state.id} is {exc}") from None
        return handed + ended

    def skip(self, incident: str, actor: str, step_id: str | None, reason: str) -> list[Event]:
        if not reason.strip():
            raise CommandError("skipping a step needs a reason")
        check_size("the reason", reason)

        def build(state):
            step = self._current(state, step_id, actor)
            return finish(state, step, Skipped(reason))
        return self.command(incident, actor, build)

    def fail(self, incident: str, actor: str, step_id: str | None, reason: str = "") -> list[Event]:
        check_size("the reason", reason)

        def build(state):
            step = self._current(state, step_id, actor)
            if state.steps[step.id].status == FAILED:
                raise CommandError(f"step '{step.id}' has already failed; complete it to retry or skip it")
            return finish(state, step, Failed(reason or "failed"))
        return self.command(incident, actor, build)

    def choose(self, incident: str, actor: str, option: str | None, step_id: str | None = None,
               suggested: bool = False, expect: tuple[str, ...] | None = None) -> list[Event]:
        """Answer a decision with `option` (its number or label), or with the option its from:
        suggests (`suggested`); the record says whether the choice followed the suggestion. An
        option that applies a degradation flips its flags (`expect` as for `complete`)."""
        state = self.state(incident)
        step = self._current(state, step_id, actor)
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
        _refuse_if_not_offered(state, step, index)
        if chosen.degradation:
            self._approved(state, step)
            return self.effects.flip(incident, actor, chosen.degradation, "apply", step.id, index, expect=expect)

        def build(state):
            self._current(state, step.id, actor)
            self._approved(state, step)
            roles.refuse_if_waiting(state, step)
            hint = answers.suggestion(state, step)
            if suggested and (hint is None or hint.index != index):
                raise CommandError(f"the suggestion for step '{step.id}' changed meanwhile; look again")
            _refuse_if_not_offered(state, step, index)
            return finish(state, step, Chosen(index, hint.label if hint else None))
        return self.command(incident, actor, build)

    def plan_step(self, incident: str, step_id: str | None = None, option: int | None = None):
        """What finishing the step (`option`: choosing that option, 0-based) writes: the plan of the
        degradation it applies or restores (engine/flips.py), or None when it flips nothing (not a
        degrade or restore step, or already so). Before its approval too: an approver reads it."""
        from runbook.engine.flips import plan_flip

        state = self.state(incident)
        step = self._current(state, step_id)
        if option is not None:
            if not 0 <= option < len(step.options):
                raise CommandError(f"step '{step.id}' has no option {option + 1}")
            name, op = step.options[option].degradation, "apply"
        else:
            name, op = step.degradation, {"degrade": "apply", "restore": "restore"}.get(step.kind)
        if not name or op is None:
            return None
        deg = state.degradations[name]
        if (deg.applied if op == "apply" else not deg.applied) and option is None:
            return None  # done without a flip (`complete` says it was already so)
        return plan_flip(self, state, name, op)

    def approve(self, incident: str, actor: str, step_id: str | None = None, override: str = "",
                expect: str | dict | None = None, message: str | None = None) -> list[Event]:
        """Approve a step's gate: by the holder of its approving role, by anyone when nobody holds
        it (the event says so), or by someone else with an `override` reason, recorded. The event
        records what the gate covers now, rendered, and its digest (engine/approvals.py); a step
        whose approval no longer covers it is approved again the same way. `expect`: what the
        approver was shown, as the content (the TUI: a refusal then says what changed, old → new)
        or its digest (the chat's code); refused when the gate covers something else by now. For a
        compose: true step it is what was shown besides the text, which `message` binds. A
        compose: true step is approved for `message`, the text it is to post (its repeats too:
        a step posting on a cadence is approved again for its next post while the cadence runs)."""
        check_size("the reason", override)
        if message is not None:
            check_size("the message", message)

        def build(state):
            step = self._step(state, step_id)
            self._require_step_phase(state, step)
            if not step.approval:
                raise CommandError(f"step '{step.id}' has no approval gate")
            repeating = step.repeat is not None and cadence.stopped(state, step) is None
            if state.current.get(step.track) != step.id and not repeating:
                raise CommandError(f"step '{step.id}' is not current yet; approve it when the flow reaches it")
            text = (message or "").strip()
            if message is not None and not step.compose:
                raise CommandError(f"step '{step.id}' posts its template; only a step with compose: true is approved "
                                   "for a message")
            if step.compose and not text:
                raise CommandError(f"step '{step.id}' posts what is written: approve the text it is to post, "
                                   f"e.g. `runbook incident approve {state.id} {step.id} --message TEXT`")
            if approvals.approved(state, step) and (not step.compose or approvals.approved_text(state, step) == text):
                raise CommandError(f"step '{step.id}' was already approved by {state.steps[step.id].approved_by}")
            holder, why = roles.approval(state, step, actor, override)
            # what the approver saw, as the gate is checked later
            content = approvals.covered(state, step, text if step.compose else None)
            if expect is not None:
                refused = approvals.refusal_if_not_shown(step, content, expect)
                if refused:
                    raise CommandError(refused)
            return [ApprovalGranted(step.id, step.approval.by, holder, why, content, approvals.digest(content))]
        return self.command(incident, actor, build)

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
                raise NotFoundError(f"playbook {pb.id} has no step '{step_id}'"
                                    f"{did_you_mean(step_id, [s.id for s in pb.steps])}")
            return restarts.records(state, state.playbook.step(step_id), reason.strip())
        return self.command(incident, actor, build)

    def run(self, incident: str, actor: str, step_id: str | None = None, expect: str | None = None,
            terminal=None) -> list[Event]:
        """Run the current step's automation (run: or uses:) and record the outcome. `expect`: the
        command line the responder confirmed (as `texts.shown_command` renders it); refused when
        it would now run another (a command using a built-in of time, {elapsed}, is compared without it).
        `terminal`: the face's runner for an interactive step (effects.Effects.run); a face that must
        not hold the commands lane while it runs uses `start_attached` and `finish_attached`."""
        state = self.state(incident)
        step = self._runnable(state, step_id, actor, expect)
        if step.kind == "wait":
            return self.effects.poll(state, step.id)  # checking a wait by hand is one more poll
        return self.effects.run(incident, actor, step, terminal)

    def start_attached(self, incident: str, actor: str, step_id: str | None, where: str,
                       expect: str | None = None) -> tuple:
        """The first half of running an interactive step: checked as `run` checks it, its intent
        recorded (action_started, attached `where`). Returns (the events, a ticket for
        `finish_attached`: the step, the request to run and the intent's owner). The face runs the
        request attached, outside the commands lane, so other commands go on meanwhile."""
        state = self.state(incident)
        step = self._runnable(state, step_id, actor, expect)
        if not step.interactive:
            raise CommandError(f"step '{step.id}' is not interactive; run it with `run`")
        owner = owners.claim()
        try:
            started = self.effects.begin(incident, actor, step, owner, where)
        except BaseException:
            owners.release(owner)
            raise
        return started.events, (step.id, started.request, owner)

    def finish_attached(self, incident: str, actor: str, ticket: tuple, result) -> list[Event]:
        """The second half: how the attached command ended (`result`, an ActionResult), recorded."""
        step_id, request, owner = ticket
        try:
            return self.effects.conclude(incident, actor, self.state(incident).playbook.step(step_id), request,
                                         result)
        finally:
            owners.release(owner)

    def _runnable(self, state: IncidentState, step_id: str | None, actor: str, expect: str | None) -> Step:
        """The current step `run` may run now, or CommandError saying why not."""
        step = self._current(state, step_id, actor)
        if not step.automated:
            raise CommandError(f"step '{step.id}' has nothing to run; complete it when done")
        self._approved(state, step)
        if expect is not None and step.run is not None:
            now = texts.shown_command(state, step, self.clock.now())
            timed = any(f"{{{name}}}" in str(part) for name in texts.TIMED for part in step.run)
            if expect not in (now, one_line(now)) and not timed:
                raise CommandError(f"not run: step '{step.id}' would now run `{now}`, not the `{expect}` "
                                   "that was confirmed; look again")
        roles.refuse_if_waiting(state, step)
        if self.plugins is None and step.prometheus is None:
            raise CommandError("no plugins loaded: cannot run actions")
        return step


def _refuse_if_not_offered(state: IncidentState, step: Step, index: int) -> None:
    """An option whose when: does not hold for the incident is not offered: one line saying why."""
    why = conditions.unmet(state, step.options[index].when)
    if why is not None:
        offered = [f"{i}. {o.label}" for i, o in enumerate(step.options, 1) if conditions.unmet(state, o.when) is None]
        raise CommandError(f"option {index + 1} ({one_line(step.options[index].label)}) of step '{step.id}' is not "
                           f"offered: {why}; offered: {', '.join(offered) or 'none'}")


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
