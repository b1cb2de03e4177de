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
