"""The follow-up phase in figures and in the postmortem: how long it took (never part of
time-to-resolve) and where each follow-up step stands."""

from __future__ import annotations

from datetime import datetime

from runbook.catalog.durations import format_seconds
from runbook.engine.state import IncidentState
from runbook.text import markdown as md


def seconds(state: IncidentState, now: datetime | None = None) -> float | None:
    """From resolve to closed (or to `now` while the follow-up is under way); None before resolve
    or without a follow-up phase."""
    if state.resolved_at is None or state.playbook.followup is None:
        return None
    end = state.closed_at or now
    return None if end is None else (end - state.resolved_at).total_seconds()


def markdown_section(state: IncidentState) -> list[str]:
    """## Follow-up: each follow-up step with its status, time since resolve and outcome."""
    track = state.playbook.followup
    if track is None:
        return []
    lines = ["## Follow-up", ""]
    if state.resolved_at is None:
        lines += ["_Begins when the incident is resolved._", ""]
    took = seconds(state)
    if state.closed_at is not None and took is not None:
        lines += [f"Follow-up took {format_seconds(took)} (not part of time to resolve); closed "
                  f"{state.closed_at:%Y-%m-%d %H:%M:%S} UTC.", ""]
    elif state.resolved_at is not None:
        lines += [f"Under way since {state.resolved_at:%Y-%m-%d %H:%M:%S} UTC (not part of time to resolve).", ""]
    lines += ["| step | status | after resolve | outcome |", "|---|---|---|---|"]
    for step in track.steps:
        run = state.steps[step.id]
        after = format_seconds((run.finished_at - state.resolved_at).total_seconds()) \
            if run.finished_at and state.resolved_at else "—"
        lines.append(f"| {md(step.id)} | {run.status} | {after} | {md(run.reason) or ''} |")
    return lines + [""]
