"""The current step: what to do now, its instructions, its timebox, and the keys that apply."""

from __future__ import annotations

import re

from rich.console import Group
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from runbook.tui.gateway import CurrentStep, IncidentView
from runbook.tui.keys import key_for
from runbook.tui.widgets.commands import ShellCommand
from runbook.tui.widgets.panels import Timeline, clock

_DIGITS = re.compile(r"\d")


_SHELL_FENCE = re.compile(r"^```(?:sh|bash|shell|console|zsh)[^\n]*\n(.*?)^```", re.M | re.S)


def copyable(step: CurrentStep) -> str:
    """What the copy key copies: the step's command, else the shell snippets of its instructions,
    else the message it posts; as the step shows them (parameters filled), whole, on their own lines."""
    if step.command:
        return step.command
    snippets = [block.strip() for block in _SHELL_FENCE.findall(step.instructions or "")]
    if snippets:
        return "\n".join(snippets)
    return (step.template or "").strip()


def unheld_roles(step: CurrentStep, view: IncidentView) -> list[str]:
    """Roles nobody holds that the step's message names (shown as ‹role›)."""
    return [rid for rid, _, holder in view.roles if holder is None and f"‹{rid}›" in (step.template or "")]


def approves_itself(step: CurrentStep, actor: str) -> bool:
    """Whether doing the step also approves it, in the one confirmation that says both: it waits for
    an approval and the one doing it may give it (holds the approving role, or nobody does)."""
    return bool(step.approval_by and not step.approved_by and step.holder in (None, actor)
                and step.kind not in ("decision", "choose"))


def actions_for(step: CurrentStep, view: IncidentView, actor: str = "") -> list[tuple[str, str]]:
    """The actions that apply to this step as (action, what it does here), the obvious next one
    first (Enter does it: IncidentScreen.action_next); the keys come from the screen's bindings,
    and the footer shows all of them."""
    actions = []
    if not view.acknowledged_by:
        actions.append(("ack", "acknowledge"))
    unheld = unheld_roles(step, view)
    if unheld:  # its message names a role nobody holds: it cannot be posted until someone does
        actions.append(("assign", f"assign {unheld[0]} (its message names it)"))
    both = approves_itself(step, actor)
    if step.approval_by and not step.approved_by and not both:
        actions.append(("approve", f"approve (as {step.approval_by})"))
    approve = f"approve (as {step.approval_by}) and " if both else ""
    if step.kind in ("decision", "choose"):
        actions.append(("choose", f"choose (1-{len(step.options)})" if 1 < len(step.options) < 10 else "choose"))
    elif step.kind == "degrade":
        actions.append(("done", f"{approve}apply {step.degradation}"))
    elif step.kind == "restore":
        actions.append(("done", f"{approve}restore {step.degradation}"))
    elif step.kind == "ask":
        actions.append(("done", "answer"))
    else:
        if step.automated:
            actions.append(("run", f"{approve}run it"))
        actions.append(("done", "done" if step.automated or not both else f"{approve}done"))
    actions += [("skip", "skip"), ("fail", "failed")]
    return actions


class CurrentStepPanel(Vertical):
    """The step's title, state and keys stay put; only its instructions (under the output of its
    last run) scroll, and the line over the timeline says when there is more (and which key
    shows it). The timeline is the panel's last child (the screen draws it).

    Few widgets on purpose: each one costs the first frame about a millisecond (compose, mount,
    styles twice, a render), so the title and keys are one, and the output and instructions one."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown_step = None  # the (step, track, template) whose instructions are up
        self._last = None
        self._key = None
        self._title_shape = None  # the title's text as last laid out, digits as 0
        self._body = None  # what the body shows: (the step's key, the last run's text)
        self._rendered: dict = {}
        self._loading = False

    @work(thread=True, exit_on_error=False, group="markdown")
    def load_markdown(self) -> None:
        # Started once the first view is on screen, off the UI thread: importing the Markdown
        # renderer takes longer than drawing the whole screen, and on two cores it would slow
        # the first frame even from a thread. Until it loads, instructions show as plain text.
        from runbook.tui.widgets.instructions import Instructions

        _renderer["markdown"] = Instructions
        self.app.call_from_thread(self._rerender)

    def _rerender(self) -> None:
        self._shown_step = None
        self._body = None
        self._rendered.clear()
        self._key = None
        if self._last:
            self.show(*self._last)

    def key(self, action: str) -> str:
        return key_for(type(self.screen), action)

    def hints(self, actions: list[tuple[str, str]], separator: str, first: bool = False) -> str:
        """The keys as "d done · s skip"; with `first`, Enter does the first one ("enter/d done")."""
        return separator.join(f"{self.key('next') + '/' if first and not i else ''}{self.key(action)} {label}"
                              for i, (action, label) in enumerate(actions))

    def compose(self) -> ComposeResult:
        yield Static(id="current-title")  # the title, what the step needs, and its keys
        with VerticalScroll(id="current-body"):  # the last run's output and the instructions scroll together
            yield Static(id="current-instructions")
        yield Timeline(id="timeline")

    def on_mount(self) -> None:
        body = self.query_one("#current-body")
        self.watch(body, "scroll_y", self._more, init=False)
        self.watch(body, "virtual_size", self._more, init=False)

    @property
    def overflowing(self) -> bool:
        body = self.query("#current-body")
        return bool(body) and body.first().max_scroll_y > 0

    def page(self, direction: int) -> None:
        body = self.query_one("#current-body", VerticalScroll)
        body.scroll_to(y=body.scroll_y + direction * max(1, body.size.height - 1), animate=False)

    def on_resize(self) -> None:
        self._more()

    def _more(self, *_) -> None:
        """Say whether the instructions go on, once the layout in progress is done (what
        scrolls is known only then: a new step's title, a resized terminal)."""
        self.call_after_refresh(self._say_more)

    def _say_more(self) -> None:
        """Whether the instructions go on below (or above), on the timeline's top border: the
        line is always there, so saying it never moves the layout."""
        body = self.query_one("#current-body", VerticalScroll)
        below, above = body.max_scroll_y - body.scroll_y, body.scroll_y
        parts = []
        if below > 0:
            parts.append(f"↓ more below: {self.key('page_instructions(1)')}")
        if above > 0:
            parts.append(f"↑ {self.key('page_instructions(-1)')} back up")
        more = f" {'  ·  '.join(parts)} " if parts else None
        timeline = self.query_one(Timeline)
        if timeline.border_title != more:
            timeline.border_title = more

    @property
    def more(self) -> str:
        """What the line over the timeline says about the instructions ("" when they fit)."""
        return (self.query_one(Timeline).border_title or "").strip()

    def _title(self, head: Text, keys: str | None, command: str = "", after: Text | None = None) -> None:
        """The title block: `head`; the step's command, broken between arguments only (see
        widgets/commands.py); `after`; and the keys that apply on its last line (in the theme's accent)."""
        tail = after.copy() if after is not None else Text()
        if keys:
            accent = self.app.theme_variables.get("accent", "")
            tail.append("\n" if tail.plain else "")
            tail.append(keys, style=f"bold {accent}".strip())
        if command:
            content = Group(head, ShellCommand(command), tail) if tail.plain else Group(head, ShellCommand(command))
        else:
            content = Text("\n").join(part for part in (head, tail) if part.plain)
        # Its height changes only if its text does beyond its digits (a countdown ticking wraps
        # the same): then it is laid out again, else only repainted.
        shape = _DIGITS.sub("0", "\n".join((head.plain, command, tail.plain)))
        self.query_one("#current-title", Static).update(content, layout=shape != self._title_shape)
        self._title_shape = shape

    def _put_body(self, step_key, run: Text, body) -> None:
        """The last run's output (when the step has run) above the instructions, in one widget."""
        if self._body == (step_key, run.plain):
            return
        self._body = (step_key, run.plain)
        widget = self.query_one("#current-instructions", Static)
        if run.plain and body:
            widget.update(Group(run, Text(""), body))
        else:
            widget.update(run if run.plain else body)

    def show(self, view: IncidentView, step: CurrentStep | None) -> None:
        self._last = (view, step)
        if _renderer["markdown"] is None and not self._loading:
            self._loading = True
            # the app's refresh, not this widget's: the widget's first refresh happens inside
            # Textual's start-up batch, before anything reaches the terminal
            self.app.call_after_refresh(self.load_markdown)
        key = (step, view.status, view.acknowledged_by, view.updates, self._shown_step is None)
        if key == self._key:
            return
        self._key = key
        if view.resolved:
            self._show_resolved(view)
            return
        if step is None:
            done = {"resolved": "resolved", "closed": "closed"}.get(view.status, "every track is finished")
            hints = self.hints([("resolve", "resolve"), ("note", "note"), ("home", "home")], " · ", first=True)
            self._title(Text(f"Nothing to do: {done}.", style="bold green"),
                        hints if view.status not in ("resolved", "closed") else None, after=self._updates(view))
            self._put_body(None, Text(""), "")
            self._shown_step = None
            self._more()
            return
        head = Text()
        head.append(f"{step.kind.upper()} ", style="bold reverse")
        head.append(f" {step.title}", style="bold")
        if step.role:
            head.append(f"   role: {step.role}", style="cyan")
        if step.waiting_for:
            head.append(f"   WAITING for {step.waiting_for}", style="bold yellow")
        if step.status == "failed":
            head.append(f"   FAILED — retry ({self.key('done')}), skip ({self.key('skip')}) or go on", style="bold red")
        if step.timebox_left is not None:
            style = "bold white on red" if step.timebox_left <= 0 else ("bold yellow" if step.timebox_left < 60 else "")
            head.append(f"   timebox {clock(step.timebox_left)}", style=style)
        if step.question:
            head.append(f"\n{step.question}", style="bold")
        for i, option in enumerate(step.options, 1):
            head.append(f"\n  {i}. {option}")
        if step.suggested:
            head.append(f"\nsuggested: {step.suggested} — {self.key('choose')} takes it or another",
                        style="bold magenta")
        if step.asks:
            head.append(f"\n{step.asks}: {self.key('done')} answers", style="bold magenta")
        if step.hand_to:
            then = "resolves the incident" if step.hand_resolves else "the incident stays open"
            head.append(f"\nhand off to {step.hand_to} · contact: {step.hand_contact} · {then}", style="bold magenta")
        after = []
        if step.waits_for:
            after.append(Text(f"waits for {step.waits_for}", style="bold cyan"))
        if step.expects:
            after.append(Text(f"expects {step.expects}", style="cyan"))
        if step.found:
            after.append(Text(f"found: {step.found}", style="bold red"))
        if step.last_poll:
            after.append(Text(f"last check: {step.last_poll}", style="dim"))
        if step.template:  # the message itself scrolls below, whole, with its line breaks
            after.append(Text(f"message to post{f' ({step.post_to})' if step.post_to else ''}: below",
                              style="italic"))
        if step.approval_by:
            if step.approval_stale:  # approved, but for something else: says what changed
                gate = (f"needs approval by {step.approval_by} again ({self.key('approve')}): "
                        f"{step.approval_stale}")
            else:
                gate = (f"approved by {step.approved_by}" if step.approved_by
                        else f"needs approval by {step.approval_by} ({self.key('approve')})")
            after.append(Text(gate, style="green" if step.approved_by else "bold yellow"))
        if view.updates:
            after.append(self._updates(view))
        self._title(head, self.hints(actions_for(step, view, self.app.actor), "  ·  ", first=True), step.command,
                    Text("\n").join(after))
        # a communicate step's message shows the time since it started: it is rendered again as
        # that changes, but it is the same step, so the scroll position stays where the responder left it
        key = (step.id, step.track)
        if key not in self._rendered or self._rendered[key][0] != step.template:
            body = _markdown(step.instructions) if step.instructions else ""
            if step.template:
                message = Text(step.template + "\n", style="italic")
                body = Group(message, body) if body else message
            self._rendered[key] = (step.template, body)
        self._put_body((key, step.template), last_run(step), self._rendered[key][1])
        if self._shown_step != key:
            self.query_one("#current-body", VerticalScroll).scroll_home(animate=False)
            self._shown_step = key
        self._more()

    def _updates(self, view: IncidentView) -> Text:
        """The steps posting on a cadence: an update due for a person (and the key that posts it),
        else when each posts next."""
        out = Text()
        for update in view.updates:
            out.append("\n" if out.plain else "")
            if update.due:
                out.append(f"{update.step}: {update.line} — {self.key('post_update')} posts it", style="bold yellow")
            else:
                out.append(f"{update.step}: {update.line}", style="cyan")
        return out

    def _show_resolved(self, view: IncidentView) -> None:
        """Resolved: the clock has stopped, nothing is current; what was left undone and what can
        still be done (restore leftovers, notes, debrief, export) instead of a live step."""
        head = Text(f"Resolved after {clock(view.elapsed)}", style="bold green")
        if view.resolved_at is not None:
            head.append(f" (at {view.resolved_at:%H:%M:%S})", style="green")
        body = Text()
        body.append(view.verdict + "\n", style="green" if not view.left else "bold")
        for heading, status, style in (("Left undone", "not done", "yellow"), ("Failed", "failed", "red"),
                                       ("Skipped", "skipped", "yellow")):
            steps = [step for step in view.left if step.status == status]
            if steps:
                body.append(f"{heading}:\n", style="bold")
            for step in steps:
                body.append(f"  – {step.title}", style=style)
                if step.reason:
                    body.append(f": {step.reason}", style=style)
                if step.settled:  # its flags are back already: only the step itself was not ticked off
                    body.append("  (its flags were restored at resolve)", style="green")
                body.append(f"  ({step.track})\n" if len(view.tracks) > 1 else "\n", style="dim")
        left = [f for f in view.flags if f.applied]
        if left:
            body.append("Still degraded (resolve kept them):\n", style="bold magenta")
            for flag in left:
                body.append(f"  ● {flag.name}: {', '.join(f'{n} → {v}' for n, v in flag.flags)}\n", style="magenta")
        offers = ([("restore", "restore what is still degraded")] if left else []) + [
            ("note", "note"), ("debrief", "debrief and action items"), ("export", "export postmortem")]
        self._title(head, self.hints(offers, "  ·  "))
        self._put_body(("resolved", body.plain), Text(""), body)
        self._shown_step = None
        self._more()


def last_run(step: CurrentStep) -> Text:
    """The exit code and output tail of the step's last run (already escaped by the gateway)."""
    if not step.ran:
        return Text("")
    code = "no exit code" if step.exit_code is None else f"exit {step.exit_code}"
    whose = "" if step.output_of == step.id else f" of {step.output_of}"
    out = Text(f"last run{whose}: {code}", style="bold" if step.exit_code in (0, None) else "bold red")
    out.append("\n" + (step.output or "(no output)"), style="dim")
    return out


_renderer: dict = {"markdown": None}


class RenderedOnce:
    """Wraps a costly renderable (Markdown with tables) so it renders once per width, not per frame."""

    def __init__(self, renderable):
        self.renderable = renderable
        self.lines: dict[int, list] = {}

    def __rich_console__(self, console, options):
        width = options.max_width
        if width not in self.lines:
            self.lines[width] = console.render_lines(self.renderable, options, pad=False)
        for line in self.lines[width]:
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console, options):
        return Measurement(options.max_width, options.max_width)


def _markdown(text: str):
    """Instructions as Markdown once the (slow to import) renderer is loaded, plain text until then."""
    markdown = _renderer["markdown"]
    return Text(text) if markdown is None else RenderedOnce(markdown(text))
