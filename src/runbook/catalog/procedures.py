"""Includes expanded: a playbook's `- include: PROCEDURE` steps replaced by the procedure's steps.

Expansion works on the documents' data, so the expanded playbook is what the incident snapshot
stores (a running incident never sees a later edit of the procedure) and what every reader of
the model sees. Included step ids are prefixed with the include's id (default: the procedure's
id), `connectivity-checks.ping`, so a procedure included twice stays unique; a procedure's
`next: end` and its last step return to where the include was. Steps around an include keep the
ids they had (a step without an id keeps its default id, counted as written).
"""

from __future__ import annotations

from runbook.catalog.models import END, MAIN_TRACK

_REFERENCES = ("next", "on_fail", "on_timeout")


def includes(data: dict) -> bool:
    return any(isinstance(raw, dict) and "include" in raw for steps in _step_lists(data) for raw in steps)


def expand(data: dict, procedures: dict[str, dict]) -> dict:
    """The playbook's data with every include replaced by the steps of its procedure (by id in
    `procedures`, their data). An include of an unknown procedure is left as it is (lint says so)."""
    if not includes(data):
        return data
    out = dict(data)
    out["steps"] = _expand(data["steps"], MAIN_TRACK, procedures)
    if isinstance(data.get("tracks"), dict):
        out["tracks"] = {tid: {**track, "steps": _expand(track["steps"], tid, procedures)}
                         for tid, track in data["tracks"].items()}
    return out


def _step_lists(data: dict):
    yield data.get("steps") or ()
    for track in (data.get("tracks") or {}).values():
        if isinstance(track, dict):
            yield track.get("steps") or ()


def default_id(track: str, index: int) -> str:
    return f"step-{index + 1}" if track == MAIN_TRACK else f"{track}-{index + 1}"


def prefixed(prefix: str, step_id: str) -> str:
    return f"{prefix}.{step_id}"


def _expand(raw_steps: list, track: str, procedures: dict) -> list:
    entries: dict[str, str] = {}  # an include's id -> the first step it runs
    ids = []
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, dict) and "include" in raw and raw["include"] in procedures:
            prefix = raw.get("id", raw["include"])
            first = procedures[raw["include"]]["steps"][0]
            entries[prefix] = prefixed(prefix, first.get("id", default_id(MAIN_TRACK, 0))
                                       if isinstance(first, dict) else default_id(MAIN_TRACK, 0))
            ids.append(entries[prefix])
        else:
            ids.append(raw.get("id", default_id(track, i)) if isinstance(raw, dict) else default_id(track, i))

    def target(name):
        return entries.get(name, name)

    out = []
    for i, raw in enumerate(raw_steps):
        if isinstance(raw, dict) and "include" in raw and raw["include"] in procedures:
            back = target(raw["next"]) if "next" in raw else (ids[i + 1] if i + 1 < len(ids) else END)
            out += _included(raw, procedures[raw["include"]], back)
            continue
        step = {"title": raw} if isinstance(raw, str) else dict(raw)
        step["id"] = ids[i]
        _retarget(step, target)
        out.append(step)
    return out


def _included(include: dict, procedure: dict, back: str) -> list:
    """The procedure's steps as they run at this include: ids prefixed, `end` and the last step
    returning to `back`, the include's role for steps that name none."""
    prefix = include.get("id", include["include"])
    raw_steps = procedure["steps"]
    out = []
    for j, raw in enumerate(raw_steps):
        step = {"title": raw} if isinstance(raw, str) else dict(raw)
        step["id"] = prefixed(prefix, step.get("id", default_id(MAIN_TRACK, j)))
        step["procedure"] = procedure["id"]
        if "role" in include and "role" not in step:
            step["role"] = include["role"]
        _retarget(step, lambda name: back if name == END else prefixed(prefix, name))
        if j == len(raw_steps) - 1 and "next" not in step and step.get("kind") != "decision":
            step["next"] = back
        out.append(step)
    return out


def _retarget(step: dict, target) -> None:
    for key in _REFERENCES:
        if isinstance(step.get(key), str):
            step[key] = target(step[key])
    background = step.get("background")
    if isinstance(background, dict) and isinstance(background.get("until"), str):
        step["background"] = {**background, "until": target(background["until"])}
    if isinstance(step.get("options"), list):
        step["options"] = [{**o, "next": target(o["next"])} if isinstance(o, dict) and isinstance(o.get("next"), str)
                           else o for o in step["options"]]
