"""The one renderer: every text runbook shows or sends, and every command it runs, is filled here.

A template is text with `{name}` fields. `{{` and `}}` stand for one literal brace each (as in
Python's str.format), so a Go template is written `--template={{{{.metadata.name}}}}` and a
PromQL selector `rate(x{{code="500"}}[5m])`. Any other brace is an error, reported with the fix.

Commands stay argv lists: each argument is rendered on its own, so a value is always a substring
of one argument, whatever it contains (spaces, quotes, `;`, braces), and never becomes several.
A value is never rendered again: braces inside a value are text.

Playbooks that declare no `parameters:` keep the language they were written in: their commands
and messages are rendered `plain` (only `{name}` is a field and must have a value; every other
brace is text, with no escapes: `awk '{print $1}'` stays as it is), and their prose (titles,
instructions, prompts, reminders) `lenient` (only fields whose name has a value are filled), so
text written before templates existed reads and runs the same.
Pure: no clock, no state; the caller supplies the values.
"""

from __future__ import annotations

import re
import shlex
from typing import NamedTuple

BUILTINS = {
    "incident": "the incident id",
    "title": "the playbook's title",
    "severity": "the incident's current severity",
    "service": "the playbook's service",
    "playbook": "the playbook id",
    "elapsed": "time since the incident opened, like 12m30s; it stops at resolve",
    "duration": "how long the incident lasted: open to resolve (so far, while open), like 1h05m",
    "opened_at": "when the incident opened, like 2026-01-05 09:00 UTC",
    "now": "the time now, like 2026-01-05 09:12 UTC",
}
NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_TOKEN = re.compile(r"\{\{|\}\}|\{(" + NAME + r")\}|[{}]")
_FIELD = re.compile(r"\{(" + NAME + r")\}")
# `{{` (exactly two braces) opening something Go's text/template would read: `.field`, `$var`, `-`
# trimming, or a keyword. Doubled braces are one literal brace here, so it would lose a brace.
_GO = re.compile(r"(?<!\{)\{\{(?!\{)\s*(-\s*)?(\.|\$[A-Za-z_]|(range|if|else|end|with|define|template|block"
                 r"|index|printf|len|not|and|or|eq|ne)\b)")


class TemplateError(ValueError):
    """A template that cannot be rendered: a stray brace, or a field with no value."""

    def __init__(self, message: str, offset: int = 0, name: str | None = None):
        super().__init__(message)
        self.offset, self.name = offset, name


class Field(NamedTuple):
    name: str
    offset: int


def parse(text: str) -> list:
    """The template as literal strings and Fields; TemplateError at the first stray brace."""
    parts: list = []
    literal, pos = [], 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos:match.start()])
        token = match.group()
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1):
            parts.append("".join(literal))
            literal = []
            parts.append(Field(match.group(1), match.start()))
        else:
            raise TemplateError(_stray(text, match.start(), token), match.start())
        pos = match.end()
    literal.append(text[pos:])
    parts.append("".join(literal))
    return [p for p in parts if p != ""]


def _stray(text: str, at: int, brace: str) -> str:
    shown = text if len(text) <= 60 else text[max(0, at - 25):at + 25]
    return (f"'{brace}' at character {at + 1} of {shown!r} is not part of a {{name}} field; "
            f"write '{brace * 2}' for a literal '{brace}'")


STRICT, PLAIN, LENIENT = "strict", "plain", "lenient"


def fields(text: str, mode: str = STRICT) -> list[Field]:
    """The `{name}` fields of a template (strict: TemplateError if it does not parse)."""
    if mode != STRICT:
        return [Field(m.group(1), m.start()) for m in _FIELD.finditer(text)]
    return [p for p in parse(text) if isinstance(p, Field)]


def value_text(value) -> str:
    """How a value reads in text: booleans as true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (dict, list)):
        raise TemplateError(f"must be text or a number, got {type(value).__name__ if value is not None else 'nothing'}")
    return str(value)


def render(text: str, values: dict, mode: str = STRICT) -> str:
    """Fill `text` from `values`. Strict (the default): a stray brace or a field with no value
    raises TemplateError. Plain: only `{name}` is a field (no escapes), and it must have a value.
    Lenient: fill the fields that have a value, leave everything else as written."""
    if mode != STRICT:
        def fill(match):
            name = match.group(1)
            if name in values and (mode == PLAIN or _plain(values[name])):
                try:
                    return value_text(values[name])
                except TemplateError as exc:
                    raise TemplateError(f"{{{name}}} {exc}", match.start(), name) from None
            if mode == PLAIN:
                raise TemplateError(f"{{{name}}} has no value", match.start(), name)
            return match.group()
        return _FIELD.sub(fill, text)
    out = []
    for part in parse(text):
        if isinstance(part, Field):
            if part.name not in values:
                raise TemplateError(f"{{{part.name}}} has no value", part.offset, part.name)
            try:
                out.append(value_text(values[part.name]))
            except TemplateError as exc:
                raise TemplateError(f"{{{part.name}}} {exc}", part.offset, part.name) from None
        else:
            out.append(part)
    return "".join(out)


def placeholder(name: str) -> str:
    """How a value not known yet reads in a text for people: ‹name›."""
    return f"‹{name}›"


def for_people(text: str | None, values: dict, later=(), templated: bool = True) -> str:
    """A text for people (a title, instructions, a prompt, a message): filled from `values`, and a
    field of a name in `later` (a value known only later: an optional parameter, a capture, a role's
    holder) shown as ‹name›. Never raises. Not `templated` (a playbook without parameters:), only the
    names given are filled and every other brace stays as written."""
    if not text:
        return text or ""
    if not templated:
        return render(text, {**{name: placeholder(name) for name in later}, **values}, LENIENT)
    try:
        return render(text, values)
    except TemplateError:
        try:
            return render(text, {**{name: placeholder(name) for name in later}, **values})
        except TemplateError:
            return text  # lint refuses such a text; an old snapshot may still hold one


def _plain(value) -> bool:
    return not (value is None or isinstance(value, (dict, list)))


def render_argv(argv, values: dict, mode: str = STRICT) -> tuple[str, ...]:
    """Each argument rendered on its own: a value stays inside the one argument it was written in."""
    return tuple(render(arg, values, mode) for arg in argv)


def command_line(argv) -> str:
    """The exact command as a shell would need it typed (shlex.join), for people to read and copy."""
    return shlex.join(argv)


def go_template_misuse(text: str) -> str | None:
    """The fix when `text` holds a Go template written with plain `{{ }}`, which would lose a brace
    each side; None when it does not (kubectl's jsonpath, which wants one brace, is left alone)."""
    match = _GO.search(text)
    if match is None or "jsonpath" in text:
        return None
    end = text.find("}}", match.end())
    snippet = text[match.start():end + 2] if end >= 0 else text[match.start():match.start() + 30]
    inner = snippet[2:-2] if snippet.endswith("}}") else snippet[2:]
    return (f"'{snippet}' looks like a Go template, but doubled braces are one literal brace here, so it "
            f"would render as '{{{inner}}}'; write '{{{{{{{{{inner}}}}}}}}}' for '{{{{{inner}}}}}'")
