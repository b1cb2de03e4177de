"""What an incident left not done, read from its steps as the log left them: steps started and
never finished (current at resolve, or follow-up steps open at close), steps that failed or were
skipped, and how many were never reached (a branch not taken, a track ended early). Faces say
"every step was done" only when nothing is in any of these. Pure.
"""

from __future__ import annotations

from typing import NamedTuple

from runbook.catalog.models import FOLLOWUP_TRACK
from runbook.engine.state import ACTIVE, FAILED, PENDING, SKIPPED, IncidentState

UNDONE = "not done"


class NotDone(NamedTuple):
    step: str
    track: str
    status: str  # "not done" (started, never finished), failed or skipped
    reason: str = ""  # why it failed or was skipped, as recorded
    settled: bool = False  # a restore step whose degradation is no longer applied (resolve restored it)


class Completion(NamedTuple):
    not_done: tuple[NotDone, ...]
    unreached: int  # steps never started: branches not taken, or after where their track ended

    @property
    def every_step_done(self) -> bool:
        return not self.not_done and not self.unreached

    def of(self, status: str) -> tuple[NotDone, ...]:
        return tuple(item for item in self.not_done if item.status == status)

    def verdict(self) -> str:
        """One line: "Every step was done.", or what was not, in counts."""
        if self.every_step_done:
            return "Every step was done."
        counts = [f"{len(self.of(status))} {status}" for status in (UNDONE, FAILED, SKIPPED) if self.of(status)]
        if self.unreached:
            counts.append(f"{self.unreached} not reached")
        if not self.not_done:
            return f"Every step it came to was done ({counts[0]})."
        return "Not every step was done: " + ", ".join(counts) + "."


def completion(state: IncidentState) -> Completion:
    """The steps of `state` not done, in playbook order; in the follow-up phase its steps are
    still to come, so they are left out."""
    items, unreached = [], 0
    for track in state.playbook.tracks:
        if track.id == FOLLOWUP_TRACK and (state.in_followup or not state.resolved):
            continue
        for step in track.steps:
            run = state.steps[step.id]
            if run.status == PENDING:
                unreached += 1
            elif run.status == ACTIVE:
                settled = step.kind == "restore" and step.degradation in state.degradations \
                    and not state.degradations[step.degradation].touched
                items.append(NotDone(step.id, track.id, UNDONE, settled=settled))
            elif run.status in (FAILED, SKIPPED):
                items.append(NotDone(step.id, track.id, run.status, run.reason))
    return Completion(tuple(items), unreached)
