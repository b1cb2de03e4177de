"""Learning from an incident: past incidents like it (what mitigated them, their open action
items), the postmortem sections people write (kept in the log), and action items: this
incident's, and those still open elsewhere."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from runbook.errors import RunbookError
from runbook.read_models import similar_lines
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.prompt import TextPrompt
from runbook.tui.keys import key_for
from runbook.tui.widgets.keybar import KeyBar


class LearningScreen(Screen):
    HELP_TITLE = "Learn"
    BINDINGS = [
        Binding("w", "write", "Write review", tooltip="Write a section of the postmortem (saved to the log)"),
        Binding("i", "add_item", "Add action item", tooltip="Add an action item to this incident"),
        Binding("c", "close_item", "Close item", tooltip="Close one of this incident's open action items, "
                                                         "with evidence"),
        Binding("escape,q", "close", "Back", tooltip="Back to the incident"),
        Binding("question_mark", "app.help", "Help", tooltip="Every key of every screen"),
    ]

    def __init__(self, incident: str):
        super().__init__()
        self.incident = incident
        self.data: dict | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="learning"):
            yield Static(id="learning-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="learning", exit_on_error=False)
    def load(self) -> None:
        self.app.deliver(lambda: self.app.gateway.learning(self.incident), self.show)

    def show(self, data: dict) -> None:
        self.data = data
        parts = [Text(f"Learn — {data['incident']}", style="bold"), Text("")]
        parts.append(Text("Seen this before\n", style="bold underline"))
        for line in similar_lines(data):
            parts.append(Text(f"  {line}\n", style="bold red" if line.startswith("!!") else ""))
        parts.append(Text("Review " + f"({key_for(type(self), 'write')} to write a section)\n",
                          style="bold underline"))
        for _section, title, text, by, at in data["review"]:
            if text is None:
                parts.append(Text(f"  {title}: ", style="bold").append("not written\n", style="dim"))
            else:
                parts.append(Text(f"  {title} ", style="bold").append(f"({by}, {at[:16].replace('T', ' ')})\n",
                                                                      style="dim"))
                parts.append(Text("".join(f"    {line}\n" for line in text.splitlines())))
        parts.append(Text(f"Action items ({key_for(type(self), 'add_item')} add, "
                          f"{key_for(type(self), 'close_item')} close)\n", style="bold underline"))
        for item in data["items"] or [None]:
            parts.append(Text(f"  {item_text(item)}\n" if item else "  none yet\n"))
        if data["elsewhere"]:
            parts.append(Text("Open elsewhere\n", style="bold underline"))
            for item in data["elsewhere"]:
                parts.append(Text(f"  {item_text(item)}\n"))
        self.query_one("#learning-body", Static).update(Group(*parts))

    def action_write(self) -> None:
        if self.data is None:
            return
        sections = self.data["review"]

        def chosen(index):
            if index is not None:
                section, title = sections[index][0], sections[index][1]
                self.app.push_screen(TextPrompt(title, sections[index][2] or "what you learned"),
                                     lambda text: text and self.send("write_review", section, text))

        self.app.push_screen(ChoiceDialog("Which section?", [title for _s, title, *_ in sections]), chosen)

    def action_add_item(self) -> None:
        self.app.push_screen(TextPrompt("Action item", "what should change before next time"),
                             lambda text: text and self.send("add_action_item", text))

    def action_close_item(self) -> None:
        still = [item for item in (self.data or {}).get("items", []) if item["status"] == "open"]
        if not still:
            self.app.notify("no open action item here", severity="warning")
            return

        def chosen(index):
            if index is not None:
                self.app.push_screen(TextPrompt("Evidence", "a link, a drill that passed, a check that now holds"),
                                     lambda text: text and self.close_item(still[index]["id"], text))

        self.app.push_screen(ChoiceDialog("Close which action item?", [item_text(i) for i in still]), chosen)

    @work(thread=True, exit_on_error=False, group="learning-command")
    def send(self, method: str, *args) -> None:
        try:
            self.app.gateway.call(method, self.incident, self.app.actor, *args)
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
        self.app.call_from_thread(self.load)

    @work(thread=True, exit_on_error=False, group="learning-command")
    def close_item(self, item: str, evidence: str) -> None:
        try:
            self.app.gateway.call("close_action_item", item, self.app.actor, evidence)
        except RunbookError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
        self.app.call_from_thread(self.load)

    def action_close(self) -> None:
        self.app.pop_screen()


def item_text(item: dict) -> str:
    due = f", due {item['due']}" + (" OVERDUE" if item["overdue"] else "") if item["due"] else ""
    state = "open" if item["status"] == "open" else f"closed ({item['evidence']})"
    return f"{item['id']} {item['text']} — {item['owner']}{due}, {state}"

