"""JSON Schema errors turned into problems a person can act on.

jsonschema's messages name Python reprs and schema internals; here each error becomes
`FILE:LINE:COL: path: what is wrong, what would be valid`, pointed at the offending key
or value, with "did you mean" for misspellings.
"""

from __future__ import annotations

import difflib

from runbook.catalog import compiled_schema, kinds
from runbook.catalog.problems import Problem, format_path
from runbook.catalog.sourcedoc import SourceDocument
from runbook.catalog.suggest import did_you_mean

_TYPE_WORDS = {
    "string": "text",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "null": "nothing",
}


def describe(value, raw: str | None = None) -> str:
    """How a value reads in a message: the text 'x', the number 5, a list, the boolean false..."""
    if isinstance(value, bool):
        word = "true" if value else "false"
        if raw is not None:
            return f"the boolean {word} (YAML reads unquoted {raw} as {word}; quote it: \"{raw}\")"
        return f"the boolean {word}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text '{shown}'"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    return "a list"


def _expected(schema: dict) -> str:
    hint = schema.get("x-hint")
    if hint:
        return hint
    types = schema.get("type")
    if isinstance(types, str):
        return _TYPE_WORDS.get(types, types)
    if isinstance(types, list):
        return " or ".join(_TYPE_WORDS.get(t, t) for t in types)
    return "a valid value"


def _what(schema: dict) -> str:
    return schema.get("x-name") or "this mapping"


def schema_problems(doc: SourceDocument, kind_name: str) -> list[Problem]:
    if compiled_schema.passes(kind_name, doc.value):
        return []
    errors = list(kinds.validator(kind_name).iter_errors(doc.value))
    problems: list[Problem] = []
    handled: set[tuple] = set()
    for error in errors:
        path = tuple(error.absolute_path)
        if path in handled:
            continue
        hint = _missing_kind_hint(error, kind_name)
        if hint:
            handled.add(path)
            problems.append(_problem(doc, path, hint))
    converted = [item for error in errors if tuple(error.absolute_path) not in handled
                 for item in _convert(error, doc)]
    # A misspelled required field is one mistake, not two: keep the "did you mean" and drop
    # the "missing required field" it explains.
    suggested = {(path, suggestion) for _, (tag, path, suggestion) in converted if tag == "unknown"}
    problems += [problem for problem, (tag, path, name) in converted
                 if not (tag == "missing" and (path, name) in suggested)]
    # The same node reached through several aliases is one mistake at one place.
    unique = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.column, problem.message), problem)
    return sorted(unique.values())


def _kind_fields(kind_name: str) -> dict[str, set]:
    """Fields each step kind accepts, read from the schema (so they never drift apart)."""
    out = {}
    for definition in kinds.schema(kind_name).get("$defs", {}).values():
        spec = definition.get("properties", {}).get("kind", {}) if isinstance(definition, dict) else {}
        names = spec.get("enum") or ([spec["const"]] if "const" in spec else [])
        for name in names:
            out[name] = set(definition.get("properties", {}))
    return out


def _missing_kind_hint(error, kind_name: str) -> str | None:
    """A step without `kind` is a check; if its fields belong to another kind, say which to add."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if schema.get("x-name") != "a check step" or not isinstance(instance, dict) or "kind" in instance:
        return None
    fields = _kind_fields(kind_name)
    extra = sorted(set(instance) - fields.get("check", set()))
    if not extra:
        return None
    fitting = [name for name, accepted in fields.items() if name != "check" and set(instance) <= accepted]
    if not fitting:
        return None
    names = " or ".join(f"kind: {name}" for name in fitting)
    return (f"a step with {', '.join(extra)} needs a kind, expected {names} "
            "(a step without kind is a check)")


def _problem(doc, path, message, at_key=False) -> Problem:
    if at_key:
        line, col = doc.locate_key(path)
    else:
        line, col, _ = doc.locate(path)
    return Problem(doc.file, line, col, format_path(path), message)


_PLAIN = (None, None, None)


def _convert(error, doc: SourceDocument):
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    check = error.validator
    _, _, raw = doc.locate(path)
    if check == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for key in instance:
            if key in allowed:
                continue
            if allowed:
                valid = f"expected one of: {', '.join(allowed)}{did_you_mean(key, allowed)}"
            else:
                valid = "no fields are allowed here"
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) if isinstance(key, str) else []
            meta = ("unknown", path, close[0]) if close else _PLAIN
            yield _problem(doc, path + (key,), f"unknown field '{key}' in {_what(schema)}, {valid}", at_key=True), meta
        return
    if check == "required":
        missing = [name for name in error.validator_value if name not in instance]
        for name in missing:
            yield (_problem(doc, path, f"missing required field '{name}' in {_what(schema)}, "
                                       f"it needs: {', '.join(error.validator_value)}"), ("missing", path, name))
        return
    if check == "type":
        yield _problem(doc, path, f"expected {_expected(schema)}, got {describe(instance, raw)}"), _PLAIN
        return
    if check in ("enum", "const"):
        choices = error.validator_value if check == "enum" else [error.validator_value]
        listed = ", ".join(str(c) for c in choices)
        label = schema.get("x-hint", "valid here")
        yield _problem(doc, path, f"{describe(instance, raw)} is not {label}, expected "
                                  f"{'one of: ' if len(choices) > 1 else ''}{listed}"
                                  f"{did_you_mean(instance, choices)}"), _PLAIN
        return
    if check == "pattern":
        yield _problem(doc, path, f"{describe(instance, raw)} is not valid, expected {_expected(schema)}"), _PLAIN
        return
    if check == "minLength":
        yield _problem(doc, path, f"must not be empty, expected {_expected(schema)}"), _PLAIN
        return
    if check in ("minItems", "minProperties", "maxProperties"):
        unit = ("item", "items") if check == "minItems" else ("entry", "entries")
        have = f"has {len(instance)} {unit[0] if len(instance) == 1 else unit[1]}"
        if "x-hint" in schema:
            yield _problem(doc, path, f"{have}, expected {schema['x-hint']}"), _PLAIN
        else:
            bound = "at least" if check.startswith("min") else "at most"
            yield _problem(doc, path, f"{have}, needs {bound} {error.validator_value}"), _PLAIN
        return
    if check == "oneOf" and isinstance(instance, dict) and "x-hint" in schema:  # "exactly one of these fields"
        if set(instance) - set(schema.get("properties", {})):
            return  # an unknown field: said once, as unknown, with "did you mean"
        have = f"has {len(instance)} {'entry' if len(instance) == 1 else 'entries'} ({', '.join(map(str, instance))})"
        yield _problem(doc, path, f"{have}, expected {schema['x-hint']}"), _PLAIN
        return
    if check in ("minimum", "maximum"):
        bound = "at least" if check == "minimum" else "at most"
        yield _problem(doc, path,
                       f"{describe(instance, raw)} is out of range, expected {bound} {error.validator_value}"), _PLAIN
        return
    yield _problem(doc, path, f"{error.message}, expected {_expected(schema)}"), _PLAIN
