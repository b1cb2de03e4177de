"""The incident's life: opened, acknowledged, mitigated, resolved, severity, notes, breaches."""

from __future__ import annotations

from dataclasses import field

from runbook.engine.clock import parse
from runbook.engine.events.base import EventRecord, follow_ladder, record, start_paging


@record("opened")
class Opened(EventRecord):
    playbook: str
    title: str
    severity: str
    service: str = ""
    symptom: str | None = None
    drill: bool = False
    snapshot: str = ""
    rehearsal: str | None = None
    live: bool = False
    documents: str = ""  # SHA-256 of the snapshot's documents (what runs), so tampering with them shows
    severity_source: str | None = None  # where the severity came from: "from label severity=critical", ...
    from_incident: str | None = None  # the incident that handed off to this one
    escalation: str | None = None  # "pager": levels after the first are the pager's (RUNBOOK_ESCALATION)
    labels: dict = field(default_factory=dict)  # the alert labels given at open

    def fold(self, state, event):
        state.title, state.service, state.severity = self.title, self.service, self.severity
        state.labels = dict(self.labels)
        state.escalation.by_pager = self.escalation == "pager"
        state.from_incident = self.from_incident
        state.symptom, state.drill, state.live = self.symptom, self.drill, self.live
        state.opened_at, state.opened_by = event.at, event.actor
        state.severity_source = self.severity_source
        start_paging(state, event.at)
        follow_ladder(state, event.at)

    def describe(self):
        return (f"opened {self.playbook} as {self.severity}" + (" (DRILL)" if self.drill else "")
                + (f", handed off from {self.from_incident}" if self.from_incident else "")
                + ("; escalation is by the pager" if self.escalation == "pager" else ""))

    def to_data(self):
        data = EventRecord.to_data(self)
        if self.escalation is None:  # stored as before the setting existed
            del data["escalation"]
        if not self.labels:  # likewise: no labels, stored as before they were recorded
            del data["labels"]
        return data


@record("handed_off", loud="warning")
class HandedOff(EventRecord):
    """A handoff step opened a linked incident on another playbook, or handed the incident to
    someone who is not a playbook (`to`: a vendor's support, a security process, another team),
    recorded as shown: their name, how to reach them and the instructions."""

    step: str
    playbook: str | None = None
    incident: str | None = None
    to: str | None = None
    contact: str = ""
    instructions: str = ""
    resolves: bool = False  # ...and the step resolves the incident (else it stays open)

    def fold(self, state, event):
        if self.to is None:
            state.handoffs.append((self.step, self.playbook, self.incident))
        else:
            state.handed_to.append({"step": self.step, "to": self.to, "contact": self.contact,
                                    "instructions": self.instructions, "resolves": self.resolves,
                                    "at": event.at.isoformat(), "by": event.actor})

    def to_data(self):
        data = EventRecord.to_data(self)
        if self.to is None:  # stored as before handoffs to someone who is not a playbook
            for key in ("to", "contact", "instructions", "resolves"):
                del data[key]
        return data

    def describe(self):
        if self.to is not None:
            then = "; the incident is resolved by it" if self.resolves else "; the incident stays open"
            return f"handed off to {self.to} (contact: {self.contact}){then}"
        return f"handed off to {self.incident} (playbook {self.playbook})"


@record("acknowledged")
class Acknowledged(EventRecord):
    def fold(self, state, event):
        state.acknowledged_at, state.acknowledged_by = event.at, event.actor
        state.escalation.updates["acknowledge"] = event.seq  # the pagers are told (engine/pages.py)
        state.status = "acknowledged" if state.status == "open" else state.status

    def describe(self):
        return "acknowledged"

    def project(self, ts):
        return {"acknowledged_at": ts, "status": "acknowledged"}


@record("mitigated")
class Mitigated(EventRecord):
    step: str | None = None
    # a staged degradation reached the stage its mitigating step waited for (MitigationAwaited)
    degradation: str | None = None
    stage: int | None = None  # 0-based
    share: int | None = None
    of: int | None = None

    def fold(self, state, event):
        state.mitigated_at = state.mitigated_at or event.at
        state.status = "mitigated" if state.status in ("open", "acknowledged") else state.status

    def describe(self):
        if self.degradation is not None:
            return (f"mitigated (step {self.step}: {self.degradation} reached stage {self.stage + 1} of {self.of}, "
                    f"{self.share}% of users)")
        return "mitigated" + (f" (step {self.step})" if self.step else "")

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        for key in ("degradation", "stage", "share", "of"):  # stored as they always were without a stage
            if data[key] is None:
                del data[key]
        return data

    def project(self, ts):
        return {"mitigated_at": ts, "status": "mitigated"}


@record("resolved")
class Resolved(EventRecord):
    kept_degradations: list = field(default_factory=list)
    followup: bool = False  # the playbook has follow-up steps: the incident is closed when they are done
    handed_off_to: str | None = None  # resolved by a handoff step: the incident that carries on

    def fold(self, state, event):
        state.resolved_at, state.status = event.at, "resolved"
        state.resolved_by_handoff = self.handed_off_to
        state.escalation.updates["resolve"] = event.seq  # the pagers are told (engine/pages.py)

    def describe(self):
        kept = f" (kept degraded: {', '.join(self.kept_degradations)})" if self.kept_degradations else ""
        by = f" by handoff to {self.handed_off_to}" if self.handed_off_to else ""
        return "resolved" + by + kept + ("; follow-up begins" if self.followup else "")

    def project(self, ts):
        # the summary tells an incident in its follow-up phase from one that is over
        return {"resolved_at": ts, "status": "follow-up" if self.followup else "resolved"}

    def to_data(self):
        data = EventRecord.to_data(self)
        if not self.followup:  # stored as before follow-up phases existed
            del data["followup"]
        if self.handed_off_to is None:  # stored as before a handoff resolved its incident
            del data["handed_off_to"]
        return data


@record("severity_changed", loud="warning", keys={"previous": "from"})
class SeverityChanged(EventRecord):
    previous: str
    to: str
    reason: str = ""
    rise: str | None = None  # the symptom's severity rise that fired it
    due_at: str | None = None  # when that rise fell due

    def fold(self, state, event):
        state.severity = self.to
        at = parse(self.due_at) if self.due_at else event.at
        start_paging(state, at)
        follow_ladder(state, at)
        if self.rise is not None:
            state.rises.add(self.rise)

    def describe(self):
        return f"severity {self.previous} → {self.to}" + (f" ({self.reason})" if self.reason else "")

    def project(self, ts):
        return {"severity": self.to}


@record("note_added", tone="note")
class NoteAdded(EventRecord):
    text: str

    def fold(self, state, event):
        pass  # a note is its event: state.notes reads them from the log

    def describe(self):
        return f"note: {self.text}"


@record("action_item_added")
class ActionItemAdded(EventRecord):
    """An action item; it is numbered by its place among the incident's items (INC-…#1, #2…)."""

    text: str
    owner: str = ""
    due: str | None = None  # a date, 2026-12-24
    priority: str | None = None  # P1…P4
    kind: str | None = None  # prevent, mitigate, detect, process (engine/learning.py: KINDS)
    ticket: str | None = None  # a link to the tracker

    def fold(self, state, event):
        pass  # state.action_items reads them from the log

    def describe(self):
        extra = [f"owner {self.owner}" if self.owner else "", f"due {self.due}" if self.due else "",
                 self.priority or "", self.kind or ""]
        extra = ", ".join(x for x in extra if x)
        return f"action item: {self.text}" + (f" ({extra})" if extra else "")

    def to_data(self):
        data = EventRecord.to_data(self)
        for key in ("due", "priority", "kind", "ticket"):  # stored as before these fields existed
            if data[key] is None:
                del data[key]
        return data


@record("target_breached", loud="error", tone="error")
class TargetBreached(EventRecord):
    target: str
    deadline: str

    def fold(self, state, event):
        state.breaches[self.target] = event.at

    def describe(self):
        return f"{self.target} target breached"


@record("plugin_error", loud="error", tone="error")
class PluginErrorRecorded(EventRecord):
    plugin: str
    hook: str
    message: str
    kind: str = "error"

    def fold(self, state, event):
        pass  # a record for people; it changes nothing the engine decides on

    def describe(self):
        return f"plugin {self.plugin} failed in {self.hook}: {self.message}"
