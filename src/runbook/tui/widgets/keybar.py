"""A one-line footer of keys: one widget instead of one per binding, so screens open fast.
It shows what its screen's bindings (and the app's) say, in their order."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from runbook.tui.keys import GENERAL_ACTIONS, footer_bindings, key_display


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def on_mount(self) -> None:
        text = Text()
        for binding in footer_bindings(type(self.screen), type(self.app)):
            text.append(f" {key_display(binding)} ", style="bold")
            text.append(f"{binding.description} ", style="dim" if binding.action in GENERAL_ACTIONS else "")
        self.update(text)
