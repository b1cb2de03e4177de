from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, Static

from runbook.tui.dialogs.base import Dialog


class ConfirmDialog(Dialog[bool]):
    """Asks before anything with a side effect outside the program (a flag flip, a shell action)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes", priority=True), Binding("n", "answer(False)", "No", priority=True),
                Binding("escape", "answer(False)", "Cancel", priority=True)]

    def __init__(self, question: str, detail: str = ""):
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # the question and detail quote step titles and commands: shown as text, never as markup
            yield Label(self.question, classes="dialog-title", markup=False)
            if self.detail:
                yield Static(self.detail, classes="dialog-detail", markup=False)
            yield Label("[b]y[/b] yes   [b]n[/b] no", classes="dialog-keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
