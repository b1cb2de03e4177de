"""Printing shared by the command groups: the one way text leaves a command.

Every line goes through `runbook.text.shown` on its way out, so text from the log, a
playbook, a flag file or a plugin can never send a control sequence to the terminal; JSON
goes through `json_shown`. Commands call `echo`, `secho` and `dump`, never click's directly
(a test holds them to it). Rows that must stay one line pass their values through
`one_line` first.
"""

from __future__ import annotations

import json

import click

from runbook.errors import DocumentError, RunbookError
from runbook.text import json_shown, shown


def echo(text: str = "", err: bool = False) -> None:
    click.echo(shown(text), err=err)


def secho(text: str, err: bool = False, **styles) -> None:
    """`echo` in colour: the text is made safe first, then click adds its own styling."""
    click.secho(shown(text), err=err, **styles)


def dump(data, indent: int | None = 2) -> None:
    """Print `data` as JSON, non-ASCII text kept readable, control and bidi characters escaped."""
    click.echo(json_shown(json.dumps(data, indent=indent, ensure_ascii=False)))


def plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):  # EscalationPolicy -> EscalationPolicies
        return f"{count} {word[:-1]}ies"
    return f"{count} {word}s"


def error_message(exc: RunbookError) -> str:
    """What to print after `runbook: error: `: one line. A DocumentError is the exception, its
    heading followed by one FILE:LINE:COL line per problem (as `runbook validate` prints them);
    any other message's later lines (a plugin's failures, a flag file's problems) are joined
    onto the first with "; "."""
    if getattr(exc, "formatted", False):  # formatted so already (by `runbook resume`'s child)
        return str(exc)
    text = shown(str(exc))  # a name typed on the command line may hold escape sequences
    if isinstance(exc, DocumentError):
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return text.strip()
    head = lines[0].rstrip(":")
    return f"{head}: {'; '.join(lines[1:])}"
