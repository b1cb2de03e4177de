"""Shell commands on screen: broken between arguments, never inside one, each broken line ending in
a shell continuation (` \\`), so what a mouse copies off the screen still runs as one command.

Rich wraps at the pane's width wherever a word ends, and a command cut after `--context` copies as
two commands; these renderables wrap at the width they are given, between arguments."""

from __future__ import annotations

import re

from rich.text import Text

# an argument: quoted parts and everything up to the next unquoted blank
_ARGUMENT = re.compile(r"""(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\])+""")
INDENT = "    "  # continuation lines, as people write them


def shell_lines(command: str, width: int, first: str = "") -> list[str]:
    """`command` (one line) as lines of at most `width` cells, `first` before the first one: broken
    between arguments only, every line but the last ending in ` \\`. An argument longer than a
    line has a line of its own (the terminal then wraps it; nothing else is cut there)."""
    words = _ARGUMENT.findall(command)
    if not words:
        return [first + command]
    lines, line = [], first + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) + 2 > width:  # room for the word and the " \" after it
            lines.append(line + " \\")
            line = INDENT + word
        else:
            line += " " + word
    lines.append(line)
    return lines


def shell_block(code: str, width: int) -> str:
    """Every line of a shell snippet broken as `shell_lines` does (comments and blanks as they are);
    a line that already continues (ends in a backslash) keeps its own breaks."""
    out = []
    for raw in code.splitlines():
        stripped = raw.lstrip()
        if len(raw) <= width or not stripped or stripped.startswith("#"):
            out.append(raw)
            continue
        lead = raw[: len(raw) - len(stripped)]
        out += shell_lines(stripped, width, first=lead) if not raw.endswith("\\") else [raw]
    return "\n".join(out)


class ShellCommand:
    """`$ command` in the current step's panel, broken between arguments at the panel's width."""

    def __init__(self, command: str, style: str = "bold green"):
        self.command, self.style = command, style

    def __rich_console__(self, console, options):
        yield Text("\n".join(shell_lines(self.command, max(20, options.max_width), first="$ ")), style=self.style,
                   no_wrap=False)
