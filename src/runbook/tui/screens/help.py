"""Help: every key of every screen, read from the screens' bindings (the screen it was opened
from first), and what a responder should know about safety."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from runbook.tui.dialogs.base import Dialog
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.keys import help_rows, key_for

NOTES = ("Anything that changes something outside runbook (flags, commands, pages) asks first: {yes} / {no}. "
         "Everything is saved the moment you see it; closing the terminal loses nothing: "
         "reopen with [b]runbook resume[/b].")


def screen_types() -> list[type]:
    """The screens with keys, in the order the help lists them."""
    from runbook.tui.screens.debrief import DebriefScreen
    from runbook.tui.screens.home import HomeScreen
    from runbook.tui.screens.incident import IncidentScreen
    from runbook.tui.screens.learning import LearningScreen
    from runbook.tui.screens.report import ReportScreen

    return [IncidentScreen, HomeScreen, DebriefScreen, LearningScreen, ReportScreen]


def key_table(rows: list[tuple[str, str]]):
    """One key per line (a phrase per line reads better than two columns that wrap)."""
    from rich.table import Table

    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(style="bold", no_wrap=True, min_width=7)  # the same in every section
    table.add_column(ratio=1)
    for row in rows:
        table.add_row(*row)
    return table


class HelpScreen(Dialog[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def __init__(self, opened_from: type | None = None):
        super().__init__()
        self.opened_from = opened_from

    def sections(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(id, title, rows) for each screen, the one help was opened from first, then the app's own keys."""
        screens = sorted(screen_types(), key=lambda screen: screen is not self.opened_from)
        return [(screen.__name__, f"{screen.HELP_TITLE} keys", help_rows(screen)) for screen in screens] + [
            (type(self.app).__name__, "Everywhere", help_rows(type(self.app)))]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            for name, title, rows in self.sections():
                yield Static(f"[b]{title}[/b]", classes="help-title")
                yield Static(key_table(rows), id=f"help-{name}", classes="help-keys")
            yield Static(NOTES.format(yes=key_for(ConfirmDialog, "answer(True)"),
                                      no=key_for(ConfirmDialog, "answer(False)")), classes="help-notes")
