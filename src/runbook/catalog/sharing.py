"""References to `Shared` documents expanded: a playbook's parameters and roles written
`{from: ID}` (the shared definition of the same name, the keys beside `from:` overriding it), and
`instructions:` / `description:` written `{from: ID, text: NAME}`.

Expansion works on the documents' data, as includes do (catalog/procedures.py), so the expanded
playbook is what the incident snapshot stores: a later edit of the Shared document never changes
a running incident. A reference to something that does not exist is left as it is (lint says so).
"""

from __future__ import annotations

FROM = "from"


def references(data: dict):
    """(path, shared id, kind, name) of every reference in a playbook's or procedure's data, as
    written; kind is parameters, roles or texts."""
    for section in ("parameters", "roles"):
        for name, raw in (data.get(section) or {}).items():
            if isinstance(raw, dict) and FROM in raw:
                yield (section, name), raw[FROM], section, name
    if _text_ref(data.get("description")):
        yield ("description",), data["description"][FROM], "texts", data["description"]["text"]
    for path, raw in _steps(data):
        if _text_ref(raw.get("instructions")):
            yield path + ("instructions",), raw["instructions"][FROM], "texts", raw["instructions"]["text"]


def expand(data: dict, shared: dict[str, dict]) -> dict:
    """The data with every reference to a known definition replaced by it (`shared`: the Shared
    documents' data by id)."""
    if not any(True for _ in references(data)):
        return data

    def found(ref: str, kind: str, name: str):
        return (shared.get(ref) or {}).get(kind, {}).get(name)

    out = dict(data)
    for section in ("parameters", "roles"):
        if isinstance(data.get(section), dict):
            out[section] = {name: _merged(raw, found(raw[FROM], section, name))
                            if isinstance(raw, dict) and FROM in raw else raw for name, raw in data[section].items()}
    if _text_ref(data.get("description")) and (text := found(data["description"][FROM], "texts",
                                                             data["description"]["text"])) is not None:
        out["description"] = text

    def steps(raw_steps: list) -> list:
        return [_step(raw, found) for raw in raw_steps]

    if isinstance(data.get("steps"), list):
        out["steps"] = steps(data["steps"])
    if isinstance(data.get("tracks"), dict):
        out["tracks"] = {tid: {**track, "steps": steps(track.get("steps") or [])} if isinstance(track, dict) else track
                         for tid, track in data["tracks"].items()}
    return out


def _merged(raw: dict, definition: dict | None) -> dict:
    if definition is None:
        return raw
    return {**definition, **{key: value for key, value in raw.items() if key != FROM}}


def _step(raw, found):
    if isinstance(raw, dict) and _text_ref(raw.get("instructions")):
        text = found(raw["instructions"][FROM], "texts", raw["instructions"]["text"])
        if text is not None:
            return {**raw, "instructions": text}
    return raw


def _text_ref(value) -> bool:
    return isinstance(value, dict) and FROM in value and "text" in value


def _steps(data: dict):
    for i, raw in enumerate(data.get("steps") or ()):
        if isinstance(raw, dict):
            yield ("steps", i), raw
    for tid, track in (data.get("tracks") or {}).items():
        if isinstance(track, dict):
            for i, raw in enumerate(track.get("steps") or ()):
                if isinstance(raw, dict):
                    yield ("tracks", tid, "steps", i), raw
