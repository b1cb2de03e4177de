"""The parts of a document that passed its schema, so the linter can check them in the same run.

A document with schema errors gets no model of its own (it is never run), but leaving it out of
the linter would hide its other problems until the schema errors are fixed ("fix one, meet the
next") and make every reference to it unknown (one malformed rotation, and every escalation
level naming any rotation of that roster fails). Here each schema error marks the smallest
unit that holds it (a step, a rotation, a level, a degradation, a top-level field), the unit is
replaced by a neutral stand-in that keeps its id and its place (so positions and references
stay right), and the linter checks the rest. Problems inside a broken unit, warnings and flow
checks of a partial document are not reported: its schema errors speak for it.
"""

from __future__ import annotations

import copy
import re

from runbook.catalog import kinds

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAMED = ("degradations", "roles", "parameters", "tracks")  # mappings of named items
_STEP = {"title": "-"}
_TIME = "2026-01-01T00:00"

# What stands in for a broken unit, by kind and the unit's shape (# a list index, * a name).
# A dict stand-in keeps the broken item's id when it had a valid one.
_STAND_INS = {
    "Playbook": {("id",): "x", ("title",): "-", ("service",): "-", ("severity",): "-", ("escalation",): "-",
                 ("steps",): ["-"], ("steps", "#"): _STEP, ("tracks", "*"): {"steps": ["-"]},
                 ("tracks", "*", "steps", "#"): _STEP, ("symptoms", "#"): {"summary": "-"},
                 ("reminders", "#"): {"every": "1m", "message": "-"},
                 ("degradations", "*"): {"summary": "-", "set": {"-": True}},
                 ("roles", "*"): {"title": "-"}, ("parameters", "*"): {}},
    "Procedure": {("id",): "x", ("steps",): ["-"], ("steps", "#"): _STEP},
    "Shared": {("id",): "x", ("parameters", "*"): {}, ("roles", "*"): {"title": "-"}, ("texts", "*"): "-"},
    "SeverityPolicy": {("id",): "x", ("levels", "#"): {"title": "-"}, ("tiers", "#"): {"title": "-"}},
    "EscalationPolicy": {("id",): "x", ("levels", "#"): {"notify": [{"person": "-"}], "escalate_after": "1m"}},
    "Roster": {("id",): "x", ("timezone",): "UTC", ("people", "#"): {"name": "-"},
               ("rotations", "#"): {"members": ["-"], "shift": "1d", "start": _TIME},
               ("overrides", "#"): {"rotation": "-", "person": "-", "from": _TIME, "until": "2026-01-02T00:00"}},
}
_IDS = {("symptoms", "#"), ("reminders", "#"), ("levels", "#"), ("tiers", "#"), ("people", "#"), ("rotations", "#")}
_DROP = object()


def repair(value: dict, kind: str) -> tuple[dict, tuple[tuple, ...]] | None:
    """(the data with every broken unit replaced, the broken units' paths), or None when the
    document cannot be checked in parts (a kind without stand-ins, or a stand-in that does not fit)."""
    table = _STAND_INS.get(kind)
    if table is None:
        return None
    validator = kinds.validator(kind)
    allowed = set(kinds.schema(kind).get("properties", {}))
    units: set[tuple] = set()
    unknown: set = set()
    for error in validator.iter_errors(value):
        path = tuple(error.absolute_path)
        if path:
            units.add(_unit(path))
        elif error.validator == "required":
            units.update((name,) for name in error.validator_value if name not in value)
        elif error.validator == "additionalProperties":
            unknown.update(key for key in value if key not in allowed)
        else:
            return None
    data = {key: item for key, item in value.items() if key not in unknown}
    data = copy.deepcopy(data)
    kept = []
    for unit in sorted(units, key=len):
        if any(unit[:len(other)] == other for other in kept):
            continue
        kept.append(unit)
        stand_in = _stand_in(table, unit, data)
        if stand_in is None:
            return None
        _put(data, unit, stand_in)
    if next(validator.iter_errors(data), None) is not None:
        return None
    return data, tuple(kept)


def _unit(path: tuple) -> tuple:
    for i, part in enumerate(path):
        if isinstance(part, int):
            return path[:i + 1]
    if path[0] in _NAMED and len(path) >= 2:
        return path[:2]
    return path[:1]


def _shape(unit: tuple) -> tuple:
    shape = []
    for i, part in enumerate(unit):
        if isinstance(part, int):
            shape.append("#")
        elif (i > 0 and unit[i - 1] in _NAMED) or (i > 0 and unit[i - 1] == "tracks"):
            shape.append("*")
        else:
            shape.append(part)
    return tuple(shape)


def _stand_in(table: dict, unit: tuple, data: dict):
    shape = _shape(unit)
    if shape in table:
        stand_in = copy.deepcopy(table[shape])
        if isinstance(stand_in, dict):
            raw = _get(data, unit)
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(raw_id, str) and _ID.match(raw_id):
                stand_in["id"] = raw_id
            elif shape in _IDS:
                stand_in["id"] = f"invalid-{unit[-1]}"
        return stand_in
    if len(unit) == 1 and unit[0] not in ("apiVersion", "kind"):
        return _DROP  # an optional top-level field: checked without it
    if unit == ("apiVersion",):
        return kinds.API_VERSION
    return None


def _get(data, path):
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _put(data: dict, path: tuple, value) -> None:
    parent = _get(data, path[:-1])
    if value is _DROP:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
