"""JSON Schema errors turned into problems a person can act on.

jsonschema's messages name Python reprs and schema internals; here each error becomes
`FILE:LINE:COL: path: what is wrong, what would be valid`, pointed at the offending key
or value, with "did you mean" for misspellings.
"""

from __future__ import annotations

import difflib

from runbook.catalog import kinds
from runbook.catalog.problems import Problem, format_path
from runbook.catalog.yamlsource import SourceDocument

_TYPE_WORDS = {
    "string": "text",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "null": "nothing",
}


def did_you_mean(word, candidates) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [c for c in candidates if isinstance(c, str)], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


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
    problems = []
    for error in kinds.validator(kind_name).iter_errors(doc.value):
        problems.extend(_convert(error, doc))
    return sorted(set(problems))


def _problem(doc, path, message, at_key=False) -> Problem:
    if at_key:
        line, col = doc.locate_key(path)
    else:
        line, col, _ = doc.locate(path)
    return Problem(doc.file, line, col, format_path(path), message)


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
            yield _problem(doc, path + (key,), f"unknown field '{key}' in {_what(schema)}, {valid}", at_key=True)
        return
    if check == "required":
        missing = [name for name in error.validator_value if name not in instance]
        for name in missing:
            yield _problem(doc, path, f"missing required field '{name}' in {_what(schema)}, "
                                      f"it needs: {', '.join(error.validator_value)}")
        return
    if check == "type":
        yield _problem(doc, path, f"expected {_expected(schema)}, got {describe(instance, raw)}")
        return
    if check in ("enum", "const"):
        choices = error.validator_value if check == "enum" else [error.validator_value]
        listed = ", ".join(str(c) for c in choices)
        label = schema.get("x-hint", "valid here")
        yield _problem(doc, path, f"{describe(instance, raw)} is not {label}, expected "
                                  f"{'one of: ' if len(choices) > 1 else ''}{listed}{did_you_mean(instance, choices)}")
        return
    if check == "pattern":
        yield _problem(doc, path, f"{describe(instance, raw)} is not valid, expected {_expected(schema)}")
        return
    if check == "minLength":
        yield _problem(doc, path, f"must not be empty, expected {_expected(schema)}")
        return
    if check in ("minItems", "minProperties"):
        unit = "item" if check == "minItems" else "entry"
        count = error.validator_value
        yield _problem(doc, path, f"has {len(instance)} {unit}s, needs at least {count}")
        return
    if check == "maxProperties":
        yield _problem(doc, path, f"has {len(instance)} entries, expected {_expected(schema)}")
        return
    if check in ("minimum", "maximum"):
        bound = "at least" if check == "minimum" else "at most"
        yield _problem(doc, path, f"{describe(instance, raw)} is out of range, expected {bound} {error.validator_value}")
        return
    yield _problem(doc, path, f"{error.message}, expected {_expected(schema)}")
