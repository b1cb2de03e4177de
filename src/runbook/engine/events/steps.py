"""Steps: started, completed, skipped, failed, decisions, approvals, polls, timed waits due, restarts,
tracks finished."""

from __future__ import annotations

from dataclasses import field
from datetime import timedelta

from runbook.catalog.durations import format_duration
from runbook.engine.clock import parse
from runbook.engine.events.base import EventRecord, finish_run, finish_step, record
from runbook.engine.state import ACTIVE, DONE, FAILED, PENDING, SKIPPED, StepRun


@record("step_started")
class StepStarted(EventRecord):
    step: str
    track: str
    attempt: int
    retry: bool = False  # a new attempt at a step that had failed
    auto: bool = False  # an automatic retry by the step's retry: rule

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is None:
            return
        step.status, step.attempt, step.started_at, step.finished_at, step.reason = \
            ACTIVE, self.attempt, event.at, None, ""
        step.polls, step.last_poll, step.last_outcome, step.due_at, step.retry_at = 0, "", "", None, None
        step.retries = step.retries + 1 if self.auto else step.retries if self.retry else 0
        state.current[step.track] = step.id
        state.runs.append(StepRun(step.id, step.track, step.attempt, event.at))

    def describe(self):
        return (f"step {self.step} started" + (f" (attempt {self.attempt})" if self.attempt > 1 else "")
                + (" by its retry rule" if self.auto else ""))


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
    retry_in: int | None = None  # seconds until the step's retry rule runs it again

    def fold(self, state, event):
        finish_step(state, self.step, event.at, FAILED, self.reason)
        step = state.steps.get(self.step)
        if step is not None and self.retry_in is not None:
            step.retry_at = event.at + timedelta(seconds=self.retry_in)

    def describe(self):
        again = f"; trying again in {format_duration(self.retry_in)}" if self.retry_in is not None else ""
        return f"step {self.step} failed: {self.reason}{again}"


@record("decision_made")
class DecisionMade(EventRecord):
    step: str
    track: str
    option: int  # 1-based
    label: str
    next: str
    suggested: str | None = None  # the option suggested from a captured value or exit code, if any

    def fold(self, state, event):
        finish_step(state, self.step, event.at, DONE, self.label, f"chose {self.label}")

    def describe(self):
        if self.suggested is None:
            return f"{self.step}: chose '{self.label}' → {self.next}"
        how = "as suggested" if self.suggested == self.label else f"over the suggested '{self.suggested}'"
        return f"{self.step}: chose '{self.label}' {how} → {self.next}"

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        if self.suggested is None:  # decisions without a suggestion are stored as they always were
            del data["suggested"]
        return data


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
    # who held the role then; "" when nobody did (anyone may approve); None: not checked (older logs)
    holder: str | None = None
    override: str = ""  # why someone other than the holder approved
    # what the approver approved, rendered (engine/approvals.py: prompt, command, message, flags...),
    # and the digest the step is checked against before it runs; None in older logs: not bound
    content: dict | None = None
    digest: str | None = None

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.approved_by, step.approved_attempt = event.actor, step.attempt
            step.approved_at, step.approved_content, step.approved_digest = event.at, self.content, self.digest

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        for key in ("content", "digest"):  # an approval bound to nothing is stored as older ones were
            if data[key] is None:
                del data[key]
        return data

    def describe(self):
        if self.override:
            return f"step {self.step} approved OVERRIDING {self.role} {self.holder}: {self.override}{self._what()}"
        return (f"step {self.step} approved (as {self.role}" + (", no holder" if self.holder == "" else "") + ")"
                + self._what())

    def _what(self) -> str:
        """What it approved, in a few words: the step's command, message (for a compose: true step the
        text written, which is what it posts, not its template), action or degradation."""
        for name, said in (("command", "command"), ("composed", "text"), ("message", "message"),
                           ("action", "action"), ("query", "query"), ("degradation", "degradation"),
                           ("playbook", "playbook")):
            if self.content and isinstance(self.content.get(name), str):
                value = self.content[name].strip()
                return f" for {said} \"{value if len(value) <= 120 else value[:119] + '…'}\""
        return ""


@record("message_posted", tone="note")
class MessagePosted(EventRecord):
    """A communicate step's message as it was posted: the text, where it went and to whom. Faces show
    this record, never the template rendered again from today's values."""

    step: str
    text: str
    title: str = ""  # the step's title as it read then
    channel: str = ""
    audience: str = ""
    phase: str = "response"  # response or follow-up
    # the public phase it announced: investigating, identified, monitoring or resolved ("": logs
    # before it was recorded, read as the status page's fallback says)
    status: str = ""
    written: bool = False  # the responder wrote it when posting (compose: true), not the template
    repeat: int = 0  # a communicate step's post on its cadence (repeat:): 1 for the first repeat; 0 the step's own

    def fold(self, state, event):
        state.messages.append(event)
        state.posts_due.pop(self.step, None)  # a post due is posted
        if self.audience == "customers":  # a public update: reminders counted from the last one start again
            for reminder in state.playbook.reminders:
                if reminder.start == "public-update":
                    state.reminders.pop(reminder.id, None)

    def to_data(self) -> dict:  # stored as before the fields existed when they say nothing
        data = EventRecord.to_data(self)
        if not data["status"]:
            del data["status"]
        if not self.written:
            del data["written"]
        if not self.repeat:
            del data["repeat"]
        return data

    def describe(self):
        where = " · ".join(x for x in (self.channel, self.audience) if x)
        again = f" (repeat {self.repeat})" if self.repeat else ""
        return f"message posted{f' to {where}' if where else ''} by step {self.step}{again}: {self.text.strip()}"


@record("post_due", loud="warning", tone="reminder")
class PostDue(EventRecord):
    """A communicate step's next post on its cadence (repeat:) came due and needs a responder: a
    message written when posted, an approval that no longer covers it, a value missing. It stays
    due (shown) until someone posts it or the cadence stops."""

    step: str
    repeat: int  # the repeat it would be (1: the first after the step's own post)
    reason: str  # why it was not posted by itself
    due_at: str

    def fold(self, state, event):
        state.posts_due[self.step] = (self.repeat, self.reason, parse(self.due_at))

    def describe(self):
        return f"update due: step {self.step} (repeat {self.repeat}) was not posted: {self.reason}"


@record("check_polled")
class CheckPolled(EventRecord):
    step: str
    ok: bool
    summary: str
    poll: int = 0
    exit_code: int | None = None
    output: str = ""
    outcome: str | None = None  # holds, not-yet or broken (logs before 0.3 say only ok)
    seen: str = ""  # what the poll saw, in words (engine/waits.py `seen`); older logs: "" (the summary says)
    value: str | None = None  # a prometheus: check's deciding value as read (0.034, +Inf)
    captured: dict = field(default_factory=dict)  # what the step's captures read in this poll's output

    @property
    def kind(self) -> str:
        return self.outcome or ("holds" if self.ok else "not-yet")

    @property
    def said(self) -> str:
        """The poll in words: "allocations=2; exit status 1, not yet"; a broken check says why."""
        if self.kind == "broken":
            return f"check broken — {self.summary}"
        if self.kind == "no-data":  # its own outcome: the wait's on_no_data: said what it means (ok: holds)
            return f"no data{', holds' if self.ok else ''} — {self.summary}"
        verdict = "holds" if self.kind == "holds" else "not yet"
        return f"{self.seen}, {verdict}" if self.seen else f"{verdict} — {self.summary}"

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.polls = max(step.polls + 1, self.poll)
            step.last_poll, step.last_outcome = self.said, self.kind
            step.output, step.exit_code, step.ran = self.output, self.exit_code, True

    def describe(self):
        return f"poll {self.poll} of {self.step}: {self.said}"

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        for key, empty in (("seen", ""), ("value", None), ("captured", {})):
            if data[key] == empty:  # stored as before waits recorded what they saw
                del data[key]
        return data


@record("wait_due", loud="warning", tone="reminder")
class WaitDue(EventRecord):
    """A plain timed wait (for:) came due: time to look again; the responder completes the step."""

    step: str
    track: str
    due_at: str

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.due_at = parse(self.due_at)

    def describe(self):
        return f"step {self.step} is due: the wait is over, look again"


@record("step_restarted", loud="warning")
class StepRestarted(EventRecord):
    """A responder restarts the track from an earlier step; it and every later step are pending again."""

    step: str
    track: str
    reason: str
    reset: list = field(default_factory=list)  # the steps made pending again, in track order
    left: str | None = None  # the step that was current when the restart came

    def fold(self, state, event):
        if self.left is not None:
            finish_run(state, self.left, event.at, f"left by a restart from {self.step}")
        for step_id in self.reset:
            step = state.steps.get(step_id)
            if step is not None:
                step.status, step.finished_at, step.reason = PENDING, None, ""
                step.due_at, step.retry_at, step.retries = None, None, 0
        state.current[self.track] = None

    def describe(self):
        return f"restarted track {self.track} from step {self.step}: {self.reason}"
