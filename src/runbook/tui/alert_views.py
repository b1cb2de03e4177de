"""The alerts `runbook serve` received, as the home screen shows them: immutable rows whose every
text has been through `runbook.text` (labels and annotations come from the network).

Built by the gateway under its lock (`EngineGateway.alerts`); nothing here touches the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from runbook.engine.clock import parse
from runbook.text import one_line

RECENT = timedelta(hours=24)
MAX_ROWS = 30
NEEDS_A_HUMAN = ("unmatched", "failed")
REJECTED = "rejected"  # malformed: nothing to open from it; its sender needs fixing (the reason says what)
# labels that say where and how bad, shown first; the others follow in name order
KEY_LABELS = ("severity", "instance", "service", "job", "region", "cluster", "namespace")


class AlertView(NamedTuple):
    fingerprint: str
    starts_at: str  # with the fingerprint, the alert's key in the ledger
    seen: datetime  # when runbook last heard of it
    status: str  # firing or resolved
    name: str  # its alertname (its fingerprint when it has none)
    labels: tuple[tuple[str, str], ...]  # key labels first, alertname left out
    annotations: tuple[tuple[str, str], ...]
    outcome: str  # opened, attached, pending, unmatched, failed, resolved, rejected
    incident: str | None
    playbook: str | None
    reason: str

    @property
    def key(self) -> str:
        return f"{self.fingerprint}@{self.starts_at}"

    @property
    def needs_a_human(self) -> bool:
        """Firing, and no incident took it: someone has to open one by hand."""
        return self.status == "firing" and self.outcome in NEEDS_A_HUMAN

    def label_dict(self) -> dict[str, str]:
        """Its labels as an incident is opened with them (the shown, escaped values)."""
        return {"alertname": self.name, **dict(self.labels)} if self.name != self.fingerprint else dict(self.labels)


def _ordered(labels: dict) -> tuple[tuple[str, str], ...]:
    rank = {name: i for i, name in enumerate(KEY_LABELS)}
    names = sorted((n for n in labels if n != "alertname"), key=lambda n: (rank.get(n, len(rank)), n))
    return tuple((one_line(str(n)), one_line(str(labels[n]))) for n in names)


def build_alerts(rows: list[dict], now: datetime) -> tuple[AlertView, ...]:
    """Ledger rows (the store's dicts, any order, repeats allowed) as views: those seen in the last
    24 hours, firing ones that need a human first, then the newest first; at most MAX_ROWS."""
    since = now - RECENT
    views: dict[tuple[str, str], AlertView] = {}
    for row in rows:
        seen = parse(row["last_seen"])
        if seen < since or (row["fingerprint"], row["starts_at"]) in views:
            continue
        views[(row["fingerprint"], row["starts_at"])] = AlertView(
            one_line(row["fingerprint"]), row["starts_at"], seen, one_line(row["status"]),
            one_line(row["alertname"] or row["fingerprint"]), _ordered(row["labels"] or {}),
            tuple((one_line(str(k)), one_line(str(v))) for k, v in sorted((row["annotations"] or {}).items())),
            one_line(row["outcome"]), row["incident"] and one_line(row["incident"]),
            row["playbook"] and one_line(row["playbook"]), one_line(row["reason"] or ""))
    ordered = sorted(views.values(), key=lambda v: v.seen, reverse=True)
    ordered.sort(key=lambda v: not v.needs_a_human)  # stable: newest first within each group
    return tuple(ordered[:MAX_ROWS])
