"""Restarting a track from a step the incident already reached: the most-asked-for second try."""

from __future__ import annotations

from runbook.catalog.models import Step
from runbook.engine.events import EventRecord, StepRestarted, StepStarted
from runbook.engine.state import IncidentState
from runbook.errors import CommandError


def records(state: IncidentState, step: Step, reason: str) -> list[EventRecord]:
    """The restart and the step's new attempt. The step and every later step of its track (and the
    step that was current, wherever it is) become pending again."""
    run = state.steps[step.id]
    if run.attempt == 0:
        reached = [s.id for s in _track(state, step).steps if state.steps[s.id].attempt > 0]
        raise CommandError(f"step '{step.id}' was never reached, so there is nothing to restart from; steps "
                           f"of its track reached so far: {', '.join(reached) or 'none'}")
    if step.id in state.actions_pending:
        raise CommandError(f"step '{step.id}' is running its automation now; restart when it has finished")
    track = _track(state, step)
    left = state.current.get(step.track)
    reset = [s.id for s in track.steps if s.index >= step.index or s.id == left]
    return [StepRestarted(step.id, step.track, reason, reset, left),
            StepStarted(step.id, step.track, run.attempt + 1)]


def _track(state: IncidentState, step: Step):
    return next(t for t in state.playbook.tracks if t.id == step.track)
