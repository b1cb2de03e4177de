from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static

from runbook.tui.dialogs.base import Dialog


class TextPrompt(Dialog[str | None]):
    """One line of text (a note, a skip reason); Enter submits, Escape cancels. A `required`
    prompt says so when Enter is pressed on nothing (an empty note is simply not saved); an
    `optional` one goes on without it (returns ""), so it also asks before what it leads to,
    which `detail` says."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", required: bool = False, optional: bool = False,
                 detail: str = "", value: str = "", submit: str = "save"):
        super().__init__()
        self.title_text, self.placeholder, self.required = title, placeholder, required
        self.optional, self.detail, self.submit = optional, detail, submit
        self.value = value  # offered, ready to change

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)  # quotes a step title
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            # an offered value is selected: Enter takes it, typing replaces it
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("", id="prompt-error", classes="dialog-error")
            enter = "go on (with or without a reason)" if self.optional else self.submit
            yield Label(f"[b]Enter[/b] {enter}   [b]Esc[/b] cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value or self.optional:
            self.dismiss(value)
        elif self.required:  # said, not silently ignored: the engine would refuse it anyway
            self.query_one("#prompt-error", Label).update("A reason is required: type one, or Esc to cancel.")

    def action_cancel(self) -> None:
        self.dismiss(None)
