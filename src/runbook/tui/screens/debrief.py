"""The debrief after a drill (or any incident): each time against its target, what was breached,
the notes, and action items that are saved to the incident's log as they are written."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from runbook.catalog.durations import format_seconds
from runbook.errors import RunbookError
from runbook.tui.dialogs.prompt import TextPrompt
from runbook.tui.keys import key_for
from runbook.tui.widgets.keybar import KeyBar


class DebriefScreen(Screen):
    HELP_TITLE = "Debrief"
    BINDINGS = [
        Binding("i", "add_item", "Add action item", tooltip="Add an action item (saved to the incident's log)"),
        Binding("n", "add_note", "Note", tooltip="Add a note to the timeline"),
        Binding("escape,q", "close", "Back", tooltip="Back to the incident"),
        Binding("question_mark", "app.help", "Help", tooltip="Every key of every screen"),
    ]

    def __init__(self, incident: str):
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="debrief"):
            yield Static(id="debrief-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="debrief", exit_on_error=False)
    def load(self) -> None:
        self.app.deliver(lambda: self.app.gateway.debrief(self.incident), self.show)

    def show(self, data: dict) -> None:
        title = Text(f"Debrief — {data['title']} ({data['id']})" + ("  DRILL" if data["drill"] else ""),
                     style="bold")
        times = Table(title="Times against targets", title_justify="left", expand=False)
        for column in ("", "actual", "target", ""):
            times.add_column(column)
        for label, actual, target, breached in data["times"]:
            verdict = Text("BREACHED", style="bold red") if breached else Text("met" if actual is not None else "",
                                                                                 style="green")
            times.add_row(label, format_seconds(actual), format_seconds(target), verdict)
        steps = Table(title="Steps", title_justify="left")
        for column in ("step", "attempt", "time", "outcome"):
            steps.add_column(column)
        for run in data["steps"]:
            steps.add_row(Text(run["step"]), str(run["attempt"]), format_seconds(run["seconds"]),  # Text: never markup
                          Text(run["outcome"] or "in progress"))
        notes = Text("Notes\n", style="bold underline")
        for at, actor, text in data["notes"] or [("", "", "none")]:
            notes.append(f"  {at} {actor} {text}\n")
        items = Text(f"Action items ({key_for(type(self), 'add_item')} to add)\n", style="bold underline")
        for text, owner in data["items"] or [("none yet", "")]:
            items.append(f"  • {text}" + (f"  ({owner})" if owner else "") + "\n")
        from rich.console import Group

        self.query_one("#debrief-body", Static).update(Group(title, Text(""), times, Text(""), steps, Text(""),
                                                            notes, items))

    def action_add_item(self) -> None:
        self.app.push_screen(TextPrompt("Action item", "what should change before next time"),
                             lambda text: text and self.send("add_action_item", text))

    def action_add_note(self) -> None:
        self.app.push_screen(TextPrompt("Add a note", "what you noticed"),
                             lambda text: text and self.send("note", text))

    @work(thread=True, exit_on_error=False, group="debrief-command")
    def send(self, method: str, *args) -> None:
        try:
            self.app.gateway.call(method, self.incident, self.app.actor, *args)
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
        self.app.call_from_thread(self.load)

    def action_close(self) -> None:
        self.app.pop_screen()
