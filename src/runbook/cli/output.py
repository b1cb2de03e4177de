"""Printing shared by the command groups."""

from __future__ import annotations

import json

import click


def dump(data) -> None:
    """Print `data` as indented JSON, non-ASCII text kept readable."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
