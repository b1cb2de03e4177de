"""What each playbook's simulation predicts against what its incidents and drills observed: time
to acknowledge and to mitigate, median against median. A difference over 10% is something to
analyse, and becomes an action item (kind "process") on the playbook's latest incident, once
while it is open."""

from __future__ import annotations

from runbook.drills.report import DEVIATION, median
from runbook.engine.metrics import metrics
from runbook.errors import RecordError

COMPARED = (("tta", "TTA"), ("ttm", "TTM"))
ACTOR = "runbook report"


def compare(engine, playbook: str | None = None) -> list[dict]:
    """One row per playbook with a kept simulation and per compared metric: the observed median
    (real incidents and drill runs), the latest simulation's median, the deviation, flagged over 10%."""
    latest = {}
    for sim in engine.simulations():  # oldest first: the latest of each playbook wins
        latest[sim["playbook"]] = sim
    rows = []
    for pb, sim in sorted(latest.items()):
        if playbook and pb != playbook:
            continue
        states = []
        for row in engine.list(playbook=pb, drills=None):
            try:
                states.append(engine.state(row["id"]))
            except RecordError:
                continue  # `runbook report` names the damaged records
        states.sort(key=lambda s: s.opened_at)
        measured = [metrics(s) for s in states]
        for key, label in COMPARED:
            observed = [getattr(m, key) for m in measured if getattr(m, key) is not None]
            predicted = (sim["summary"].get(key) or {}).get("median")
            if not observed or not predicted:
                continue
            value = median(observed)
            deviation = value / predicted - 1
            rows.append({"playbook": pb, "metric": label, "observed": value, "predicted": predicted,
                         "n": len(observed), "deviation": round(deviation, 4), "flagged": abs(deviation) > DEVIATION,
                         "simulation": sim["id"], "latest_incident": states[-1].id})
    return rows


def analysis_text(row: dict) -> str:
    from runbook.catalog.durations import format_seconds

    return (f"{_prefix(row)} observed median {format_seconds(row['observed'])} over {row['n']} run(s) against "
            f"{format_seconds(row['predicted'])} simulated (simulation {row['simulation']}), {row['deviation']:+.0%}")


def _prefix(row: dict) -> str:
    return f"Analyse {row['metric']} of {row['playbook']}:"


def add_analysis_items(engine, rows: list[dict]) -> list[str] | None:
    """An analysis action item for each flagged row without an open one already; their ids (None:
    the database is read-only, nothing added)."""
    from runbook.engine.learning import incident_items

    if engine.store.features.readonly:
        return None

    open_texts = [item.text for item in engine.action_items() if item.open]
    added = []
    for row in rows:
        if not row["flagged"] or any(text.startswith(_prefix(row)) for text in open_texts):
            continue
        engine.add_action_item(row["latest_incident"], ACTOR, analysis_text(row), owner="", kind="process")
        number = len(incident_items(engine.state(row["latest_incident"])))
        added.append(f"{row['latest_incident']}#{number}")
    return added
