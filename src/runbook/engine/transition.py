"""The one step transition: how finishing a step moves the incident on.

Every command that finishes a step (done, skipped, failed, an option chosen; by hand, by an
automation, by a poll, by a timeout, by a degradation) asks `finish` for its events, so the
order is the same everywhere: a new attempt when the step had failed, the message a communicate
step posts (as posted), the step's outcome, the incident mitigated when the step or option says
so (for a staged degradation, once it reaches the stage that mitigates), then the next step or the
end of its track.
An automation that failed with tries left under its retry: rule stays current instead, and the
retry timer (`again`, auto) starts its next attempt.
Pure: it reads the state and the playbook and returns records; it appends nothing.
"""

from datetime import datetime
from typing import NamedTuple

from runbook.catalog.flow import default_next
from runbook.catalog.models import END, Step, Track
from runbook.engine import conditions, texts
from runbook.engine.events import (
    Closed,
    DecisionMade,
    EventRecord,
    MessagePosted,
    Mitigated,
    MitigationAwaited,
    StepCompleted,
    StepFailed,
    StepSkipped,
    StepStarted,
    TrackFinished,
)
from runbook.engine.state import FAILED, IncidentState

PUBLIC_STATUSES = ("investigating", "identified", "monitoring", "resolved")
ALERT_RESOLVED_BEFORE = "the alert had already resolved"
ALERT_RESOLVED = "the alert resolved at its source"


class Done(NamedTuple):
    outcome: str = ""
    at: datetime | None = None  # when it is done: a communicate step's message is filled then ({elapsed})
    status: str | None = None  # a communicate step's public phase, as the responder said it
    text: str | None = None  # a compose: true communicate step: the message the responder wrote


class Skipped(NamedTuple):
    reason: str


class Failed(NamedTuple):
    reason: str
    timeout: bool = False  # a wait that timed out goes to on_timeout, not on_fail
    to: str | None = None  # where to go instead of on_fail (a wait's on_broken step)
    automated: bool = False  # the step's own automation failed: its retry: rule may run it again


class Chosen(NamedTuple):
    index: int  # 0-based option
    suggested: str | None = None  # the label of the option suggested at the time, if any


def finish(state: IncidentState, step: Step, result: Done | Skipped | Failed | Chosen,
           ends: bool = False, reached: int | None = None, values: dict | None = None) -> list[EventRecord]:
    """The records of finishing `step` with `result`; `ends`: the incident ends with this step (a
    handoff), so its track finishes instead of moving on; `reached`: the stage a staged degradation
    the step applies is being applied at (0-based) in the same append, when it is (engine/effects.py);
    `values`: parameters set in the same append (an answer, a capture), which the next step's
    when: reads."""
    track = next(t for t in state.playbook.tracks if t.id == step.track)
    out: list[EventRecord] = []
    run = state.steps[step.id]
    if run.status == FAILED and not isinstance(result, Skipped):
        out.append(again(state, step))
    mitigates, applies = False, step.degradation if step.kind == "degrade" else None
    if isinstance(result, Done):
        if step.kind == "communicate" and result.text is not None:
            out.append(posted(state, step, result.at, result.status, result.text))
        elif step.kind == "communicate" and step.template:
            out.append(posted(state, step, result.at, result.status))
        out.append(StepCompleted(step.id, step.track, result.outcome))
        mitigates, target = step.mitigates, default_next(track, step)
    elif isinstance(result, Chosen):
        chosen = step.options[result.index]
        target = chosen.next or default_next(track, step)
        out.append(DecisionMade(step.id, step.track, result.index + 1, chosen.label, target, result.suggested))
        mitigates, applies = chosen.mitigates or step.mitigates, chosen.degradation
    elif isinstance(result, Skipped):
        out.append(StepSkipped(step.id, step.track, result.reason))
        target = default_next(track, step)
    elif retries_left(state, step, result):
        # the retry rule runs it again after its delay (a timer); until then it stays current, failed
        out.append(StepFailed(step.id, step.track, result.reason, retry_in=step.retry.delay))
        target = None
    else:
        out.append(StepFailed(step.id, step.track, result.reason, timeout=result.timeout))
        target = result.to or (step.on_timeout if result.timeout else step.on_fail)  # none: stays current
    if mitigates and state.mitigated_at is None:
        out.append(mitigation(state, step.id, applies, reached))
    if ends:
        target = END
    if target:
        out += start(state, track, target, values)
    return out


def start(state: IncidentState, track: Track, target: str, values: dict | None = None) -> list[EventRecord]:
    """`target` started; when its when: does not hold, it is started and skipped at once, saying why,
    and so on down the track (to its end, or where a chain of skipped steps would come back)."""
    out: list[EventRecord] = []
    seen = set()
    while target != END and target not in seen:
        seen.add(target)
        step = state.playbook.step(target)
        out.append(StepStarted(target, track.id, state.steps[target].attempt + 1))
        why = conditions.unmet(state, step.when, values)
        if why is None and step.wait_alert and not state.alert_firing:  # what it waits for has happened
            out.append(StepCompleted(target, track.id, ALERT_RESOLVED_BEFORE))
            target = default_next(track, step)
            continue
        if why is None:
            return out
        out.append(StepSkipped(target, track.id, f"when: {why}"))
        target = default_next(track, step)
    out.append(TrackFinished(track.id))
    if track.followup:
        out.append(Closed("follow-up done"))
    return out


def posted(state: IncidentState, step: Step, at: datetime | None, status: str | None = None,
           written: str | None = None) -> MessagePosted:
    """The message a communicate step posts, filled as it goes out and recorded as posted; a value
    that cannot be filled refuses the step (CommandError naming it and how to set it). `written`:
    the text the responder wrote at posting time (compose: true), recorded as it was.

    A step posting on a cadence (repeat:) numbers its posts: `repeat` is how many it posted before
    in this incident, so 0 is its first post and the numbering goes on through a restart (the
    step's own post in a new attempt is the next number, and its cadence counts from it)."""
    followup = state.playbook.followup is not None and step.track == state.playbook.followup.id
    text = written if written is not None else texts.message(state, step, at)
    repeat = sum(1 for m in state.messages if m.record.step == step.id) if step.repeat is not None else 0
    return MessagePosted(step.id, text, texts.text(state, step.title, step, at), step.channel or "",
                         step.audience or "", "follow-up" if followup else "response",
                         public_status(state, step, status), written is not None, repeat)


def public_status(state: IncidentState, step: Step, told: str | None = None) -> str:
    """The phase a message announces: what the responder said, else the step's status:, else what
    the incident has reached when it is posted (recorded then, so later changes never rewrite it)."""
    if step.audience != "customers":
        return ""  # only the public hears of phases
    if told or step.status:
        return told or step.status
    if state.resolved:
        return "resolved"
    return "monitoring" if state.mitigated_at is not None else "investigating"


def mitigation(state: IncidentState, step_id: str, degradation: str | None,
               reached: int | None = None) -> Mitigated | MitigationAwaited:
    """A mitigating step that applies a staged degradation mitigates only at the stage its rollout
    names (mitigates_at, else the last): short of it, the incident waits for that stage."""
    rollout = state.playbook.degradations[degradation].rollout if degradation else None
    if rollout is None:
        return Mitigated(step_id)
    stage = reached if reached is not None else state.degradations[degradation].stage
    at, of = rollout.mitigating_stage, len(rollout.stages)
    if stage >= at:
        return Mitigated(step_id, degradation, stage, rollout.stages[stage][0], of)
    return MitigationAwaited(step_id, degradation, at, rollout.stages[at][0], of)


def again(state: IncidentState, step: Step, auto: bool = False) -> StepStarted:
    """A new attempt at a failed step, so its time is measured on its own: by hand (working on it
    again), or by the step's retry: rule (`auto`)."""
    return StepStarted(step.id, step.track, state.steps[step.id].attempt + 1, retry=True, auto=auto)


def retries_left(state: IncidentState, step: Step, result) -> bool:
    """Whether the step's retry: rule runs a failed automation again (before on_fail)."""
    return (isinstance(result, Failed) and result.automated and not result.timeout and step.retry is not None
            and state.steps[step.id].retries < step.retry.count)
