"""Steps: started, completed, skipped, failed, decisions, approvals, polls, tracks finished."""

from __future__ import annotations

from runbook.engine.events.base import EventRecord, finish_step, record
from runbook.engine.state import ACTIVE, DONE, FAILED, SKIPPED, StepRun


@record("step_started")
class StepStarted(EventRecord):
    step: str
    track: str
    attempt: int
    retry: bool = False  # a new attempt at a step that had failed

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is None:
            return
        step.status, step.attempt, step.started_at, step.finished_at, step.reason = \
            ACTIVE, self.attempt, event.at, None, ""
        step.polls, step.last_poll = 0, ""
        state.current[step.track] = step.id
        state.runs.append(StepRun(step.id, step.track, step.attempt, event.at))

    def describe(self):
        return f"step {self.step} started" + (f" (attempt {self.attempt})" if self.attempt > 1 else "")


@record("step_completed")
class StepCompleted(EventRecord):
    step: str
    track: str
    outcome: str = ""

    def fold(self, state, event):
        finish_step(state, self.step, event.at, DONE, self.outcome)

    def describe(self):
        return f"step {self.step} done" + (f": {self.outcome}" if self.outcome else "")


@record("step_skipped")
class StepSkipped(EventRecord):
    step: str
    track: str
    reason: str

    def fold(self, state, event):
        finish_step(state, self.step, event.at, SKIPPED, self.reason)

    def describe(self):
        return f"step {self.step} skipped: {self.reason}"


@record("step_failed")
class StepFailed(EventRecord):
    step: str
    track: str
    reason: str
    timeout: bool = False  # a wait whose condition did not hold in time

    def fold(self, state, event):
        finish_step(state, self.step, event.at, FAILED, self.reason)

    def describe(self):
        return f"step {self.step} failed: {self.reason}"


@record("decision_made")
class DecisionMade(EventRecord):
    step: str
    track: str
    option: int  # 1-based
    label: str
    next: str

    def fold(self, state, event):
        finish_step(state, self.step, event.at, DONE, self.label, f"chose {self.label}")

    def describe(self):
        return f"{self.step}: chose '{self.label}' → {self.next}"


@record("track_finished")
class TrackFinished(EventRecord):
    track: str

    def fold(self, state, event):
        state.current[self.track] = None

    def describe(self):
        return f"track {self.track} finished"


@record("approval_granted")
class ApprovalGranted(EventRecord):
    step: str
    role: str
    holder: str | None = None  # who held the role then; "" when nobody did (anyone may approve); None: not checked (older logs)
    override: str = ""  # why someone other than the holder approved

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.approved_by, step.approved_attempt = event.actor, step.attempt

    def describe(self):
        if self.override:
            return f"step {self.step} approved OVERRIDING {self.role} {self.holder}: {self.override}"
        return f"step {self.step} approved (as {self.role}" + (", no holder" if self.holder == "" else "") + ")"


@record("check_polled")
class CheckPolled(EventRecord):
    step: str
    ok: bool
    summary: str
    poll: int = 0
    exit_code: int | None = None
    output: str = ""

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.polls = max(step.polls + 1, self.poll)
            step.last_poll = self.summary
            step.output, step.exit_code, step.ran = self.output, self.exit_code, True

    def describe(self):
        return f"poll {self.poll} of {self.step}: {'ok' if self.ok else 'not yet'} — {self.summary}"
