"""A one-line footer of keys: one widget instead of one per binding, so screens open fast."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


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

    def __init__(self, keys: list[tuple[str, str]], **kwargs):
        super().__init__(**kwargs)
        self.keys = keys

    def on_mount(self) -> None:
        text = Text()
        for key, label in self.keys:
            text.append(f" {key} ", style="bold")
            text.append(f"{label} ", style="dim" if key in ("^p", "?") else "")
        self.update(text)
