"""Parameters: the values an incident supplies to its playbook, checked before any command sees them.

Values come from `--param KEY=VALUE`, from alert labels (through each parameter's `label:`),
from a form in the TUI, or from the parameter's default; each is checked against its type and
pattern here, and the first problem is one line naming the parameter, the value and where it
came from. Pure: the engine records what this returns.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from runbook.catalog.models import Parameter, Playbook
from runbook.catalog.suggest import did_you_mean
from runbook.errors import UsageError

SOURCES = ("param", "label", "form", "default")
MAX_VALUE = 1024
_TYPES = {
    "integer": (re.compile(r"^-?[0-9]+$"), "a whole number"),
    "number": (re.compile(r"^-?[0-9]+(\.[0-9]+)?$"), "a number"),
    "boolean": (re.compile(r"^(true|false)$"), "true or false"),
}


class ParameterError(UsageError):
    """A value that is missing, unknown or does not fit its parameter."""


class Resolved(NamedTuple):
    values: dict  # name -> text
    sources: dict  # name -> param, label, form or default
    missing: tuple  # required parameters nobody gave
    ignored: tuple = ()  # (name, why) of an optional parameter whose label value did not fit it


def problem(parameter: Parameter, value: str) -> str | None:
    """Why `value` does not fit `parameter`, or None when it does."""
    if not isinstance(value, str):
        return f"expected text, got {type(value).__name__}"
    if len(value) > MAX_VALUE:
        return f"is {len(value)} characters long, at most {MAX_VALUE} are allowed"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains a control character (a newline, tab or escape)"
    if parameter.type in _TYPES:
        regex, what = _TYPES[parameter.type]
        if not regex.match(value):
            return f"is not {what}"
    if parameter.pattern is not None:
        try:
            if re.search(parameter.pattern, value) is None:
                return f"does not match {parameter.pattern}"
        except re.error as exc:
            return f"cannot be checked: its pattern is not a valid regular expression ({exc})"
    return None


def check(playbook: Playbook, name: str, value: str, source: str) -> str:
    """`value` for parameter `name`, or ParameterError in one line."""
    parameter = playbook.parameters.get(name)
    if parameter is None and name in playbook.captures:
        parameter = Parameter(name)  # captured by a step, not declared: any one line of text; set by hand to override
    if parameter is None:
        known = ", ".join(playbook.parameters) or "none"
        raise ParameterError(f"playbook {playbook.id} has no parameter '{name}' (parameters: {known})"
                             f"{did_you_mean(name, playbook.parameters)}")
    why = problem(parameter, value)
    if why:
        raise ParameterError(f"parameter {name}: {value!r} {why} (from {_where(source, parameter)})")
    return value


def _where(source: str, parameter: Parameter) -> str:
    return {"param": "--param", "label": f"alert label {parameter.label}", "form": "the form",
            "default": "its default", "set": "runbook incident param",
            "ask": "the answer to an ask step"}.get(source, source)


def resolve(playbook: Playbook, params: dict | None = None, labels: dict | None = None,
            form: dict | None = None) -> Resolved:
    """Every parameter's value and source; form beats --param beats label beats default.
    ParameterError for an unknown name or a bad value; `missing` lists required ones unfilled.
    A label value that does not fit an optional parameter leaves it unset (or at its default)
    and is listed in `ignored` with why: an alert with an odd label still opens its incident."""
    values, sources, ignored = {}, {}, []
    for name, value in (params or {}).items():
        values[name], sources[name] = check(playbook, name, value, "param"), "param"
    for name, value in (form or {}).items():
        if value != "" or name not in values:
            values[name], sources[name] = check(playbook, name, value, "form"), "form"
    for name, parameter in playbook.parameters.items():
        if name in values:
            continue
        if parameter.label and labels and parameter.label in labels:
            try:
                values[name], sources[name] = check(playbook, name, labels[parameter.label], "label"), "label"
                continue
            except ParameterError as exc:
                if parameter.required:
                    raise
                ignored.append((name, str(exc)))  # an alert's odd label must not stop the incident
        if parameter.default is not None:
            values[name], sources[name] = check(playbook, name, parameter.default, "default"), "default"
    for name in [n for n, v in values.items()
                 if v == "" and not getattr(playbook.parameters.get(n), "required", False)]:
        del values[name], sources[name]  # an optional parameter left empty stays unset
    missing = tuple(n for n, p in playbook.parameters.items() if p.required and n not in values)
    return Resolved(values, sources, missing, tuple(ignored))


def missing_message(playbook: Playbook, missing) -> str:
    name = missing[0]
    parameter = playbook.parameters[name]
    what = f" ({parameter.summary})" if parameter.summary else ""
    via = f" or --label {parameter.label}=VALUE" if parameter.label else ""
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    return f"playbook {playbook.id} needs parameter {name}{what}: give --param {name}=VALUE{via}{more}"


def parse_pairs(items, option: str) -> dict:
    """`KEY=VALUE` strings (from --param / --label) as a dict; ParameterError for one without '='."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"{option} {item!r} is not KEY=VALUE, expected e.g. {option} region=eu-west-1")
        out[key] = value
    return out
