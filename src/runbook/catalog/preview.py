"""A playbook's texts as they will run, shown before any incident (`runbook show`, `list`, `match`,
the TUI's list of playbooks), by the one renderer (catalog/templates.py): the parameters'
defaults and what the playbook itself says (its id, service and title) are filled, and every
value known only at incident time (another parameter, a captured value, who holds a role, the
incident id, its severity, the time elapsed) reads ‹name›. Pure.
"""

from __future__ import annotations

from runbook.catalog.models import Playbook, Step
from runbook.catalog.templates import BUILTINS, for_people


def later(pb: Playbook) -> list[str]:
    """The names whose values only an incident has."""
    return [*BUILTINS, *pb.parameters, *pb.captures, *pb.roles]


def values(pb: Playbook, step: Step | None = None) -> dict:
    """The values known before an incident: the playbook's own, the parameters' defaults, and the
    step's `with:` values filled from them."""
    known = {"playbook": pb.id, "service": pb.service,
             **{name: p.default for name, p in pb.parameters.items() if p.default is not None}}
    known["title"] = for_people(pb.title, known, later(pb), pb.templated)
    if step is not None:
        base = dict(known)
        for name, value in step.params.items():
            known[name] = for_people(value, base, later(pb), pb.templated) if isinstance(value, str) else value
    return known


def text(pb: Playbook, template: str | None, step: Step | None = None) -> str:
    """A title, prompt, question or message of `pb` (of `step`, when given) as it will read."""
    return for_people(template, values(pb, step), later(pb), pb.templated)


def title(pb: Playbook) -> str:
    return text(pb, pb.title)


def command(pb: Playbook, step: Step) -> str:
    """A `run:` step's argv as it will run, each argument filled on its own."""
    known = values(pb, step)
    return " ".join(for_people(arg, known, later(pb), pb.templated) for arg in step.run or ())
