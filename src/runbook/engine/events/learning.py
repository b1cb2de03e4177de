"""What people learn from an incident: the review they write, and action items closed or reminded.

None of these changes what the engine decides on; the faces and `engine/learning.py` read them
from the log (state.events)."""

from __future__ import annotations

from runbook.engine.events.base import EventRecord, record


@record("review_written", tone="note")
class ReviewWritten(EventRecord):
    """One section of the postmortem as a person wrote it (summary, trigger, root-cause...); a
    later one for the same section supersedes it, both stay in the log."""

    section: str
    text: str

    def fold(self, state, event):
        pass

    def describe(self):
        return f"review {self.section}: {self.text}"


@record("action_item_closed")
class ActionItemClosed(EventRecord):
    """Action item number `item` of this incident is done, with the evidence that it is."""

    item: int
    evidence: str
    evidence_kind: str = "link"  # link, drill (a drill run that passed), check (a check that now holds)

    def fold(self, state, event):
        pass

    def describe(self):
        return f"action item #{self.item} closed ({self.evidence_kind}: {self.evidence})"


@record("action_item_reminded")
class ActionItemReminded(EventRecord):
    """The owner of overdue action item number `item` was reminded through the notify hooks."""

    item: int
    owner: str
    due: str
    delivered: int = 0  # how many notifiers took it

    def fold(self, state, event):
        pass

    def describe(self):
        return f"action item #{self.item} is overdue (due {self.due}): reminded {self.owner}"
