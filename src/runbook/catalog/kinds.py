"""The registry of document kinds: each is a JSON Schema shipped in the package and a model builder.

Adding a kind is one `register(Kind(...))` call and one schema file; the loader, validator,
`runbook schema` and `runbook list` pick it up without changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

from runbook.catalog import models

API_VERSION = "runbook/v1"


class Kind(NamedTuple):
    name: str
    schema_file: str
    build: Callable[[dict], object]
    summary: str


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> None:
    KINDS[kind.name] = kind


def kind_named(name: str) -> Kind | None:
    """Look a kind up by its exact name or case-insensitively (`runbook schema playbook`)."""
    if name in KINDS:
        return KINDS[name]
    lowered = {k.lower(): v for k, v in KINDS.items()}
    return lowered.get(name.lower())


SCHEMA_IDS = "https://runbook.dev/schemas/v1/"


@cache
def schema(name: str) -> dict:
    """The kind's schema, standing alone: what the validators use and `runbook schema` prints."""
    from importlib import resources  # on first use: commands that never read a schema skip its import

    folder = resources.files("runbook.catalog").joinpath("schemas")
    return bundled(KINDS[name].schema_file, lambda file: json.loads(folder.joinpath(file).read_text("utf-8")))


def bundled(file: str, read: Callable[[str], dict]) -> dict:
    """The schema in `file` with the definitions it takes from another file (a `$ref` to
    `shared.defs.json#/$defs/NAME`, which editors reading the shipped files resolve beside it)
    copied into its own `$defs`, so that it needs no other file."""
    shared: dict = {}

    def inline(node):
        if isinstance(node, list):
            return [inline(value) for value in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            other, _, pointer = ref.partition("#")
            if other not in shared:
                shared[other] = read(other)["$defs"]  # their own references are to each other: "#/$defs/..."
            node = {**node, "$ref": f"#{pointer}"}
        return {key: inline(value) for key, value in node.items()}

    own = inline(read(file))
    defs = {name: definition for found in shared.values() for name, definition in found.items()}
    # a file that takes definitions from another has no $id of its own: a relative reference is
    # resolved against the $id, which would send an editor to the web instead of the file beside it
    head = {"$schema": own.pop("$schema"), "$id": own.pop("$id", SCHEMA_IDS + file)}
    return {**head, **own, "$defs": {**defs, **own.get("$defs", {})}} if defs else {**head, **own}


@cache
def validator(name: str):
    from jsonschema import Draft202012Validator  # imported on first validation: it is slow to import

    return Draft202012Validator(schema(name))


register(Kind("Playbook", "playbook.schema.json", models.build_playbook,
              "symptoms, severity, escalation, degradations and steps for one fault"))
register(Kind("SeverityPolicy", "severitypolicy.schema.json", models.build_severity_policy,
              "severity levels, business tiers and response targets"))
register(Kind("EscalationPolicy", "escalationpolicy.schema.json", models.build_escalation_policy,
              "who is notified, in what order, after how long without an acknowledgement"))
register(Kind("Roster", "roster.schema.json", models.build_roster,
              "people, contact handles and on-call rotations"))


def _build_drill(data: dict):
    from runbook.catalog.drill import build_drill  # only catalogs and drill incidents have drills

    return build_drill(data)


register(Kind("Drill", "drill.schema.json", _build_drill,
              "a rehearsal of a playbook: injects, schedule, mode, targets, simulated responders"))
register(Kind("Procedure", "procedure.schema.json", models.build_procedure,
              "a shared list of steps that playbooks include (- include: ID)"))
register(Kind("Shared", "shared.schema.json", models.build_shared,
              "parameters, roles and texts that playbooks take by reference ({from: ID})"))


def _build_status_page(data: dict):
    from runbook.catalog.statuspage import build_status_page

    return build_status_page(data)


register(Kind("StatusPage", "statuspage.schema.json", _build_status_page,
              "the public status page: components mapped to services, symptoms and degradations"))
