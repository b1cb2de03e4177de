"""Roles and the follow-up phase: who holds a role (and each handoff), and the incident closed."""

from __future__ import annotations

from dataclasses import field

from runbook.engine.events.base import EventRecord, record


@record("role_assigned")
class RoleAssigned(EventRecord):
    role: str
    person: str
    previous: str | None = None  # the holder handing over; None when the role had none
    joined: bool = False  # a role held by several (many: true): the person joins its holders

    def fold(self, state, event):
        if self.joined:
            members = state.members.setdefault(self.role, [])
            members.append(self.person)
            state.holders[self.role] = ", ".join(members)  # what {ROLE} and the faces read
        else:
            state.holders[self.role] = self.person

    def describe(self):
        if self.joined:
            return f"{self.person} joined {self.role}"
        if self.previous:
            return f"{self.role} handed over: {self.previous} → {self.person}"
        return f"{self.role} assigned to {self.person}"


    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        if not self.joined:  # stored as before roles could be held by several
            del data["joined"]
        return data


@record("role_left")
class RoleLeft(EventRecord):
    """A holder leaves a role held by several (many: true); the others go on holding it."""

    role: str
    person: str

    def fold(self, state, event):
        members = state.members.get(self.role, [])
        if self.person in members:
            members.remove(self.person)
        if members:
            state.holders[self.role] = ", ".join(members)
        else:
            state.holders.pop(self.role, None)

    def describe(self):
        return f"{self.person} left {self.role}"


@record("closed")
class Closed(EventRecord):
    reason: str = ""  # "follow-up done", or why it was closed with follow-up steps left
    open_steps: list = field(default_factory=list)  # follow-up steps not finished when it was closed

    def fold(self, state, event):
        state.closed_at, state.status = event.at, "closed"
        state.current = {track: (None if track == "followup" else step) for track, step in state.current.items()}

    def describe(self):
        left = f" with {', '.join(self.open_steps)} not done" if self.open_steps else ""
        return "closed" + left + (f" ({self.reason})" if self.reason else "")

    def project(self, ts):
        return {"status": "closed"}


@record("signal_given", loud="warning")
class SignalGiven(EventRecord):
    name: str  # steps with wait_for: {signal: NAME} may go ahead

    def fold(self, state, event):
        state.signals[self.name] = (event.actor, event.at)

    def describe(self):
        return f"signal given: {self.name}"
