from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from runbook.tui.dialogs.base import Dialog


class ChoiceDialog(Dialog[int | None]):
    """Pick one of several labelled choices, by number key or arrows and Enter; returns the index."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")] + [
        Binding(str(n), f"pick({n - 1})", show=False) for n in range(1, 10)]

    def __init__(self, title: str, choices: list[str], selected: int | None = None):
        super().__init__()
        self.title_text, self.choices, self.selected = title, choices, selected

    def on_mount(self) -> None:
        if self.selected is not None:  # pre-selected (a suggested answer): Enter takes it
            self.query_one("#choices", OptionList).highlighted = self.selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # titles and labels come from the playbook: shown as text, never as markup
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield OptionList(*[Option(Text(f"{i}. {label}"), id=str(i - 1)) for i, label in enumerate(self.choices, 1)],
                             id="choices")
            digits = f"1-{min(len(self.choices), 9)}" if len(self.choices) > 1 else "1"
            more = " (↑↓ for the rest)" if len(self.choices) > 9 else ""
            yield Label(f"[b]{digits}[/b]{more} or [b]↑↓ Enter[/b] pick   [b]Esc[/b] cancel", classes="dialog-keys")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_pick(self, index: int) -> None:
        if index < len(self.choices):
            self.dismiss(index)

    def action_cancel(self) -> None:
        self.dismiss(None)
