"""Keys are declared once, in each screen's BINDINGS (and the app's, for the command palette).
The footer, the help screen, the command palette and the current step's hints are read from
them here, so a key added, moved or renamed shows up everywhere at once.

A binding's `description` is its short footer label; its `tooltip` is the longer phrase the
help screen and the palette show (the description when it has none). `show=False` keeps a
binding out of the footer only: help and palette list every binding with a description.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.binding import Binding
from textual.keys import format_key

# footer keys about the program rather than the screen's work, drawn dimmer
GENERAL_ACTIONS = frozenset({"app.help", "command_palette", "app.command_palette"})


def _display(key: str) -> str:
    """One key as a person reads it: `?` for question_mark, `^p` for ctrl+p, `esc` for escape."""
    *modifiers, name = key.strip().split("+")
    name = format_key(name)
    if "ctrl" in modifiers:
        modifiers.remove("ctrl")
        name = f"^{name}"
    return "+".join([*modifiers, name])


def key_display(binding: Binding, every: bool = False) -> str:
    """The binding's key for the footer (the first of several), or every key of it, `esc / q`."""
    if binding.key_display:
        return binding.key_display
    keys = [_display(key) for key in binding.key.split(",")]
    return " / ".join(keys) if every else keys[0]


def described(bindings) -> list[Binding]:
    return [binding for binding in bindings if binding.description]


def footer_bindings(screen_type: type, app_type: type) -> list[Binding]:
    """What the footer shows: the screen's shown bindings, then the app's (the palette)."""
    return [b for b in described(screen_type.BINDINGS) + described(app_type.BINDINGS) if b.show]


def explain(binding: Binding) -> str:
    return binding.tooltip or binding.description


def help_rows(screen_type: type) -> list[tuple[str, str]]:
    """Every described binding of a screen as (keys, what it does); bindings of one action share a row."""
    rows: dict[str, tuple[list[str], str]] = {}
    for binding in described(screen_type.BINDINGS):
        keys, _text = rows.setdefault(binding.action, ([], explain(binding)))
        keys.append(key_display(binding, every=True))
    return [(" / ".join(keys), text) for keys, text in rows.values()]


def key_for(screen_type: type, action: str) -> str:
    """The key bound to `action` on the screen, as shown to the user (for hints in text)."""
    for binding in screen_type.BINDINGS:
        if binding.action == action:
            return key_display(binding)
    raise LookupError(f"{screen_type.__name__} binds no key to {action!r}")


def palette_commands(screen) -> Iterator[tuple[str, str, object]]:
    """(title, help, callback) for each described binding of the screen: the palette runs the
    binding's own action, as pressing its key would."""
    seen = set()
    for binding in described(type(screen).BINDINGS):
        if binding.action in seen:
            continue
        seen.add(binding.action)
        help_text = f"{explain(binding)}  ({key_display(binding, every=True)})"
        yield binding.description, help_text, partial(screen.run_action, binding.action)
