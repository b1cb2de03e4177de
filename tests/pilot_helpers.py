"""What the TUI tests share: waiting for the screen to settle (no sleeping for time), pressing
keys, and reading what the terminal shows."""

from __future__ import annotations

import html
import re


async def settle(pilot):
    """Let workers finish and the screen catch up (no sleeping for time)."""
    for _ in range(5):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def press(pilot, *keys):
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def screen_text(app) -> str:
    """What the terminal shows, row by row (from Textual's SVG screenshot)."""
    svg = app.export_screenshot()
    rows = {}
    for y, text in re.findall(r'<text [^>]*y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(rows.items()))


def flat(text: str) -> str:
    return " ".join(text.split())


def widget_text(widget, width: int = 300) -> str:
    """A Static's content as plain text (a Group of renderables too), unwrapped up to `width`."""
    import io

    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()
