from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class TextPrompt(ModalScreen[str | None]):
    """One line of text (a note, a skip reason); Enter submits, Escape cancels. A `required`
    prompt says so when Enter is pressed on nothing (an empty note is simply not saved)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", required: bool = False):
        super().__init__()
        self.title_text, self.placeholder, self.required = title, placeholder, required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)  # quotes a step title
            yield Input(placeholder=self.placeholder, id="prompt-input")
            yield Label("", id="prompt-error", classes="dialog-error")
            yield Label("[b]Enter[/b] save   [b]Esc[/b] cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if value:
            self.dismiss(value)
        elif self.required:  # said, not silently ignored: the engine would refuse it anyway
            self.query_one("#prompt-error", Label).update("A reason is required: type one, or Esc to cancel.")

    def action_cancel(self) -> None:
        self.dismiss(None)
