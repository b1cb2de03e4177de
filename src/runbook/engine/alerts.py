"""The alert behind an incident, as its source reports it: firing, or resolved.

A severity rise (`severity_rises: [{after: 30m, to: SEV1}]`) means "the symptom persisted for
30 minutes", so `after` counts only the time the alert was firing: a resolve stops the clock,
a re-fire starts it again where it stopped. An incident whose source never says anything is
firing all along (the rise falls due `after` from the open, as it always did).
Pure: given the state, it says when a rise falls due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from runbook.engine.state import IncidentState


def firing_spans(state: IncidentState) -> list[tuple[datetime, datetime | None]]:
    """(from, until) for each stretch the alert was firing since the open; until None: still firing."""
    spans: list[tuple[datetime, datetime | None]] = []
    since: datetime | None = state.opened_at
    for at, firing in state.alert_changes:
        if firing and since is None:
            since = at
        elif not firing and since is not None:
            spans.append((since, at))
            since = None
    if since is not None:
        spans.append((since, None))
    return spans


def rise_due(state: IncidentState, after: int) -> datetime | None:
    """When the alert will have fired for `after` seconds in all, or None while it is resolved
    short of that (the rise waits for it to fire again)."""
    left = timedelta(seconds=after)
    for start, until in firing_spans(state):
        if until is None or until - start >= left:
            return start + left
        left -= until - start
    return None
