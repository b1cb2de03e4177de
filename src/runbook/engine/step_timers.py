"""A step's own timers, fired: a plain timed wait coming due, and a failed automation's retry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from runbook.engine.clock import iso
from runbook.engine.effects import SYSTEM
from runbook.engine.events import Event, WaitDue
from runbook.engine.state import ACTIVE, FAILED, IncidentState
from runbook.engine.transition import Failed, again, finish
from runbook.errors import CommandError

if TYPE_CHECKING:
    from runbook.engine.engine import Engine


def wait_due(engine: Engine, state: IncidentState, step_id: str, attempt: int, at: datetime) -> list[Event]:
    """The wait is over: say so (loudly); the step stays current until the responder completes it."""
    step = state.playbook.step(step_id)

    def build(s):
        run = s.steps[step_id]
        if s.resolved or s.current.get(step.track) != step_id or run.status != ACTIVE or run.attempt != attempt \
                or run.due_at is not None:
            return []
        return [WaitDue(step_id, step.track, iso(at))]
    return engine.command(state.id, SYSTEM, build)


def retry(engine: Engine, state: IncidentState, step_id: str, attempt: int) -> list[Event]:
    """The retry rule's next try: a new attempt (recorded before it runs, so it is timed on its own),
    then the step's automation, whose outcome moves the step on as any run does."""
    step = state.playbook.step(step_id)

    def build(s):
        run = s.steps[step_id]
        if s.resolved or s.current.get(step.track) != step_id or run.status != FAILED or run.attempt != attempt \
                or run.retry_at is None:
            return []
        return [again(s, step, auto=True)]
    started = engine.command(state.id, SYSTEM, build)
    if not started:
        return []
    try:
        if engine.plugins is None:
            raise CommandError("no plugins loaded: cannot run actions")
        return started + engine.effects.run(state.id, SYSTEM, step)
    except CommandError as exc:  # refused (an altered record, a value missing): the try fails, saying why
        reason = str(exc)
        return started + engine.command(state.id, SYSTEM, lambda s: finish(s, step, Failed(reason)) if
                                         s.steps[step_id].status == ACTIVE and s.current.get(step.track) == step_id
                                         else [])


def status(state: IncidentState, step_id: str, now: datetime) -> str:
    """One line on a current step's own clock: a timed wait due or coming due, a retry coming, the
    last poll's class; empty when there is nothing to say."""
    step, run = state.playbook.step(step_id), state.steps[step_id]
    if run.retry_at is not None and run.status == FAILED:
        return f"trying again at {run.retry_at:%H:%M:%S} (retry {run.retries + 1} of {step.retry.count})"
    if step.timed and run.status == ACTIVE:
        if run.due_at is not None:
            return f"DUE since {run.due_at:%H:%M:%S}: look again, then complete it"
        return f"comes due at {run.started_at + timedelta(seconds=step.wait_time):%H:%M:%S}"
    if run.last_outcome and run.last_outcome != "holds":
        return f"last poll: {run.last_outcome.replace('-', ' ')}"
    return ""
