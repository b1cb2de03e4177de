"""The alert behind the incident: its source says whether it still fires."""

from __future__ import annotations

from dataclasses import field

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


@record("alert_received", loud="warning", tone="reminder")
class AlertReceived(EventRecord):
    """An alert `runbook serve` received was linked to this incident: the one that opened it, or a
    new occurrence of the same alert (same labels) firing while the incident is still open."""

    fingerprint: str
    starts_at: str
    alertname: str = ""
    labels: dict = field(default_factory=dict)
    summary: str = ""  # the alert's summary (or description) annotation
    generator_url: str = ""
    opened: bool = False  # True on the alert that opened the incident
    # another alert of the incident's group (symptom group_by:) that joined it: the group's labels
    sibling: dict | None = None

    def fold(self, state, event):
        pass

    def to_data(self):
        data = EventRecord.to_data(self)
        if self.sibling is None:  # stored as before sibling alerts joined incidents
            del data["sibling"]
        return data

    def describe(self):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname")
        what = f"alert {self.alertname or self.fingerprint}" + (f" ({shown})" if shown else "")
        if self.sibling is not None:
            group = ", ".join(f"{k}={v}" for k, v in self.sibling.items())
            did = f"joined this incident as a sibling ({group or 'same symptom'})"
        else:
            did = "opened this incident" if self.opened else "fired again"
        return f"{what} {did}" + (f": {self.summary}" if self.summary else "")
