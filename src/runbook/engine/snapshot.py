"""The documents an incident was opened with, frozen: editing YAML mid-incident changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import hashlib
import json
from dataclasses import dataclass, field

from runbook.catalog import kinds
from runbook.catalog.models import EscalationPolicy, Playbook, Roster, SeverityLevel

if TYPE_CHECKING:  # the loader pulls in PyYAML; only its types are needed here
    from runbook.catalog.loader import Catalog, Document


def take(catalog: Catalog, playbook: Document, drill: Document | None = None) -> dict:
    """The snapshot stored at open: the playbook's text and hash plus every document it depends on
    (and the drill being rehearsed, whose injects and targets then apply)."""
    model: Playbook = playbook.model
    documents = [{"kind": "Playbook", "data": playbook.data}]
    if drill is not None:
        documents.append({"kind": "Drill", "data": drill.data})
    documents += [{"kind": d.kind, "data": d.data} for d in catalog.of_kind("SeverityPolicy")]
    for policy_id in model.escalation_ids:  # the default first: a snapshot of 0.1 held only that one
        escalation = catalog.find(policy_id, "EscalationPolicy")
        if escalation:
            documents.append({"kind": "EscalationPolicy", "data": escalation.data})
    documents += [{"kind": d.kind, "data": d.data} for d in catalog.of_kind("Roster")]
    text = playbook.text or ""
    return {"playbook": model.id, "hash": hashlib.sha256(text.encode("utf-8")).hexdigest(), "text": text,
            "documents": documents}


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
    def load(cls, stored: dict) -> "Snapshot":
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

    def rank(self, severity: str) -> int:
        """0 is the most severe level; unknown levels rank last."""
        for index, level in enumerate(self.levels):
            if level.id == severity:
                return index
        return len(self.levels)
