"""Response-time reports over incidents and drill runs: per metric and per step n, median, p90,
max, target and breaches, and the trend run by run with deviations beyond 10% of target flagged.

Drills are kept apart from real incidents unless asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from runbook.catalog.models import FOLLOWUP_TRACK
from runbook.engine.metrics import MEASURES, metrics, step_titles
from runbook.errors import RecordError

DEVIATION = 0.10


def median(values) -> float:
    """statistics.median, without importing statistics (with fractions and decimal, ~4 ms of a
    one-run drill's start)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def summarize(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    return {"n": len(ordered), "median": median(ordered),
            "p90": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], "max": ordered[-1]}


@dataclass
class Report:
    incidents: int
    metrics: dict = field(default_factory=dict)   # TTA/TTM/TTR -> summary + target + breaches
    steps: dict = field(default_factory=dict)     # step id -> summary
    trend: list = field(default_factory=list)     # one row per incident, oldest first
    skipped: list = field(default_factory=list)   # "INC-X: why" for records too damaged to read
    actions: dict | None = None  # action item completion (read_models.action_completion)
    predictions: list = field(default_factory=list)  # simulated against observed (drills/predictions.py)
    analysis: list = field(default_factory=list)  # the analysis action items this report added

    def to_dict(self) -> dict:
        out = {"incidents": self.incidents, "metrics": self.metrics, "steps": self.steps, "trend": self.trend}
        if self.actions is not None:
            out.update(actions=self.actions, predictions=self.predictions, analysis_items=self.analysis)
        if self.skipped:
            out["skipped"] = self.skipped
        return out


def build(engine, playbook: str | None = None, drill: str | None = None, since: str | None = None,
          include_drills: bool = False) -> Report:
    rows = engine.list(playbook=playbook, since=since, drills=None if include_drills or drill else False)
    states, skipped = [], []
    for row in sorted(rows, key=lambda r: r["opened_at"] or ""):
        try:
            state = engine.state(row["id"])
        except RecordError as exc:  # left out and named: one damaged record never hides the others
            skipped.append(f"{row['id']}: {exc}")
            continue
        rehearsal = state.events[0].data.get("rehearsal") if state.events else None
        if drill is not None and rehearsal != drill:
            continue
        states.append(state)
    report = Report(len(states), skipped=skipped)
    values = {key: [] for key, _, _ in MEASURES}
    targets = {key: [] for key, _, _ in MEASURES}
    breaches = {key: 0 for key, _, _ in MEASURES}
    steps: dict[str, list[float]] = {}
    titles: dict[str, str] = {}  # step id -> its title, as the newest incident's snapshot has it
    followups: list[float] = []
    for state in states:
        m = metrics(state, engine.clock.now())
        row = {"incident": state.id, "opened_at": state.opened_at.isoformat(), "playbook": state.playbook.id,
               "drill": state.drill, "severity": state.severity, "flagged": []}
        for key, target_name, label in MEASURES:
            actual = getattr(m, key)
            target = m.targets.get(target_name, {}).get("target")
            row[key] = actual
            row[f"{key}_target"] = target
            if actual is not None:
                values[key].append(actual)
            if target is not None:
                targets[key].append(target)
                if m.targets[target_name]["breached"]:
                    breaches[key] += 1
                if actual is not None and target and (actual - target) / target > DEVIATION:
                    row["flagged"].append(f"{label} {actual / target - 1:+.0%} of target")
                elif actual is None and m.targets[target_name]["breached"]:
                    row["flagged"].append(f"{label} target passed, not reached")
        row["followup"] = m.followup
        if m.followup is not None and state.closed:
            followups.append(m.followup)
        report.trend.append(row)
        named = step_titles(state)
        for run in m.steps:
            titles[run["step"]] = named.get(run["step"], run["step"])
            if run["seconds"] is not None and run["track"] != FOLLOWUP_TRACK:  # finished response attempts only
                steps.setdefault(run["step"], []).append(run["seconds"])
    for key, _, label in MEASURES:
        summary = summarize(values[key])
        summary["target"] = median(targets[key]) if targets[key] else None
        summary["breaches"] = breaches[key]
        report.metrics[label] = summary
    report.steps = {step: {"title": titles[step], **summarize(durations)} for step, durations in steps.items()}
    if followups:  # after resolve: reported on its own, never in TTR
        report.metrics["Follow-up"] = {**summarize(followups), "target": None, "breaches": 0}
    return report
