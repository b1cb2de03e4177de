"""Staged degradations (a degradation with `rollout:`): shares that grow while checks hold.

`degrade` applies the first stage: the degraded flag values go to that share of users (flagd
`fractional` targeting, bucketed on the playbook's context key). While a stage holds, its checks
(Prometheus queries with a condition) run every `check_every`:

- all hold, and the stage has held for its `hold`: the next stage starts by itself (the last
  stage stays, its checks still running);
- one's condition is not met: the rollout rolls back by itself (to the previous stage, or
  restoring fully, as `on_failure` says) and the timeline says which check and what value;
- one cannot be evaluated (metrics unreachable, query error, no data): `on_check_broken` says
  hold (the default: stay, do not advance, keep checking) or roll back.

A responder can hold a stage (it then never advances by itself; checks still run and still roll
back), let it go, advance now, roll back one stage, or restore in stages ("unwind": one stage
down after each stage's hold, checks still watching, until restored). What is due is derived from the log like
every other timer (`timers.py` asks `due_timers`); `ticks.py` fires them through `fire`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from runbook.engine.events import Event, StageChecked, StageSteered
from runbook.errors import CommandError

if TYPE_CHECKING:
    from runbook.engine.engine import Engine
    from runbook.engine.state import IncidentState

SYSTEM = "runbook"
ACTIONS = ("hold", "resume", "advance", "rollback", "unwind")


class Reading(NamedTuple):
    outcome: str  # holds, not-yet, broken
    value: float | None
    detail: str


def rollout_of(state: IncidentState, name: str):
    spec = state.playbook.degradations.get(name)
    return spec.rollout if spec is not None else None


def staged(state: IncidentState):
    """(name, rollout, degradation state) of each staged degradation now applied at a stage."""
    for name, spec in state.playbook.degradations.items():
        deg = state.degradations.get(name)
        if spec.rollout is not None and deg is not None and deg.applied and deg.stage >= 0 and not deg.pending:
            yield name, spec.rollout, deg


def due_timers(state: IncidentState) -> list[tuple[datetime, str, dict]]:
    """(when, kind, data) for each staged degradation: its next check, and the next stage once
    its hold is over and its checks hold (not while held by a responder)."""
    out = []
    if state.resolved:
        return out
    for name, rollout, deg in staged(state):
        if rollout.checks:  # at every stage, the last too: a metric going wrong rolls back at once
            since = deg.checked_at or deg.stage_at
            out.append((since + timedelta(seconds=rollout.check_every), "stage_check",
                        {"degradation": name, "stage": deg.stage}))
        hold_end = _hold_end(rollout, deg)
        if deg.unwinding:  # a staged restore: one stage down after each hold
            if not deg.held:
                out.append((hold_end, "stage_unwind", {"degradation": name, "stage": deg.stage}))
            continue
        if deg.stage == len(rollout.stages) - 1:
            continue
        passing = all(deg.checks.get(c.name, ("",))[0] == "holds" for c in rollout.checks)
        if not deg.held and passing:
            out.append((hold_end, "stage_advance", {"degradation": name, "stage": deg.stage}))
    return out


def _hold_end(rollout, deg) -> datetime:
    """When the stage a degradation is at has held for its `hold`."""
    return deg.stage_at + timedelta(seconds=rollout.stages[deg.stage][1])


def evaluate(engine: Engine, state: IncidentState, query: str, expect: str, now: datetime) -> Reading:
    """One check against the metrics (RUNBOOK_PROMETHEUS_URL; runbook/metric_checks.py); the
    query is a template of the incident's parameters."""
    from runbook.engine import texts
    from runbook.errors import RunbookError
    from runbook.metric_checks import MetricCheck

    try:
        filled = texts.text(state, query, None, now)
    except RunbookError as exc:  # a value is missing: the check cannot be evaluated, saying which
        return Reading("broken", None, f"cannot fill the query: {exc}")
    reading = engine.effects.reading(MetricCheck(filled, expect), now)
    return Reading(reading.outcome, reading.value, reading.detail)


def fire(engine: Engine, state: IncidentState, kind: str, data: dict) -> list[Event]:
    name, stage = data["degradation"], data["stage"]
    deg = state.degradations[name]
    if deg.stage != stage or deg.pending or not deg.applied:
        return []  # moved on since the timer was read
    rollout = rollout_of(state, name)
    if kind == "stage_unwind":
        return _move(engine, state.id, SYSTEM, name, stage, stage - 1 if stage > 0 else -1, "rollback",
                     f"restoring in stages: stage {stage + 1} held {_span(rollout.stages[stage][1])}", automatic=True)
    if kind == "stage_advance":
        return _move(engine, state.id, SYSTEM, name, stage, stage + 1, "advance",
                     f"stage {stage + 1} held {_span(rollout.stages[stage][1])}"
                     + (" with its checks passing" if rollout.checks else ""), automatic=True)
    now = engine.clock.now()
    readings = {c.name: evaluate(engine, state, c.query, c.expect, now) for c in rollout.checks}
    results = [{"check": n, "outcome": r.outcome, "value": r.value, "detail": r.detail} for n, r in readings.items()]
    checked = engine.command(state.id, SYSTEM, lambda s: [] if s.degradations[name].stage != stage else [
        StageChecked(name, stage, results)])
    failed = [(n, r) for n, r in readings.items() if r.outcome == "not-yet"]
    broken = [(n, r) for n, r in readings.items() if r.outcome == "broken"]
    if not failed and not (broken and rollout.on_check_broken == "rollback"):
        return checked
    n, r = (failed or broken)[0]
    why = f"check {n} {'failed' if failed else 'could not be evaluated'}: {r.detail}"
    target = stage - 1 if rollout.on_failure == "previous" else -1
    return checked + _move(engine, state.id, SYSTEM, name, stage, target, "rollback", why, automatic=True)


def steer(engine: Engine, incident: str, actor: str, name: str, action: str, reason: str = "",
          full: bool = False, expect: tuple[str, ...] | None = None) -> list[Event]:
    """A responder's hand on a staged degradation: hold, resume, advance (now), rollback (one
    stage; `full`: restore fully). `expect`: the lines of the move's plan the responder was shown."""
    state = engine.state(incident)
    _steerable(engine, state, name, action)
    deg = state.degradations[name]
    stage = deg.stage
    if action in ("hold", "resume"):
        if deg.held == (action == "hold"):
            raise CommandError(f"{name} is {'already held' if deg.held else 'not held'} at stage {stage + 1}")
        return engine.command(incident, actor, lambda s: [] if s.degradations[name].stage != stage else [
            StageSteered(name, action, stage, None, reason)])
    if action == "unwind":
        if deg.unwinding:
            raise CommandError(f"{name} is already restoring in stages (at stage {stage + 1})")
        return engine.command(incident, actor, lambda s: [] if s.degradations[name].stage != stage else [
            StageSteered(name, "unwind", stage, None, reason)])
    return _move(engine, incident, actor, name, stage, target(state, name, action, full), action, reason,
                 expect=expect)


def _steerable(engine: Engine, state: IncidentState, name: str, action: str) -> None:
    """A CommandError saying why `action` cannot steer `name` now."""
    if action not in ACTIONS:
        from runbook.catalog.suggest import did_you_mean

        raise CommandError(f"'{action}' is not something a stage does; expected one of: {', '.join(ACTIONS)}"
                           f"{did_you_mean(action, ACTIONS)}")
    engine.require_live(state)
    if rollout_of(state, name) is None:
        from runbook.catalog.suggest import did_you_mean

        staged_names = [n for n, spec in state.playbook.degradations.items() if spec.rollout]
        known = name in state.playbook.degradations
        raise CommandError(f"degradation '{name}' " + ("is not staged (it has no rollout:)" if known else
                           "does not exist" + did_you_mean(name, list(state.playbook.degradations)))
                           + f"; staged ones: {', '.join(staged_names) or 'none'}")
    deg = state.degradations[name]
    if deg.touched and deg.stage < 0:
        raise CommandError(f"degradation '{name}' is half-applied (a flag change failed: see the timeline); "
                           f"restore it with `runbook incident restore {state.id} {name}`, then degrade again")
    if not deg.applied or deg.stage < 0:
        raise CommandError(f"degradation '{name}' is not applied; start its first stage with `runbook incident "
                           f"degrade {state.id} {name}`")
    if deg.pending:
        from runbook.engine.flips import in_flight

        raise CommandError(in_flight(deg))


def target(state: IncidentState, name: str, action: str, full: bool = False) -> int | None:
    """The stage (0-based; -1: restored fully) `action` moves applied staged degradation `name` to;
    None for an action that flips nothing (hold, resume, unwind)."""
    deg, rollout = state.degradations[name], rollout_of(state, name)
    if action == "advance":
        if deg.stage == len(rollout.stages) - 1:
            raise CommandError(f"{name} is at its last stage ({deg.share}%); nothing to advance to")
        return deg.stage + 1
    if action == "rollback":
        return -1 if full or deg.stage == 0 else deg.stage - 1
    return None


def plan(engine: Engine, incident: str, name: str, action: str, full: bool = False):
    """What steering `name` with `action` writes (engine/flips.py), or None when it flips nothing;
    a CommandError when it cannot be done, as `steer` would say."""
    from runbook.engine.flips import APPLY, RESTORE, plan_flip

    state = engine.state(incident)
    _steerable(engine, state, name, action)
    to = target(state, name, action, full)
    if to is None:
        return None
    return plan_flip(engine, state, name, RESTORE, None) if to == -1 else plan_flip(engine, state, name, APPLY, to)


def _move(engine: Engine, incident: str, actor: str, name: str, stage: int, to: int, action: str, reason: str,
          automatic: bool = False, expect: tuple[str, ...] | None = None) -> list[Event]:
    if expect is not None:  # what the responder was shown must still be what it writes, before it is said
        from runbook.engine.flips import APPLY, RESTORE, plan_flip

        state = engine.state(incident)
        plan = plan_flip(engine, state, name, RESTORE) if to == -1 else plan_flip(engine, state, name, APPLY, to)
        shown = plan.lines
        if tuple(expect) != shown:
            raise CommandError(f"moving {name} would now write something else than what was shown: "
                               f"{'; '.join(shown) or 'nothing'}; look again")
    said = engine.command(incident, actor, lambda s: [] if s.degradations[name].stage != stage else [
        StageSteered(name, action, stage, to, reason, automatic)])
    if not said:
        return []
    if to == -1:
        return said + engine.effects.flip(incident, actor, name, "restore", None, None)
    return said + engine.effects.flip(incident, actor, name, "apply", None, None, stage=to)


def in_words(state: IncidentState, name: str) -> str:
    """Where a staged degradation is, in words for the header, `show` and the status page: "audio-only
    for about 10% of users, stage 1 of 3" (shares are buckets of users: about); while a mitigating
    step waits for a later stage, when the incident counts as mitigated. "" when not at a stage."""
    rollout = rollout_of(state, name)
    deg = state.degradations.get(name)
    if rollout is None or deg is None or deg.stage < 0 or not deg.applied:
        return ""
    users = "every user" if deg.share >= 100 else f"about {deg.share}% of users"
    text = f"{name} for {users}, stage {deg.stage + 1} of {len(rollout.stages)}"
    at = rollout.mitigating_stage
    if deg.awaiting and state.mitigated_at is None and deg.stage < at:
        text += f"; mitigated at stage {at + 1} ({rollout.stages[at][0]}%)"
    return text


def held_why(state: IncidentState, name: str) -> str:
    """Why a staged degradation short of its last stage does not advance by itself, "" when it does
    (or is restoring in stages): a responder holds it, or a check cannot be evaluated (its
    on_check_broken is hold). The faces add what to do."""
    rollout = rollout_of(state, name)
    deg = state.degradations.get(name)
    if rollout is None or deg is None or deg.stage < 0 or not deg.applied:
        return ""
    if deg.held:
        return f"held by {deg.held_by or 'a responder'}" + (f": {deg.held_reason}" if deg.held_reason else "")
    if deg.unwinding or deg.stage == len(rollout.stages) - 1 or rollout.on_check_broken != "hold":
        return ""
    broken = [(c.name, deg.checks[c.name][2]) for c in rollout.checks
              if deg.checks.get(c.name, ("",))[0] == "broken"]
    if not broken:
        return ""
    names = ", ".join(check for check, _ in broken)
    return f"check{'s' if len(broken) > 1 else ''} {names} cannot be evaluated: {broken[0][1]}"


def describe(state: IncidentState, name: str, now: datetime) -> str:
    """"stage 1 of 3 (10%), next stage 50% in 4m10s, checks: call-drops holds (0.004)" for show and the TUI;
    a stage that does not advance says why ("HELD: check call-drops cannot be evaluated: …")."""
    rollout = rollout_of(state, name)
    deg = state.degradations.get(name)
    if rollout is None or deg is None or deg.stage < 0:
        return ""
    parts = [f"stage {deg.stage + 1} of {len(rollout.stages)} ({deg.share}%)"]
    why = held_why(state, name)
    if deg.unwinding:
        left = (_hold_end(rollout, deg) - now).total_seconds()
        target = f"stage {deg.stage} ({rollout.stages[deg.stage - 1][0]}%)" if deg.stage > 0 else "restored"
        parts.append("RESTORING IN STAGES, " + (f"HELD ({why})" if deg.held else f"{target} in {_span(max(left, 0))}"))
    elif deg.stage == len(rollout.stages) - 1:
        parts.append("last stage")
    elif why:
        parts.append(f"HELD: {why}")
    else:
        left = (_hold_end(rollout, deg) - now).total_seconds()
        waiting = any(deg.checks.get(c.name, ("",))[0] != "holds" for c in rollout.checks)
        parts.append(f"next stage {rollout.stages[deg.stage + 1][0]}% "
                     + (f"in {_span(max(left, 0))}" if left > 0 else "due")
                     + (" once its checks hold" if waiting else ""))
    if rollout.checks:
        shown = []
        for check in rollout.checks:
            outcome, _, detail, _ = deg.checks.get(check.name, ("not run yet", None, "", None))
            shown.append(f"{check.name} {outcome}" + (f" ({detail})" if detail else ""))
        parts.append("checks: " + "; ".join(shown))
    return ", ".join(parts)


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m" + (f"{seconds % 60:02d}s" if seconds % 60 else "")
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def compact(state: IncidentState, name: str, now: datetime) -> str:
    """The ladder in a few words for a narrow screen: "10% → 50% in 4m10s, call-drops ok"; a stage
    that does not advance says so ("10% HELD: call-drops cannot be evaluated")."""
    rollout = rollout_of(state, name)
    deg = state.degradations.get(name)
    if rollout is None or deg is None or deg.stage < 0:
        return ""
    left = max((_hold_end(rollout, deg) - now).total_seconds(), 0)
    waiting = [c.name for c in rollout.checks if deg.checks.get(c.name, ("",))[0] != "holds"]
    if deg.unwinding:
        to = f"{rollout.stages[deg.stage - 1][0]}%" if deg.stage > 0 else "off"
        text = f"{deg.share}% ↓ {to}" + (" HELD" if deg.held else f" in {_span(left)}")
    elif deg.stage == len(rollout.stages) - 1:
        text = f"{deg.share}%"
    elif deg.held:
        text = f"{deg.share}% HELD"
    elif held_why(state, name):
        broken = [c.name for c in rollout.checks if deg.checks.get(c.name, ("",))[0] == "broken"]
        return f"{deg.share}% HELD: {', '.join(broken)} cannot be evaluated"
    elif left == 0 and waiting:
        text = f"{deg.share}% → {rollout.stages[deg.stage + 1][0]}% once {', '.join(waiting)} holds"
    else:
        text = f"{deg.share}% → {rollout.stages[deg.stage + 1][0]}% in {_span(left)}"
    words = {"holds": "ok", "not-yet": "FAILING", "broken": "?"}
    checks = [f"{c.name} {words.get(deg.checks[c.name][0], '…')}" for c in rollout.checks if c.name in deg.checks]
    return text + (", " + ", ".join(checks) if checks else "")
