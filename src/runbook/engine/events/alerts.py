"""The alert behind the incident: its source says whether it still fires."""

from __future__ import annotations

from runbook.engine.events.base import EventRecord, record

FIRING, RESOLVED = "firing", "resolved"


@record("alert_state_changed", tone="reminder")
class AlertStateChanged(EventRecord):
    """The alert stopped firing (resolved) or fired again. Severity rises wait while it is resolved."""

    state: str  # firing or resolved
    alert: str = ""  # which alert, as its source names it (a fingerprint, an alertname)

    def fold(self, state, event):
        state.alert_changes.append((event.at, self.state == FIRING))

    def describe(self):
        which = f" ({self.alert})" if self.alert else ""
        return f"alert{which} {'firing again' if self.state == FIRING else 'resolved at its source'}"
