"""Posts repeated on a cadence: a communicate step with `repeat: {every, until}` posts again `every`
after its last post, until `until` holds (mitigated, resolved, or a condition), and never after
resolve.

When the next post is due is derived from the log (the step's last `message_posted`), like every
other timer. The timer pass posts it through the same path as the step's own post, filled with
the values of that moment, when nothing needs a person; else it records the post as due (`post_due`,
saying why) and the faces remind the responder until someone posts it (`post`) or the cadence
stops. Nothing is skipped silently.

Posts are numbered per step over the whole incident (`repeat`: how many it posted before): a
restart of the step does not start the numbering again, and its cadence runs on through it,
counting from the step's last post, whichever attempt made it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from runbook.catalog.durations import format_duration
from runbook.catalog.models import Step
from runbook.engine import approvals, conditions, roles, texts
from runbook.engine.clock import iso
from runbook.engine.effects import SYSTEM
from runbook.engine.events import Event, PostDue
from runbook.engine.limits import check_size
from runbook.engine.state import IncidentState
from runbook.engine.transition import posted
from runbook.errors import CommandError, NotFoundError

if TYPE_CHECKING:
    from runbook.engine.engine import Engine


def posts(state: IncidentState, step_id: str) -> list[Event]:
    """The step's posts, oldest first."""
    return [e for e in state.messages if e.record.step == step_id]


def stopped(state: IncidentState, step: Step) -> str | None:
    """Why the step's cadence does not run (not yet, or no more), or None while it runs."""
    if not posts(state, step.id):
        return f"step '{step.id}' has not posted yet; its repeats start after its first post"
    if state.resolved:
        return f"incident {state.id} is resolved; posts on a cadence stop at resolve"
    until = step.repeat.until
    if until == "mitigated" and state.mitigated_at is not None:
        return f"step '{step.id}' repeats until mitigated, and incident {state.id} is mitigated"
    if until == "condition" and conditions.unmet(state, step.repeat.when) is None:
        return f"step '{step.id}' repeats until {_condition(step)}, which holds now"
    return None


def _condition(step: Step) -> str:
    when = step.repeat.when
    subject = (f"parameter {when.param}" if when.param else f"label {when.label}" if when.label else
               f"severity {' or '.join(when.severity)}" if when.severity else f"symptom {' or '.join(when.symptom)}")
    tests = [f"{name} {value}" for name, value in (("equals", when.equals), ("matches", when.matches),
                                                   ("above", when.above), ("below", when.below)) if value is not None]
    return " ".join([subject, *tests])


def repeating(state: IncidentState) -> list[Step]:
    """The steps whose cadence runs now."""
    return [step for step in state.playbook.steps if step.repeat is not None and stopped(state, step) is None]


def next_at(state: IncidentState, step: Step) -> datetime:
    """When the step's next post is due: `every` after its last post."""
    return posts(state, step.id)[-1].at + timedelta(seconds=step.repeat.every)


def timers(state: IncidentState) -> list[tuple[datetime, dict]]:
    """(due at, data) of each next post not yet recorded as due."""
    return [(next_at(state, step), {"step": step.id, "repeat": len(posts(state, step.id))})
            for step in repeating(state) if step.id not in state.posts_due]


def due(state: IncidentState) -> list[tuple[str, int, str, datetime]]:
    """(step, repeat, why, due at) of each post due that awaits a person, while its cadence runs."""
    return [(step_id, n, why, at) for step_id, (n, why, at) in state.posts_due.items()
            if stopped(state, state.playbook.step(step_id)) is None]


def needs_person(state: IncidentState, step: Step, now: datetime) -> str:
    """Why the next post cannot go out by itself ("" when it can)."""
    if step.compose:
        return "it is written when posted (compose: true)"
    changed = approvals.refusal_if_changed(state, step)
    if changed:
        return changed.split(": ", 1)[1]
    try:
        texts.message(state, step, now)
    except CommandError as exc:
        return str(exc).split(": ", 1)[1] if str(exc).startswith("step '") else str(exc)
    return ""


def fire(engine: Engine, state: IncidentState, step_id: str, repeat: int, at: datetime) -> list[Event]:
    """The timer pass: post the step's next repeat now, or record it as due with why."""
    step = state.playbook.step(step_id)

    def build(s):
        if stopped(s, step) is not None or step_id in s.posts_due or len(posts(s, step_id)) != repeat:
            return []
        now = engine.clock.now()
        why = needs_person(s, step, now)
        if why:
            return [PostDue(step_id, repeat, why, iso(at))]
        return [posted(s, step, now)]
    return engine.command(state.id, SYSTEM, build)


def post(engine: Engine, incident: str, actor: str, step_id: str, message: str | None = None,
         posted_before: int | None = None) -> list[Event]:
    """Post the step's next repeat by hand (due or not: it counts from this post): the template
    filled now, or `message` for a compose: true step; its approval must still cover it.
    `posted_before`: how many posts of the step the person was shown (a dialog); a post recorded
    since (the timer pass, another responder) refuses this one rather than post twice."""
    if message is not None:
        check_size("the message", message)

    def build(state):
        engine.require_live(state)
        try:
            step = state.playbook.step(step_id)
        except KeyError:
            raise NotFoundError(f"playbook {state.playbook.id} has no step '{step_id}'") from None
        if step.repeat is None:
            raise CommandError(f"step '{step.id}' does not repeat (no repeat: in the playbook); only a communicate "
                               "step with repeat: posts again")
        why = stopped(state, step)
        if why:
            raise CommandError(f"not posted: {why}")
        earlier = posts(state, step.id)
        if posted_before is not None and len(earlier) != posted_before:
            last = earlier[-1]
            raise CommandError(f"not posted: step '{step.id}' posted meanwhile ({last.at:%H:%M:%S} UTC by {last.actor}"
                               f"{f', repeat {last.record.repeat}' if last.record.repeat else ''}); look again")
        roles.refuse_if_not_holder(state, step, actor)
        if message is not None and not step.compose:
            raise CommandError(f"step '{step.id}' posts its template; only a step with compose: true takes a message")
        text = (message or "").strip()
        if step.compose and not text:
            raise CommandError(f"step '{step.id}' posts what you write: give the message, e.g. `runbook incident "
                               f"post {state.id} {step.id} --message TEXT`")
        refused = approvals.refusal_if_changed(state, step) or approvals.refusal_if_other_text(state, step, text)
        if refused:
            raise CommandError(refused)
        return [posted(state, step, engine.clock.now(), written=text if step.compose else None)]
    return engine.command(incident, actor, build)


def status(state: IncidentState, step: Step, now: datetime) -> str:
    """One line on a repeating step's cadence: due (and why), the next post, or why it stopped;
    empty for a step without repeat: or before its first post."""
    if step.repeat is None or not posts(state, step.id):
        return ""
    why = stopped(state, step)
    if why:
        return "repeats stopped" + (" at resolve" if state.resolved else "")
    if step.id in state.posts_due:
        n, reason, at = state.posts_due[step.id]
        return f"UPDATE DUE since {at:%H:%M} (repeat {n}): {reason}"
    at = next_at(state, step)
    return f"next update {'due now' if at <= now else f'at {at:%H:%M}'} (every {_every(step)})"


def _every(step: Step) -> str:
    return format_duration(step.repeat.every)
