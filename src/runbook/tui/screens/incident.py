"""The incident screen: what to do next, who gets paged when, what is degraded, what happened."""

from __future__ import annotations

import base64
import os

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen

from runbook.errors import NotFoundError, RunbookError
from runbook.text import one_line
from runbook.tui import dialogs
from runbook.tui.gateway import CurrentStep, GatewayClosed, IncidentView
from runbook.tui.keys import GENERAL_ACTIONS, key_for
from runbook.tui.stage_choices import StageChoice, stage_choices, staged_applied
from runbook.tui.terminal import attached_runner
from runbook.tui.widgets.current import CurrentStepPanel, actions_for, approves_itself, copyable, unheld_roles
from runbook.tui.widgets.keybar import KeyBar
from runbook.tui.widgets.panels import IncidentHeader, SidePanel, StepList, Timeline, clock

# what can still be done once an incident is resolved (the engine refuses the rest)
AFTER_RESOLVE = frozenset({"restore", "note", "debrief", "learn", "export", "home", "app.help", "command_palette",
                           "app.command_palette", "page_instructions(1)", "page_instructions(-1)"})
# keys about the current step: nothing to do with them when the selected track is finished
STEP_ACTIONS = frozenset({"done", "skip", "fail", "choose", "run", "approve", "copy"})
# ...and during a follow-up phase, its steps (no automation runs there)
FOLLOWUP_ACTIONS = frozenset({"done", "skip", "fail", "choose", "next_track", "next", "copy"})


class IncidentScreen(Screen):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    HELP_TITLE = "Incident"
    # The only place these keys are declared: the footer, help, palette and step hints read them.
    # The footer shows only the keys that work now (key_available), in this order.
    BINDINGS = [
        # not in the footer: the current step's keys say what it does now ("enter/d done")
        Binding("enter", "next", "Next", key_display="enter", show=False, priority=True,
                tooltip="The step's next action (the first key it shows)"),
        Binding("1", "answer(0)", "Answer", key_display="1-9", show=False,
                tooltip="Answer the decision on screen with that option"),
        *(Binding(str(n), f"answer({n - 1})", show=False) for n in range(2, 10)),
        Binding("a", "ack", "Ack", tooltip="Acknowledge the incident (stops escalation)"),
        Binding("p", "approve", "Approve", tooltip="Approve the current step's gate"),
        Binding("d", "done", "Done", tooltip="Step done (a degrade/restore step flips its flags)"),
        Binding("c", "choose", "Choose", tooltip="Choose an option of the current decision"),
        Binding("u", "run", "Run", tooltip="Run the current step's automation"),
        Binding("s", "skip", "Skip", tooltip="Skip the current step, saying why"),
        Binding("f", "fail", "Fail", tooltip="Mark the current step failed (goes to its on_fail step)"),
        Binding("y", "copy", "Copy", tooltip="Copy the step's command to the clipboard (OSC 52)"),
        Binding("tab", "next_track", "Track", tooltip="Next track (roles side by side)"),
        # not in the footer: the "↓ more below: PgDn" line over the timeline shows it when it works
        # (a footer that grew a key when the instructions overflow would change what fits);
        # priority, or the focused step list (a scrolling container) takes the key for itself
        Binding("pagedown", "page_instructions(1)", "More", key_display="PgDn", show=False, priority=True,
                tooltip="Scroll the step's instructions down"),
        Binding("pageup", "page_instructions(-1)", "Up", key_display="PgUp", show=False, priority=True,
                tooltip="Scroll the step's instructions back up"),
        Binding("g", "degrade", "Degrade", tooltip="Apply a degradation (flips its flags)"),
        Binding("r", "restore", "Restore", tooltip="Restore an applied degradation"),
        Binding("S", "stage", "Stage", tooltip="Hold, resume, advance or roll back a staged degradation"),
        Binding("v", "severity", "Severity", tooltip="Change the severity"),
        Binding("o", "assign", "Assign", tooltip="Assign a role to a person (a handoff when someone holds it)"),
        Binding("n", "note", "Note", tooltip="Add a note to the timeline"),
        Binding("e", "escalate", "Escalate", tooltip="Page the next escalation level now"),
        Binding("m", "mitigate", "Mitigated", tooltip="Mark the incident mitigated"),
        Binding("x", "resolve", "Resolve", tooltip="Resolve the incident (restores degradations)"),
        Binding("b", "debrief", "Debrief", tooltip="Debrief: times against targets, notes and action items"),
        Binding("l", "learn", "Learn", show=False,  # in help and the palette; the seen-before toast names it
                tooltip="Seen this before, the review, action items across incidents"),
        Binding("R", "restart", "Restart", tooltip="Restart the track from a step already reached (asks why)"),
        Binding("G", "signal", "Signal", tooltip="Give the signal a step waits for (the commander's go)"),
        Binding("P", "post_update", "Post update", tooltip="Post the update due of a step repeating on a cadence"),
        Binding("w", "export", "Export", tooltip="Write the postmortem (Markdown) to a file"),
        # not in the footer: the header shows a background command while one runs
        Binding("K", "stop_background", "Stop background", show=False,
                tooltip="Stop a background command (asks first)"),
        Binding("escape", "home", "Home", tooltip="Back to the home screen (the incident keeps running)"),
        Binding("question_mark", "app.help", "Help", tooltip="Every key of every screen"),
    ]

    def __init__(self, incident: str | None, view: IncidentView | None = None, typed: str | None = None):
        """The screen of `incident`; None: `runbook resume`'s, which first finds `typed` (None:
        the latest open incident) and settles it (`settle`)."""
        super().__init__()
        self.incident = incident
        self.typed = typed
        self._first_view = view  # when the caller has it already, the first frame shows it
        self._suspended = False
        self._resumed = False
        self.gates_announced: set[tuple[str, str]] = set()  # (step, what made its approval stale)
        self.altered_announced = False
        self.view: IncidentView | None = None
        self.track: str | None = None
        self.seen_seq: int | None = None
        self._live = None  # the timer that ticks and refreshes
        # toasts still up, with what makes each one handled (checked against every new view)
        self.toasts: list[tuple[object, object]] = []

    def compose(self) -> ComposeResult:
        # Textual sets the breakpoint class on the screen's first Resize, after its first layout:
        # the first frame would show the wide screen at 80 columns, then restyle, lay out and
        # draw it again. The terminal's width is known now, so the first layout is the right one.
        width = self.app.size.width
        at = max((start for start, _ in self.HORIZONTAL_BREAKPOINTS if width >= start), default=None)
        for start, name in self.HORIZONTAL_BREAKPOINTS:
            self.set_class(start == at, name)
        # Few widgets: each costs the first frame about a millisecond (see widgets/current.py).
        # Resuming, the header says which incident is coming until its view is in.
        resuming = Text(f" resuming {one_line(self.typed) if self.typed else 'the latest open incident'}…",
                        style="bold") if self.incident is None else ""
        yield IncidentHeader(content=resuming, id="incident-header")  # with the tracks' lines under it
        with Horizontal(id="incident-body"):
            with VerticalScroll(id="steps-scroll"):  # tab brings the selected track's step into sight
                yield StepList(id="steps")
            yield CurrentStepPanel(id="current")  # the step, its instructions, then the timeline
            yield SidePanel(id="side")  # escalation and degradations (hidden when narrow)
        yield KeyBar()

    def on_mount(self) -> None:
        if self.incident is None:
            # resuming: this frame first; the app starts `settle` once it is on the terminal
            self.query_one("#incident-body").loading = True
        else:
            if self._first_view is not None:
                self.show(self._first_view)
                self._first_view = None
            else:
                self.refresh_view()
            self.go_live()
        # another machine's note shows at once where the store notifies (PostgreSQL), not only
        # on the next refresh
        self.app.gateway.watch(self._changed_elsewhere)

    def go_live(self) -> None:
        if self.app.live:
            # the first tick (which reads the whole log on the ticker's connection) waits for the
            # first frame rather than compete with it; anything due fires a moment later
            self.app.call_after_refresh(self.tick)
            self._live = self.set_interval(1.0, self.tick_and_refresh)

    @work(thread=True, exclusive=True, group="incident-settle", exit_on_error=False)
    def settle(self) -> None:
        """`runbook resume`: make the engines, find the incident, settle what a crash left
        half-done, read its view. No key acts until then (`check_action`). When it cannot be
        done (no such incident, a damaged record, a database out of reach, a bug) the app ends
        and the command reports why, as it would have before drawing anything."""
        gateway = self.app.gateway
        try:
            if self.typed is None:
                rows = gateway.incidents()  # the open ones, newest first
                if not rows:
                    raise NotFoundError("no open incident to resume (see `runbook incident list --all`)")
                incident = rows[0]["id"]
            else:
                incident = gateway.call("resolve_id", self.typed)
            gateway.call("reconcile", incident, force=True)
            view = gateway.view(incident)
        except GatewayClosed:
            return  # quit before it was done: nothing to report
        except Exception as exc:
            self.app.end_with(exc)
            return
        self.app.call_from_thread(self.settled, incident, view)

    def settled(self, incident: str, view: IncidentView) -> None:
        self.incident = incident
        self.query_one("#incident-body").loading = False
        self.show(view)
        self.go_live()

    def check_action(self, action: str, parameters: tuple) -> bool:
        # resuming: no key acts on the incident before it is found and settled
        return self.incident is not None

    def _changed_elsewhere(self, incident: str | None) -> None:
        if incident in (None, self.incident) and not self._suspended:
            try:
                self.app.call_from_thread(self.refresh_view)
            except RuntimeError:  # the app is closing
                pass

    def on_unmount(self) -> None:
        self.app.gateway.unwatch(self._changed_elsewhere)
        self._let_go()

    def retire(self) -> None:
        """Never shown again, though it stays under the home screen (see RunbookApp.go_home):
        it stops ticking and refreshing, as if it had been removed."""
        if self._live is not None:
            self._live.stop()
        self.app.gateway.unwatch(self._changed_elsewhere)
        self._let_go()

    def _let_go(self) -> None:
        """No longer ticked here: the incident's timers go to whoever ticks them next (serve) at once."""
        if self.incident is not None:
            self.app.gateway.release_timers(self.incident)

    # rendering ----------------------------------------------------------------------------

    def on_screen_suspend(self) -> None:
        self._suspended = True

    def on_screen_resume(self) -> None:
        if self._suspended:  # back from a dialog or another screen (not the first time it shows)
            self._suspended = False
            self.refresh_view()

    def tick_and_refresh(self) -> None:
        self.tick()
        self.refresh_view()

    @work(thread=True, group="incident-tick", exit_on_error=False)
    def tick(self) -> None:
        """Fire due timers on the ticker's own connection; a slow poll or page never holds up the screen."""
        try:
            if self.app.gateway.tick(self.incident):
                self.app.call_from_thread(self.refresh_view)
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")

    @work(thread=True, group="incident-warm", exit_on_error=False)
    def warm(self) -> None:
        """Once the first view is on screen: get the command and timer engines ready."""
        try:
            self.app.gateway.warm(self.incident)
        except RunbookError:
            pass  # the next command or tick reports it

    @work(thread=True, exclusive=True, group="incident-refresh", exit_on_error=False)
    def refresh_view(self) -> None:
        if self.incident is not None:  # resuming, `settle` reads the first view
            self.app.deliver(lambda: self.app.gateway.view(self.incident), self.show)

    def show(self, view: IncidentView) -> None:
        if self.view is None:
            self.app.call_after_refresh(self.app.started)
            self.app.call_after_refresh(self.warm)
            self.app.call_after_refresh(self.seen_before)
        self.announce(view)
        ended = view.drill and view.resolved and self.view is not None and not self.view.resolved
        self.view = view
        tracks_with_steps = [c.track for c in view.current]
        if self.track not in tracks_with_steps:
            self.track = tracks_with_steps[0] if tracks_with_steps else None
        self.draw(view)
        if ended:  # a drill ends in its debrief, whether resolved here or by its end conditions
            self.action_debrief()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.ScreenResume) and not self._resumed:
            # Textual restyles every widget of a screen that resumes. The first time, each was
            # styled a moment ago as it was mounted, under the breakpoint class compose set, and
            # a class set since restyles its own widgets: doing them all again is about a tenth
            # of the work before the first frame, for nothing. Later resumes (back from a
            # dialog, after a theme change) restyle as usual.
            self._resumed = True
            event.refresh_styles = False
        await super().on_event(event)

    def on_resize(self) -> None:
        # the first view may be drawn before the screen knows its size (and breakpoint class);
        # a resized terminal changes the header's folding and the timeline's length too
        if self.view is not None:
            self.draw(self.view)

    def draw(self, view: IncidentView) -> None:
        narrow = self.has_class("-narrow")
        self.query_one(IncidentHeader).show(view, narrow, self.track, key_for(type(self), "next_track"),
                                            key_for(type(self), "stage"), key_for(type(self), "post_update"))
        self.query_one(StepList).show(view, self.selected.id if self.selected else None)
        self.query_one(CurrentStepPanel).show(view, self.selected)
        self.query_one(Timeline).show(view, narrow)
        self.query_one(SidePanel).show(view)
        self.refresh_keys()

    def refresh_keys(self) -> None:
        self.query_one(KeyBar).refresh_keys()

    def key_available(self, action: str) -> bool:
        """Whether the key bound to `action` does something now (the footer shows only those)."""
        return self.unavailable(action) is None

    def unavailable(self, action: str) -> str | None:
        """Why the key bound to `action` does nothing now, or None when it does something."""
        view, step = self.view, self.selected
        if self.incident is None:  # resuming: only help and the palette until it is settled
            return None if action in GENERAL_ACTIONS else "the incident is still being read"
        if action.startswith("answer("):
            return None if step is not None and step.options else "the current step is not a decision"
        if action.startswith("page_instructions"):
            panel = self.query(CurrentStepPanel)
            return None if panel and panel.first().overflowing else "the instructions fit on screen"
        if view is None:
            return None
        if view.resolved:
            # in a follow-up phase its steps are worked as before; roles can still change hands
            followup = FOLLOWUP_ACTIONS if view.phase == "follow-up" else frozenset()
            if action not in AFTER_RESOLVE | followup | {"assign"}:
                keys = ", ".join(f"{key_for(type(self), a)} {a}" for a in ("restore", "note", "debrief", "export"))
                return f"{view.id} is resolved: what remains is {keys}"
            if action == "restore" and not any(f.applied for f in view.flags):
                return "nothing is still degraded"
            if action not in followup:
                return None
        elif action == "export":
            return "the postmortem is exported once the incident is resolved"
        if action in STEP_ACTIONS and step is None:
            return "no current step: every track is finished"
        if action == "post_update" and not view.updates:
            return "no step posts updates on a cadence now"
        if action == "signal" and not any(step.waiting_for and step.waiting_for.startswith("signal ")
                                          for step in view.current):
            return "no step waits for a signal"
        return {
            "ack": view.acknowledged_by and f"already acknowledged by {view.acknowledged_by}",
            "approve": step and not (step.approval_by and not step.approved_by) and f"“{step.title}” needs no approval",
            "done": step and step.kind in ("decision", "choose") and "a decision: choose an option",
            "choose": step and not step.options and f"“{step.title}” is not a decision",
            "run": step and not step.automated and f"“{step.title}” has nothing to run",
            "copy": step and not copyable(step) and f"“{step.title}” shows no command to copy",
            "next_track": len(view.current) < 2 and "only one track has a current step",
            "stop_background": not view.background and "no background command is running",
            "degrade": all(f.applied for f in view.flags) and "no degradation left to apply",
            "restore": not any(f.applied for f in view.flags) and "no degradation is applied",
            "stage": not staged_applied(view.flags) and "no staged degradation is applied: "
                     f"{key_for(type(self), 'degrade')} (or `runbook incident degrade`) starts one "
                     "at its first stage",
            "mitigate": view.status == "mitigated" and "already mitigated",
        }.get(action) or None

    def allowed(self, action: str) -> bool:
        """Guard at the top of an action: says why when its key does nothing now."""
        reason = self.unavailable(action)
        if reason:
            self.app.notify(reason[0].upper() + reason[1:] + ".", severity="warning", timeout=5)
        return reason is None

    def announce(self, view: IncidentView) -> None:
        """Notifications for what arrived since the last render: reminders, pages, breaches, others' notes,
        and approval gates the flow has reached; once, that the record does not verify."""
        if view.altered and not self.altered_announced:
            self.altered_announced = True
            self.app.notify(f"This incident's log does not verify: {view.altered}. Flags are not changed and "
                            "actions do not run; its degradations can still be restored (r), from what verifies.",
                            title="log altered", severity="error", timeout=60)
            self.app.bell()
        self.withdraw_handled(view)
        for step in view.current:
            gate = (step.id, step.approval_stale)  # a gate whose approval went stale is announced again
            if step.approval_by and not step.approved_by and gate not in self.gates_announced and not view.resolved:
                self.gates_announced.add(gate)
                again = f" again: {step.approval_stale}" if step.approval_stale else ""
                how = (f"{key_for(type(self), 'next')} approves and does it" if approves_itself(step, self.app.actor)
                       else f"press {key_for(type(self), 'approve')} to approve")
                toast = self.app.notify(f"“{step.title}” needs approval by {step.approval_by}{again}: {how}.",
                                        title="approval needed", severity="warning", timeout=30)
                self.toasts.append((toast, lambda v, step=step.id: v.resolved or not any(
                    c.id == step and not c.approved_by for c in v.current)))
        if self.seen_seq is None:
            self.seen_seq = view.last_seq
            return
        for line in view.timeline:
            if line.seq <= self.seen_seq:
                continue
            severity = line.loud  # each event type says how loudly it arrives (engine/events.py)
            if line.tone == "note" and line.actor != self.app.actor:
                severity = "information"
            if severity:
                toast = self.app.notify(line.text, title=line.type.replace("_", " "), severity=severity,
                                        timeout=30 if severity != "information" else 10)
                self.toasts.append((toast, lambda v, seq=line.seq: self.handled_since(v, seq)))
                if severity != "information":
                    self.app.bell()
        self.seen_seq = view.last_seq

    def handled_since(self, view: IncidentView, seq: int) -> bool:
        """An announced event is handled once this responder has acted after it (or the incident
        is resolved): its toast must not go on covering the newest timeline rows."""
        return view.resolved or any(line.seq > seq and line.actor == self.app.actor for line in view.timeline)

    def withdraw_handled(self, view: IncidentView) -> None:
        keep = []
        for toast, handled in self.toasts:
            if handled(view):
                self.app.withdraw(toast)
            elif toast.time_left > 0:  # still up (or about to be): check again with the next view
                keep.append((toast, handled))
        self.toasts = keep

    @property
    def selected(self) -> CurrentStep | None:
        if not self.view:
            return None
        return next((c for c in self.view.current if c.track == self.track), None)

    # commands -----------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="incident-command")
    def send(self, method: str, *args, after=None, with_events=None, **kwargs) -> None:
        """Run an engine command off the UI thread; `after` runs on the UI thread when it succeeded
        (`with_events` too, given the events the command recorded)."""
        self._sent(lambda: self.app.gateway.call(method, self.incident, self.app.actor, *args, **kwargs),
                   after, with_events)

    @work(thread=True, exit_on_error=False, group="incident-command")
    def send_attached(self, step_id: str, expect: str | None) -> None:
        """Run an interactive step's command attached (the app suspended, or a tmux window): only its
        start and its end go through the commands lane, so commands from elsewhere go on meanwhile."""
        runner = attached_runner(self.app)
        self._sent(lambda: self.app.gateway.run_attached(self.incident, self.app.actor, step_id, runner, expect),
                   None, None)

    def _sent(self, call, after, with_events) -> None:
        try:
            events = call()
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), title="not done", severity="error", timeout=10)
        else:
            if after is not None:
                self.app.call_from_thread(after)
            if with_events is not None:
                self.app.call_from_thread(with_events, events or [])
        self.app.call_from_thread(self.refresh_view)

    def confirm(self, question: str, detail: str, then) -> None:
        self.app.push_screen(dialogs.ConfirmDialog(question, detail), lambda yes: then() if yes else None)

    def _need_step(self, action: str) -> CurrentStep | None:
        return self.selected if self.allowed(action) else None

    @work(thread=True, exit_on_error=False, group="incident-plan")
    def ask_flip(self, method: str, args: tuple, ask, on_error=None) -> None:
        """Get what a flip writes from the engine that writes it (`method`: plan_degrade,
        plan_restore, plan_stage, plan_step; it reads the flag backend, so off the screen's thread),
        then `ask(plan)` on the screen's thread: a dialog stating the plan's lines. A refusal is a
        notification, or `on_error(message)`."""
        try:
            plan = self.app.gateway.plan(method, self.incident, *args)
        except RunbookError as exc:
            if on_error is not None:
                self.app.call_from_thread(on_error, str(exc))
            else:
                self.app.call_from_thread(self.app.notify, str(exc), title="not done", severity="error", timeout=10)
            return
        self.app.call_from_thread(ask, plan)

    def flips(self) -> str:
        return "This flips flags" + (" (drill: sandbox file)" if self.view and self.view.drill else "")

    def action_ack(self) -> None:
        if self.allowed("ack"):
            self.send("acknowledge")

    def action_done(self) -> None:
        step = self._need_step("done")
        if step is None:
            return
        if step.approval_by and not step.approved_by and not approves_itself(step, self.app.actor):
            self.app.notify(f"“{step.title}” needs approval by {step.approval_by} first "
                            f"({step.holder} holds it): press {key_for(type(self), 'approve')}.", severity="warning",
                            timeout=10)
            return
        if step.kind in ("degrade", "restore"):
            self.ask_flip("plan_step", (step.id,), lambda plan: self._flip_step(step, plan))
        elif approves_itself(step, self.app.actor) and step.compose:  # the text written is approved, then posted
            self._write(step, "to approve and post", lambda text: self._approve(
                step, "", message=text, then=lambda: self.send("complete", step.id, message=text), doing="post it"))
        elif approves_itself(step, self.app.actor) and step.kind != "handoff":
            self._approve(step, "", then=lambda: self.send("complete", step.id), doing="mark it done")
        elif step.kind == "handoff" and step.hand_to and not step.hand_resolves:
            self.confirm(f"Hand off to {step.hand_to}?", f"Contact: {step.hand_contact}\nRecorded as handed off, as "
                         "shown here; the incident stays open and its steps go on.",
                         lambda: self.send("complete", step.id))
        elif step.kind == "handoff" and step.hand_to:
            self.ask_flip("plan_resolve", (), lambda plans: self.confirm(
                f"Hand off to {step.hand_to}? This resolves the incident.",
                f"Contact: {step.hand_contact}\nThis incident ends here, as a resolve would. "
                + self._resolve_detail(plans, done=step.id),
                lambda: self.send("complete", step.id)))
        elif step.kind == "handoff":
            self.ask_flip("plan_resolve", (), lambda plans: self.confirm(
                f"Hand off to playbook “{step.handoff}”? This opens a linked incident on it, pages it "
                "now, and resolves this one.",
                "This incident ends here, as a resolve would. " + self._resolve_detail(plans, done=step.id)
                + "\nBoth incidents name each other in their timelines.",
                lambda: self.send("complete", step.id, with_events=self._offer_linked)))
        elif step.kind == "ask":
            self.ask_answer(step)
        elif step.compose:  # the responder writes the message now; the template is the draft
            self.app.push_screen(dialogs.TextPrompt(f"Post “{step.title}”" + (f" to {step.post_to}" if step.post_to
                                                                              else "") + ": write the message",
                                                    "the message", required=True,
                                                    value=step.approved_text or step.template or "", submit="post"),
                                 lambda text: text and self.send("complete", step.id, message=text))
        else:
            self.send("complete", step.id)

    def ask_answer(self, step: CurrentStep) -> None:
        """An ask step's parameter form, offering its value now; Enter records the answer (an
        answer is required even where the parameter was optional at open)."""
        parameter = step.ask_parameter
        if parameter is None:  # not declared: lint says so; the engine refuses it in words
            self.send("complete", step.id)
            return
        known = {} if step.ask_value is None else {parameter.name: step.ask_value}
        form = dialogs.ParameterForm(step.title, step.asks, {parameter.name: parameter._replace(required=True)},
                                     known, submit="answer")
        self.app.push_screen(form, lambda values: values is not None and self.send(
            "complete", step.id, value=values.get(parameter.name, step.ask_value)))

    def _flip_step(self, step: CurrentStep, plan) -> None:
        if approves_itself(step, self.app.actor):  # one confirmation: the approval, then the flip it approved
            verb = "apply" if step.kind == "degrade" else "restore"
            self._approve(step, _writes(plan), doing=f"{verb} “{step.degradation}”{_at(plan) if plan else ''}",
                          then=lambda: self.send("complete", step.id, **({"expect": plan.lines} if plan else {})))
            return
        if plan is None:  # already so: done without a flip, so without asking (nothing outside changes); said
            state = "already applied" if step.kind == "degrade" else "not applied"
            self.send("complete", step.id, after=lambda: self.app.notify(
                f"“{step.title}” done: “{step.degradation}” is {state}, no flags flipped.", timeout=3))
            return
        verb = "Apply" if step.kind == "degrade" else "Restore"
        self.confirm(f"{verb} degradation “{step.degradation}”{_at(plan)}? {self.flips()}.", "\n".join(plan.lines),
                     lambda: self.send("complete", step.id, expect=plan.lines))

    def _offer_linked(self, events) -> None:
        """After a handoff: offer to switch to the incident it opened (this one keeps running)."""
        linked = next((e.record for e in events if e.type == "handed_off"), None)
        if linked is not None:
            self.confirm(f"Open {linked.incident} ({linked.playbook}) now?",
                         f"{self.incident} is resolved by the handoff; esc on the new one goes home.",
                         lambda: self.app.open_incident(linked.incident))
    def ask_reason(self, title: str, placeholder: str, then) -> None:
        """A reason is required: an empty answer is refused, saying so, and the prompt stays."""
        self.app.push_screen(dialogs.TextPrompt(title, placeholder, required=True),
                             lambda reason: reason and then(reason))

    def action_skip(self) -> None:
        step = self._need_step("skip")
        if step:
            self.ask_reason(f"Skip “{step.title}” — why?", "reason (required)",
                            lambda reason: self.send("skip", step.id, reason))

    def action_fail(self) -> None:
        step = self._need_step("fail")
        if step:
            self.ask_reason(f"“{step.title}” failed — what happened?", "what went wrong (required)",
                            lambda reason: self.send("fail", step.id, reason))

    def action_choose(self) -> None:
        step = self._need_step("choose")
        if step is None:
            return
        if not step.options:
            self.app.notify(f"“{step.title}” is not a decision.", severity="warning")
            return
        self.app.push_screen(dialogs.ChoiceDialog(step.question or step.title, list(step.options),
                                                  step.suggested_index),
                             lambda index: index is not None and self._chosen(step, index))

    def _chosen(self, step: CurrentStep, index: int) -> None:
        if step.kind == "choose":
            if step.approval_by and not step.approved_by:
                self.app.notify(f"“{step.title}” needs approval by {step.approval_by} first: "
                                f"press {key_for(type(self), 'approve')}.", severity="warning", timeout=10)
                return
            if step.option_degradations[index] if index < len(step.option_degradations) else None:
                self.ask_flip("plan_step", (step.id, index), lambda plan: self.confirm(
                    f"Go with “{step.options[index]}”?",
                    f"Applies “{plan.degradation}”{_at(plan)}:\n" + "\n".join(plan.lines),
                    lambda: self.send("choose", str(index + 1), step.id, expect=plan.lines)))
                return
            self.confirm(f"Go with “{step.options[index]}”?", "This option flips no flags.",
                         lambda: self.send("choose", str(index + 1), step.id))
        else:
            self.send("choose", str(index + 1), step.id)

    def action_run(self) -> None:
        step = self._need_step("run")
        if step is None:
            return
        # what was shown is what may run: the engine refuses another command line (`expect`)
        expect = {"expect": step.command} if step.command else {}
        run = (lambda: self.send_attached(step.id, step.command)) if step.interactive else \
            (lambda: self.send("run", step.id, **expect))
        if step.approval_by and not step.approved_by:
            if not approves_itself(step, self.app.actor):
                self.app.notify(f"“{step.title}” needs approval by {step.approval_by} first "
                                f"({step.holder} holds it): press {key_for(type(self), 'approve')}.",
                                severity="warning", timeout=10)
                return
            self._approve(step, "", then=run, doing="run it")  # the command is among what the approval covers
            return
        where = ("\nIt opens in a new tmux window." if os.environ.get("TMUX") else
                 "\nIt runs in this terminal; runbook comes back when it ends.") if step.interactive else \
            f"\nIt keeps running in the background until {step.background} " \
            f"({key_for(type(self), 'stop_background')} stops it sooner)." \
            if step.background else ""
        self.confirm(f"Run “{step.title}”?", f"$ {step.command}{where}", run)

    async def action_next(self) -> None:
        """Enter: the current step's obvious next action, the first of the keys it shows; once
        every track is finished, resolving (which asks first)."""
        step = self._need_step("next")
        if step is not None:
            action, _ = actions_for(step, self.view, self.app.actor)[0]
            await self.run_action(action)
        elif self.view is not None and not self.view.resolved and not self.view.current:
            self.action_resolve()

    def action_answer(self, index: int) -> None:
        """A digit answers the decision on screen with that option (as `c` then the digit would)."""
        step = self._need_step(f"answer({index})")
        if step is None:
            return
        if index >= len(step.options):
            self.app.notify(f"“{step.title}” has {len(step.options)} options: 1-{len(step.options)}.",
                            severity="warning", timeout=5)
            return
        self._chosen(step, index)

    def action_copy(self) -> None:
        """The current step's command to the terminal's clipboard (OSC 52, which SSH carries; inside
        tmux also passed through to the outer terminal)."""
        step = self._need_step("copy")
        if step is None:
            return
        text = copyable(step)
        self.app.copy_to_clipboard(text)
        if os.environ.get("TMUX"):  # tmux keeps OSC 52 for itself unless passed through (allow-passthrough)
            encoded = base64.b64encode(text.encode()).decode()
            self.app.write_raw(f"\x1bPtmux;\x1b\x1b]52;c;{encoded}\a\x1b\\")
        lines = text.count("\n") + 1
        self.app.notify(one_line(text) if lines == 1 else f"{lines} lines, from {one_line(text.splitlines()[0])}",
                        title="copied to the clipboard", timeout=4)

    def action_approve(self) -> None:
        step = self._need_step("approve")
        if step is None:
            return
        if not step.approval_by:
            self.app.notify(f"“{step.title}” has no approval gate.", severity="warning")
            return
        if step.kind in ("degrade", "restore") and step.degradation:  # the approver reads what it will write
            self.ask_flip("plan_step", (step.id,), lambda plan: self._approve(step, _writes(plan)),
                          on_error=lambda why: self._approve(step, f"What it writes cannot be said now: {why}"))
        elif step.compose:  # what is approved is the text to post: written (or read) first
            self._write(step, "to approve", lambda text: self._approve(step, "", message=text))
        else:
            self._approve(step, "")

    def _write(self, step: CurrentStep, purpose: str, then) -> None:
        """A compose: true step's message, written in a prompt offering the draft (the text approved, else
        the template), then `then(text)`."""
        self.app.push_screen(dialogs.TextPrompt(f"“{step.title}”" + (f" to {step.post_to}" if step.post_to else "")
                                                + f": write the message {purpose}", "the message", required=True,
                                                value=step.approved_text or step.template or "", submit="next"),
                             lambda text: text and then(text))

    def _approve(self, step: CurrentStep, writes: str, then=None, doing: str = "", message: str | None = None) -> None:
        """Approve the step's gate, saying what the approval covers; with `then` (the approver is
        the one doing the step), one confirmation approves and then does it (`doing` says what).
        `message`: the text a compose: true step is approved for (the engine records it)."""
        # the engine refuses if what the gate covers changed while this was shown; a composed text is bound as given
        bound = {"expect": step.approval_content, **({"message": message} if message is not None else {})}
        if step.holder and step.holder != self.app.actor:  # someone else holds the role: an override, said why
            self.app.push_screen(dialogs.TextPrompt(f"{step.approval_by} is held by {step.holder}. Override and "
                                                    f"approve “{step.title}” — why?", "reason (recorded)",
                                                    detail=writes),
                                 lambda reason: reason and self.send("approve", step.id, override=reason, **bound))
            return
        if message is not None:
            writes = "\n".join(x for x in (writes, f"composed: {message}") if x)
        # what the approval records is what this says: the gate's content as the engine computes it
        detail = "\n".join(part for part in (f"Was approved for something else — {step.approval_stale}"
                                             if step.approval_stale else "",
                                             writes, *step.approval_covers,
                                             f"Recorded as approved by {self.app.actor}"
                                             + ("" if step.holder else f" (nobody holds {step.approval_by})")
                                             + (f", then {doing}." if then else "."))
                           if part)
        title = f"Approve “{step.title}” as {step.approval_by}" + (f" and {doing}?" if then else "?")
        # the approval records what this dialog showed, or nothing: the engine refuses if it changed meanwhile
        self.confirm(title, detail, lambda: self.send("approve", step.id, after=then, **bound))

    def action_post_update(self) -> None:
        """Post the update due (else the next one) of a step repeating on a cadence: its template
        filled now, or for a compose: true step the text written in a prompt offering the last post."""
        if not self.allowed("post_update"):
            return
        update = next((u for u in self.view.updates if u.due), None) or min(self.view.updates,
                                                                            key=lambda u: u.next_at)

        def post(text: str | None) -> None:
            if update.gated:  # approved first (the text written, or again what changed), recorded, then posted
                self.send("approve", update.step, message=text, expect=update.approval_content,
                          after=lambda: self.send("post", update.step, message=text, posted_before=update.posted))
            else:
                self.send("post", update.step, message=text, posted_before=update.posted)
        gate = f"\nIt is approved first, as {self.app.actor}: {update.stale or 'the text written'}." if update.gated \
            else ""

        def written(text: str) -> None:
            if gate:  # approving what was just written: said once more before it is recorded
                self.confirm(f"Approve and post “{text}”?", update.line + gate, lambda: post(text))
            else:
                post(text)
        if update.compose:
            self.app.push_screen(dialogs.TextPrompt(f"Post the next update of “{update.title}”: write it",
                                                    "the update", required=True, value=update.draft, submit="post",
                                                    detail=gate.strip()),
                                 lambda text: text and written(text))
        else:
            self.confirm(f"Post the next update of “{update.title}” now?",
                         f"{update.line}\nIts template is filled with the values of now and recorded as posted.{gate}",
                         lambda: post(None))

    def action_signal(self) -> None:
        names = [step.waiting_for.removeprefix("signal ") for step in (self.view.current if self.view else ())
                 if step.waiting_for and step.waiting_for.startswith("signal ")]
        if not names:
            self.app.notify("No step waits for a signal.", severity="warning")
            return
        name = names[0]
        self.confirm(f"Give the signal “{name}”?", "The steps waiting for it may then be done; recorded with "
                     f"your name ({self.app.actor}).", lambda: self.send("signal", name))

    def action_assign(self) -> None:
        roles = list(self.view.roles) if self.view else []
        if not roles:
            self.app.notify("This playbook declares no roles.", severity="warning")
            return
        wanted = unheld_roles(self.selected, self.view) if self.selected else []
        first = next((i for i, (rid, _, _) in enumerate(roles) if wanted and rid == wanted[0]), None)
        self.app.push_screen(dialogs.ChoiceDialog("Assign which role?", [
            f"{title} ({rid}): {holder or 'nobody'}" for rid, title, holder in roles], first),
            lambda i: i is not None and self._assign_to(*roles[i]))

    def _assign_to(self, role: str, title: str, holder: str | None) -> None:
        members = dict(self.view.members).get(role) if self.view else None
        if members is not None:  # held by several: someone joins, or whoever is at this keyboard leaves
            me = self.app.actor
            if me in members:
                def chosen(i: int | None) -> None:
                    if i == 0:
                        self._join(role, title, "")
                    elif i == 1:
                        self.send("leave", role)
                self.app.push_screen(dialogs.ChoiceDialog(f"{title}: held by {holder}", [
                    f"Add someone to {title}", f"Leave {title} ({me}); the others hold it on"], 0), chosen)
            else:
                self._join(role, title, me)
            return
        question = f"{title}: hand over from {holder} to" if holder else f"{title}: assign to"
        # offered: whoever is at this keyboard, the usual answer at 3 a.m. (type another name over it)
        self.app.push_screen(dialogs.TextPrompt(question, "who", value="" if holder else self.app.actor),
                             lambda person: person and self.send("assign", role, person))

    def _join(self, role: str, title: str, offered: str) -> None:
        self.app.push_screen(dialogs.TextPrompt(f"{title}: add", "who", value=offered),
                             lambda person: person and self.send("assign", role, person))

    def gate_for(self, name: str) -> CurrentStep | None:
        """The current step, not yet approved, whose gate applying `name` by hand must respect."""
        for step in self.view.current:
            if step.approval_by and not step.approved_by and step.kind == "degrade" and step.degradation == name:
                return step
        return None

    def action_degrade(self) -> None:
        if not self.allowed("degrade"):
            return
        flags = [f for f in self.view.flags if not f.applied]
        self.app.push_screen(dialogs.ChoiceDialog("Apply which degradation?", [
            f"{f.name}: {f.summary}" + _in_stages(f) for f in flags]),
            lambda i: i is not None and self._degrade(flags[i].name))

    def _degrade(self, name: str) -> None:
        gate = self.gate_for(name)
        if gate is not None:  # the engine refuses it too; say so before asking
            self.app.notify(f"“{name}” is applied by “{gate.title}”, which needs approval by {gate.approval_by}: "
                            f"press {key_for(type(self), 'approve')} first.", severity="warning", timeout=10)
            return
        self.ask_flip("plan_degrade", (name,), lambda plan: self.confirm(
            f"Apply “{name}”{_at(plan)}? {self.flips()}.", "\n".join(plan.lines),
            lambda: self.send("degrade", name, expect=plan.lines)))

    def action_restore(self) -> None:
        if not self.allowed("restore"):
            return
        names = [f.name for f in self.view.flags if f.applied]
        self.app.push_screen(dialogs.ChoiceDialog("Restore which degradation?", names),
                             lambda i: i is not None and self._restore(names[i]))

    def _restore(self, name: str) -> None:
        self.ask_flip("plan_restore", (name,), lambda plan: self.confirm(
            f"Restore “{name}”? {self.flips()} back.", "\n".join(plan.lines),
            lambda: self.send("restore", name, expect=plan.lines)))

    def action_stage(self) -> None:
        if not self.allowed("stage"):
            return
        staged = staged_applied(self.view.flags)
        if len(staged) == 1:
            self._steer(staged[0])
            return
        self.app.push_screen(dialogs.ChoiceDialog("Steer which staged degradation?",
                                                  [f"{f.name}: {f.ladder}" for f in staged]),
                             lambda i: i is not None and self._steer(staged[i]))

    def _steer(self, flag) -> None:
        choices = stage_choices(flag)
        self.app.push_screen(dialogs.ChoiceDialog(f"{flag.name}: {flag.ladder}", [c.label for c in choices]),
                             lambda i: i is not None and self._steer_why(flag.name, choices[i]))

    def _steer_why(self, name: str, choice: StageChoice) -> None:
        """Asks first, saying what it flips (the engine's plan of the move), as for every flag flip;
        the reason is optional (the timeline keeps it): Enter goes on without one, Esc cancels."""
        if not choice.flips:
            self._steer_ask(name, choice, choice.detail, None)
            return
        self.ask_flip("plan_stage", (name, choice.action, choice.full), lambda plan: self._steer_ask(
            name, choice, f"{self.flips()}:\n" + "\n".join(plan.lines), plan.lines))

    def _steer_ask(self, name: str, choice: StageChoice, detail: str, expect) -> None:
        self.app.push_screen(dialogs.TextPrompt(choice.question, "reason for the timeline (optional)",
                                                optional=True, detail=detail),
                             lambda reason: reason is not None and self.send(
                                 "stage", name, choice.action, reason, full=choice.full, expect=expect))

    def action_severity(self) -> None:
        if not self.allowed("severity"):
            return
        levels = [lv for lv in self.view.severities if lv != self.view.severity] if self.view else []
        if levels:
            self.app.push_screen(dialogs.ChoiceDialog(f"Severity is {self.view.severity}; change to", levels),
                                 lambda i: i is not None and self._severity_chosen(levels[i]))

    def _severity_chosen(self, level: str) -> None:
        """Raising needs no words; lowering asks why (the engine refuses it without a reason)."""
        order, now = self.view.severities, self.view.severity
        if now in order and order.index(level) > order.index(now):
            self.app.push_screen(dialogs.TextPrompt(f"Lower the severity {now} → {level} — why?", "reason"),
                                 lambda reason: reason and self.send("severity", level, reason))
        else:
            self.send("severity", level)

    def action_restart(self) -> None:
        """Pick a step of the selected track the incident already reached, say why, start again there."""
        track = next((t for t in self.view.tracks if t.id == self.track), None) if self.view else None
        reached = [row for row in track.steps if row.attempt > 0] if track else []
        if not reached:
            self.app.notify("No step of this track has been reached yet.", severity="warning")
            return
        labels = [f"{row.title} ({row.status})" for row in reached]
        self.app.push_screen(dialogs.ChoiceDialog(f"Restart track “{track.title}” from", labels),
                             lambda i: i is not None and self._restart_from(reached[i]))

    def _restart_from(self, row) -> None:
        self.app.push_screen(dialogs.TextPrompt(f"Restart from “{row.title}” — why?", "reason"),
                             lambda reason: reason and self.send("restart", row.id, reason))

    def action_stop_background(self) -> None:
        if not self.allowed("stop_background"):
            return
        running = self.view.background
        if len(running) == 1:
            self._stop_background(running[0])
            return
        self.app.push_screen(dialogs.ChoiceDialog("Stop which background command?",
                                                  [f"{b.title}: {b.command}" for b in running]),
                             lambda i: i is not None and self._stop_background(running[i]))

    def _stop_background(self, handle) -> None:
        """Asks first, saying what will be signalled: the process group as recorded, or nothing when
        it runs on another host."""
        if handle.here:
            what = (f"SIGTERM to process group {handle.pgid} (started {clock(handle.seconds)} ago), SIGKILL "
                    f"{handle.grace:g}s later if any of it is still running.")
        else:
            what = (f"It runs on {handle.host}, not here: nothing is signalled; its end is recorded as not "
                    f"signalled (stop it there: kill -TERM -- -{handle.pgid}).")
        # the handle shown (its pid) goes with the stop: a command started again meanwhile is not stopped unseen
        self.confirm(f"Stop “{handle.title}”?", f"$ {handle.command}\n{what}",
                     lambda: self.send("stop_background", handle.step, pid=handle.pid))

    def action_note(self) -> None:
        self.app.push_screen(dialogs.TextPrompt("Add a note to the timeline", "what you found or did"),
                             lambda text: text and self.send("note", text))

    def action_escalate(self) -> None:
        if self.allowed("escalate"):
            self.confirm("Page the next escalation level now?", "", lambda: self.send("escalate_now"))

    def action_mitigate(self) -> None:
        if self.allowed("mitigate"):
            self.send("mitigate")

    def action_resolve(self) -> None:
        if not self.allowed("resolve"):
            return
        self.ask_flip("plan_resolve", (), lambda plans: self.confirm(
            "Resolve the incident?", self._resolve_detail(plans), self._resolve))

    def _resolve_detail(self, plans, done: str | None = None) -> str:
        """What resolving writes — each degradation it restores with the values it writes, as the
        engine plans them (Engine.plan_resolve) — and the steps it leaves undone (all current
        steps but `done`, the handoff step that resolves it)."""
        detail = "\n".join(f"Restores {plan.degradation}:\n" + "\n".join(f"  {line}" for line in plan.lines)
                           for plan in plans) if plans else "No degradation is applied."
        undone = [c.title for c in self.view.current if c.id != done] if self.view else []
        if undone:
            detail += "\nLeft undone: " + "; ".join(undone)
        return detail

    def _resolve(self) -> None:
        self.send("resolve")  # a drill then shows its debrief (see show)

    def action_debrief(self) -> None:
        from runbook.tui.screens.debrief import DebriefScreen

        self.app.push_screen(DebriefScreen(self.incident))

    def action_learn(self) -> None:
        from runbook.tui.screens.learning import LearningScreen

        self.app.push_screen(LearningScreen(self.incident))

    @work(thread=True, exclusive=True, group="seen-before", exit_on_error=False)
    def seen_before(self) -> None:
        """On the incident's first screen: the closest past incidents, as a toast (and the repeat
        warning when the closest one has an open action item); the learning screen has the rest."""
        self.app.deliver(lambda: self.app.gateway.similar(self.incident), self.show_seen_before)

    def show_seen_before(self, found: dict) -> None:
        if not found["matches"]:
            return
        from runbook.read_models import similar_lines

        lines = [line for line in similar_lines(found) if not line.startswith("!!")]
        key = key_for(type(self), "learn")
        self.app.notify("\n".join(lines[:4]) + f"\n{key}: learn more", title="Seen this before", timeout=15)
        if found["repeat"]:
            self.app.notify(one_line(found["repeat"]), title="Repeat", severity="warning", timeout=30)

    def action_export(self) -> None:
        """Asks where, offering the postmortem folder (settings.postmortem_dir: outside the working
        tree unless RUNBOOK_POSTMORTEMS says otherwise); Enter writes there."""
        if not self.allowed("export"):
            return
        from runbook.settings import postmortem_dir

        default = str(postmortem_dir() / f"{self.incident}-postmortem.md")
        self.app.push_screen(dialogs.TextPrompt("Write the postmortem (Markdown) to", "a file or a folder",
                                                value=default, detail="Enter writes it there (folders are made); "
                                                "RUNBOOK_POSTMORTEMS sets the folder offered."),
                             lambda path: path and self.export(path))

    @work(thread=True, exit_on_error=False, group="incident-command")
    def export(self, path: str) -> None:
        self.app.deliver(lambda: self.app.gateway.export(self.incident, path),
                         lambda written: self.app.notify(f"Postmortem written to {written}", title="exported",
                                                         timeout=10))

    def action_page_instructions(self, direction: int) -> None:
        if self.allowed(f"page_instructions({direction})"):
            self.query_one(CurrentStepPanel).page(direction)

    def action_next_track(self) -> None:
        if not self.view or not self.view.current or not self.allowed("next_track"):
            return
        tracks = [c.track for c in self.view.current]
        self.track = tracks[(tracks.index(self.track) + 1) % len(tracks)] if self.track in tracks else tracks[0]
        self.show(self.view)

    def action_home(self) -> None:
        self.app.go_home()


def _at(plan) -> str:
    """" at stage 1 of 3 (10% of users)" for a stage a plan applies, else nothing."""
    return f" at {plan.staged}" if plan.staged else ""


def _writes(plan) -> str:
    if plan is None:
        return "Approving it flips no flags now (the degradation is already so)."
    return f"Approved, it writes{_at(plan)}:\n" + "\n".join(plan.lines)


def _in_stages(flag) -> str:
    """" — in stages 10% → 50% → 100% (S steers)" for a staged degradation, else nothing."""
    return f" — in stages {' → '.join(f'{share}%' for share in flag.stages)} (S steers)" if flag.stages else ""

