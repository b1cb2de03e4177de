"""The current step: what to do now, its instructions, its timebox, and the keys that apply."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from runbook.tui.gateway import CurrentStep, IncidentView
from runbook.tui.widgets.panels import clock


def keys_for(step: CurrentStep, view: IncidentView) -> list[tuple[str, str]]:
    """The actions that apply to this step, with their keys (the footer shows all of them)."""
    keys = []
    if not view.acknowledged_by:
        keys.append(("a", "acknowledge"))
    if step.approval_by and not step.approved_by:
        keys.append(("p", f"approve (as {step.approval_by})"))
    if step.kind in ("decision", "choose"):
        keys.append(("c", "choose an option"))
    elif step.kind == "degrade":
        keys.append(("d", f"apply {step.degradation}"))
    elif step.kind == "restore":
        keys.append(("d", f"restore {step.degradation}"))
    else:
        if step.automated:
            keys.append(("u", "run it"))
        keys.append(("d", "done"))
    keys += [("s", "skip"), ("f", "failed")]
    return keys


class CurrentStepPanel(VerticalScroll):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown_step = None

    def compose(self) -> ComposeResult:
        yield Static(id="current-title")
        yield Markdown(id="current-instructions")
        yield Static(id="current-keys")

    def show(self, view: IncidentView, step: CurrentStep | None) -> None:
        title = self.query_one("#current-title", Static)
        keys = self.query_one("#current-keys", Static)
        markdown = self.query_one("#current-instructions", Markdown)
        if step is None:
            done = "resolved" if view.status == "resolved" else "every track is finished"
            title.update(Text(f"Nothing to do: {done}.", style="bold green"))
            keys.update(Text("x resolve · n note · escape home", style="dim") if view.status != "resolved" else "")
            if self._shown_step is not None:
                markdown.update("")
                self._shown_step = None
            return
        head = Text()
        head.append(f"{step.kind.upper()} ", style="bold reverse")
        head.append(f" {step.title}", style="bold")
        if step.role:
            head.append(f"   role: {step.role}", style="cyan")
        if step.status == "failed":
            head.append("   FAILED — retry (d), skip (s) or go on", style="bold red")
        if step.timebox_left is not None:
            style = "bold white on red" if step.timebox_left <= 0 else ("bold yellow" if step.timebox_left < 60 else "")
            head.append(f"   timebox {clock(step.timebox_left)}", style=style)
        if step.question:
            head.append(f"\n{step.question}", style="bold")
        for i, option in enumerate(step.options, 1):
            head.append(f"\n  {i}. {option}")
        if step.command:
            head.append(f"\n$ {step.command}", style="bold green")
        if step.last_poll:
            head.append(f"\nlast check: {step.last_poll}", style="dim")
        if step.template:
            head.append(f"\nmessage: {step.template}", style="italic")
        if step.approval_by:
            gate = f"approved by {step.approved_by}" if step.approved_by else f"needs approval by {step.approval_by} (p)"
            head.append(f"\n{gate}", style="green" if step.approved_by else "bold yellow")
        title.update(head)
        key = (step.id, step.track)
        if self._shown_step != key:
            markdown.update(step.instructions or "")
            self._shown_step = key
        keys.update(Text("  ·  ".join(f"{k} {label}" for k, label in keys_for(step, view)), style="bold"))
