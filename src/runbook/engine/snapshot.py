"""The documents an incident was opened with, frozen: editing YAML mid-incident changes nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runbook.catalog import kinds
from runbook.catalog.models import DEFAULT_ESCALATE_AFTER, EscalationPolicy, Playbook, Roster, SeverityLevel
from runbook.catalog.sharing import references
from runbook.errors import DocumentError
from runbook.pluginapi import PAGER_SEVERITIES

if TYPE_CHECKING:  # the loader pulls in PyYAML; only its types are needed here
    from runbook.catalog.document import Document
    from runbook.catalog.loader import Catalog


def dependencies(catalog: Catalog, playbook: Document, drill: Document | None = None) -> list[Document]:
    """The documents an incident on `playbook` runs on: the playbook, the drill being rehearsed,
    the severity policies, the procedures it includes, the Shared documents they take definitions
    from, every escalation policy the playbook names (the default first: a snapshot of 0.1 held
    only that one) and the rosters."""
    documents = [playbook] + ([drill] if drill is not None else []) + catalog.of_kind("SeverityPolicy")
    included = [doc for doc in catalog.of_kind("Procedure")
                if doc.id in {step.procedure for step in playbook.model.steps if step.procedure}]
    documents += included
    shared = {ref for doc in (playbook, *included) for _, ref, _, _ in references(doc.data)}
    documents += [doc for doc in catalog.of_kind("Shared") if doc.id in shared]
    for policy_id in playbook.model.escalation_ids:
        escalation = catalog.find(policy_id, "EscalationPolicy")
        if escalation:
            documents.append(escalation)
    return documents + catalog.of_kind("Roster")


def take(catalog: Catalog, playbook: Document, drill: Document | None = None) -> dict:
    """The snapshot stored at open: the playbook's text and hash plus every document it depends on
    (and the drill being rehearsed, whose injects and targets then apply). A playbook that
    includes procedures is stored expanded, so later edits of a procedure change nothing.

    Refused (DocumentError, listing them) when those documents have errors: an incident would
    follow a dangling step or page nobody halfway through, when it can least be fixed."""
    from runbook.catalog.lint import errors

    documents = dependencies(catalog, playbook, drill)
    problems = errors(documents, catalog.ids("Playbook"))
    if problems:
        kind = "drill" if drill is not None else "playbook"
        name = drill.id if drill is not None else playbook.id
        raise DocumentError(problems, f"cannot open an incident on {kind} '{name}': the documents it uses have "
                                      f"{len(problems)} error{'s' if len(problems) != 1 else ''} "
                                      "(fix them; `runbook validate` checks the catalog):")
    model: Playbook = playbook.model
    text = playbook.text or ""
    return {"playbook": model.id, "hash": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text": text,
            "documents": [{"kind": d.kind, "data": _as_run(d)} for d in documents]}


def _as_run(doc: Document) -> dict:
    """A document as the incident runs on it: a procedure-including playbook expanded, an escalation
    policy with the default delay it applies written in, so a later change of the built-in default
    never moves a running incident's timers."""
    if doc.expanded is not None:
        return doc.expanded
    if doc.kind == "EscalationPolicy" and "escalate_after" not in doc.data.get("defaults", {}):
        return {**doc.data, "defaults": {**doc.data.get("defaults", {}), "escalate_after": DEFAULT_ESCALATE_AFTER}}
    return doc.data


def documents_hash(documents: list) -> str:
    """SHA-256 of the documents an incident runs on (the parsed playbook, policies, rosters), in a
    canonical JSON form that survives the store's round trip."""
    body = json.dumps(documents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class Snapshot:
    playbook: Playbook
    levels: list[SeverityLevel]
    escalations: dict[str, EscalationPolicy]  # by id: every policy the playbook maps a severity to
    rosters: list[Roster]
    hash: str = ""
    drill: object = None
    text: str = field(default="", repr=False)

    @classmethod
    def load(cls, stored: dict) -> Snapshot:
        models: dict[str, list] = {}
        for doc in stored["documents"]:
            models.setdefault(doc["kind"], []).append(kinds.KINDS[doc["kind"]].build(doc["data"]))
        levels = [lv for policy in models.get("SeverityPolicy", []) for lv in policy.levels]
        escalations = {policy.id: policy for policy in models.get("EscalationPolicy", [])}
        return cls(models["Playbook"][0], levels, escalations, models.get("Roster", []), hash=stored.get("hash", ""),
                   text=stored.get("text", ""), drill=(models.get("Drill") or [None])[0])

    def escalation(self, severity: str) -> EscalationPolicy | None:
        """The escalation policy in force at `severity` (the playbook's default for unmapped ones)."""
        return self.escalations.get(self.playbook.escalation_for(severity))

    def level(self, severity: str) -> SeverityLevel | None:
        return next((lv for lv in self.levels if lv.id == severity), None)

    def pager_severity(self, severity: str) -> str:
        """What a pager shows for `severity`: the level's pager_severity, else by rank (the first
        level critical, the second error, the third warning, the rest info)."""
        level = self.level(severity)
        if level is not None and level.pager_severity:
            return level.pager_severity
        return PAGER_SEVERITIES[min(self.rank(severity), len(PAGER_SEVERITIES) - 1)]

    def urgency(self, severity: str) -> str:
        """The urgency a pager gets for `severity`: the level's urgency:, else high when it pages."""
        level = self.level(severity)
        if level is not None and level.urgency:
            return level.urgency
        return "high" if level is None or level.pages else "low"

    def rank(self, severity: str) -> int:
        """0 is the most severe level; unknown levels rank last."""
        for index, level in enumerate(self.levels):
            if level.id == severity:
                return index
        return len(self.levels)
