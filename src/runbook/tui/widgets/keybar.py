"""The footer of keys: one widget instead of one per binding, so screens open fast.

It shows what its screen's bindings (and the app's) say, in their order, but only the keys that
do something right now (the screen's `key_available(action)` says which), and it wraps between
keys onto a second or third line rather than cut one off: every key that works is on screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static
from textual.widgets._toast import ToastRack

from runbook.tui.keys import GENERAL_ACTIONS, footer_bindings, key_display


def pack(items: list[tuple[str, str, bool]], width: int) -> Text:
    """(key, label, general) items as lines of at most `width` cells, broken between items only."""
    lines, line, used = [], Text(), 0
    for key, label, general in items:
        size = len(key) + len(label) + 3
        if used and used + size > width:
            lines.append(line)
            line, used = Text(), 0
        line.append(f" {key} ", style="bold")
        line.append(f"{label} ", style="dim" if general else "")
        used += size
    lines.append(line)
    return Text("\n").join(lines)


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
        max-height: 3;
        background: $footer-background;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._shown: str | None = None

    def on_mount(self) -> None:
        self.refresh_keys()

    def on_resize(self) -> None:
        self.refresh_keys()

    def refresh_keys(self) -> None:
        """Redraw when the keys that work now (or the width) changed."""
        available = getattr(self.screen, "key_available", None)
        items = [(key_display(b), b.description, b.action in GENERAL_ACTIONS)
                 for b in footer_bindings(type(self.screen), type(self.app))
                 if available is None or available(b.action)]
        text = pack(items, self.size.width or self.app.size.width)
        if text.plain != self._shown:
            self._shown = text.plain
            self.update(text)
            self.clear_toasts(min(3, text.plain.count("\n") + 1))

    def clear_toasts(self, lines: int) -> None:
        """Toasts stack above the keys, never over them: the screen's toast rack (docked at the
        bottom like this bar) keeps a margin of the bar's height."""
        for rack in self.screen.query(ToastRack):
            rack.styles.margin = (0, 0, lines, 0)
