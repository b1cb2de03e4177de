"""A drill compiled once into a plan, so that many simulated runs can be drawn at once.

A simulated run through the engine (simulate.py) is random in two places only: whether and
when each paged level answers, and how long each step takes. Everything else is fixed by the
documents, and the plan writes it down by driving the real engine a few times with those
draws pinned:

- the pages while nobody answers: when each level is paged, which level, its answer
  probability and ack latency (the ladder, its rounds and a severity rise's switch of ladder
  included), the same on every day of the week the runs start on;
- the main track from the acknowledgement to the end with the choices of the profile: its
  steps in order with their duration distributions, and after which step the incident counts
  as mitigated; the same whatever the steps take;
- the severity rises of the symptom (the alert never resolves in a simulation), and the
  targets in force after each, where the drill has no targets of its own.

Drills on features whose outcome depends on time in other ways are not compiled: `compile_plan`
then says which feature, and the runs go through the engine. A drill's injects and `ends` do
not move simulated times in either path (simulations open plain drill incidents).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from runbook.catalog.drill import Drill, Latency
from runbook.drills.simulated import DEFAULT_STEP, MAX_STEPS, START, SimulatedPlugins, answer, take_role
from runbook.engine import Engine, VirtualClock, approvals, timers
from runbook.store import MemoryStore

MAX_PAGES = 64  # more than that (a ladder repeated for hours) is left to the engine
PROBE_DURATIONS = (1.0, 600.0, 100_000.0)  # step durations the main track must not depend on
WEEK = 7


@dataclass(frozen=True)
class Page:
    at: float  # seconds from the open
    level: int
    answer: float
    ack: Latency


@dataclass(frozen=True)
class DrillPlan:
    pages: tuple[Page, ...]
    steps: tuple[Latency, ...]  # the main track walked after the acknowledgement, in order
    mitigated_after: int | None  # steps done when the incident counts as mitigated (None: only by resolving)
    rises: tuple[float, ...]  # seconds from the open of each severity rise still unmitigated then, ascending
    targets: tuple[dict, ...]  # target -> seconds, before any rise, after the first, ...
    unanswered_targets: tuple[str, ...]  # the targets a run nobody answers misses (all of them)


class Unmodelled(Exception):
    """The plan cannot stand for this drill's runs; the message says why."""


def compile_plan(catalog, drill: Drill) -> tuple[DrillPlan | None, str]:
    """The drill's plan, or None and what the plan does not model."""
    engine = Engine(MemoryStore(), VirtualClock(START), SimulatedPlugins(), catalog)
    try:
        ladders = [_pages(engine, drill, START + timedelta(days=day)) for day in range(WEEK)]
        if any(ladder != ladders[0] for ladder in ladders):
            raise Unmodelled("who is paged when depends on the day the run starts")
        pages, final_severity = ladders[0]
        walks = [_walk(engine, drill, seconds) for seconds in PROBE_DURATIONS]
        if any(walk[:2] != walks[0][:2] for walk in walks):
            raise Unmodelled("the main track's path depends on how long its steps take")
        steps, mitigated_after, severity, severities = walks[0]
    except Unmodelled as exc:
        return None, str(exc)
    profiles = drill.responders.levels
    plan_pages = tuple(Page(at, level, profiles[min(level, len(profiles)) - 1].answer,
                            profiles[min(level, len(profiles)) - 1].ack) for at, level in pages)
    rises, chain = _rises(severities, severity)
    targets = tuple(dict(drill.targets) or severities.targets(sev) for sev in chain)
    unanswered = tuple(dict(drill.targets) or severities.targets(final_severity))
    return DrillPlan(plan_pages, steps, mitigated_after, rises, targets, unanswered), ""


def _open(engine: Engine, drill: Drill, start):
    engine.clock.set(start)
    return engine.open(drill.playbook, "simulation", symptom=drill.symptom, severity=drill.severity, drill=True).id


def _pages(engine: Engine, drill: Drill, start) -> tuple[tuple[tuple[float, int], ...], str]:
    """(seconds from the open, level) of every page while nobody answers, as simulate_run pages
    them, and the severity the incident ends with."""
    iid = _open(engine, drill, start)
    pages = []
    for _ in range(MAX_PAGES + 1):
        nxt = timers.next_escalation(engine.state(iid))
        if nxt is None:
            break
        engine.clock.set(max(nxt.at, engine.clock.now()))
        engine.tick(iid)
        pages.append(((nxt.at - start).total_seconds(), nxt.data["level"]))
    else:
        raise Unmodelled(f"the ladder pages more than {MAX_PAGES} times")
    severity = engine.state(iid).severity
    engine.discard(iid)
    return tuple(pages), severity


class _Severities:
    """The incident's snapshot of severities: rank and response targets of each."""

    def __init__(self, snapshot, symptom):
        self.snapshot = snapshot
        self.rises_of_symptom = symptom.severity_rises if symptom else ()

    def rank(self, severity: str) -> int:
        return self.snapshot.rank(severity)

    def targets(self, severity: str) -> dict:
        level = self.snapshot.level(severity)
        return {name: level.targets[name] for name in timers.TARGETS if level and level.targets
                and name in level.targets}


def _walk(engine: Engine, drill: Drill, seconds: float):
    """Acknowledge at once and walk the main track as simulate._walk does, every step taking
    `seconds`: the steps' latencies in order, the number done when mitigated, the severity at the
    open and the severities."""
    profile = drill.responders
    iid = _open(engine, drill, engine.clock.now() + timedelta(days=WEEK))
    engine.tick(iid)
    engine.acknowledge(iid, "level-1")
    opened = engine.state(iid)
    symptom = next((s for s in opened.playbook.symptoms if s.id == opened.symptom), None)
    severities, severity = _Severities(opened.snapshot, symptom), opened.severity
    steps, mitigated_after = [], None
    for _ in range(MAX_STEPS):
        state = engine.state(iid)
        step_id = state.current.get("main")
        if step_id is None:
            break
        step = state.playbook.step(step_id)
        _check(step, state.playbook, profile)
        engine.clock.advance(seconds)
        engine.tick(iid)
        state = engine.state(iid)
        if state.current.get("main") != step_id:
            raise Unmodelled(f"a timer moves step {step.id} on")
        if step.approval and not approvals.approved(state, step):
            engine.approve(iid, step.approval.by, step.id)
        take_role(engine, iid, state, step)
        if step.kind in ("decision", "choose"):
            engine.choose(iid, "simulation", str(profile.choices.get(step.id, 1)), step.id)
        else:
            engine.complete(iid, "simulation", step.id, value=answer(state, step))
        steps.append(profile.steps.get(step.id) or profile.steps.get("default") or DEFAULT_STEP)
        if mitigated_after is None and engine.state(iid).mitigated_at is not None:
            mitigated_after = len(steps)
    engine.resolve(iid, "simulation")
    engine.discard(iid)
    return tuple(steps), mitigated_after, severity, severities


def _check(step, playbook, profile) -> None:
    """Refuse a step whose outcome or timing the plan does not model."""
    if step.kind in ("wait", "handoff", "include"):
        raise Unmodelled(f"step {step.id} is a {step.kind} step")
    if step.automated:
        raise Unmodelled(f"step {step.id} runs a command or a check")
    if step.retry is not None or step.wait_for is not None:
        raise Unmodelled(f"step {step.id} retries or waits for a signal")
    degradation = step.degradation if step.kind == "degrade" else None  # a restore is immediate
    if step.kind in ("decision", "choose") and step.options:
        choice = str(profile.choices.get(step.id, 1))
        chosen = step.options[int(choice) - 1] if choice.isdigit() and 0 < int(choice) <= len(step.options) else None
        degradation = chosen.degradation if chosen else None
    if degradation and playbook.degradations[degradation].rollout is not None:
        raise Unmodelled(f"step {step.id} applies the staged degradation {degradation}")


def _rises(severities: _Severities, severity: str) -> tuple[tuple[float, ...], list[str]]:
    """When the severity rises if the incident is still unmitigated (the alert fires all along in
    a simulation, so a rise falls due `after` from the open), and the severities in turn."""
    rises, chain = [], [severity]
    for after, to in sorted(severities.rises_of_symptom, key=lambda rise: rise[0]):
        if severities.rank(to) < severities.rank(chain[-1]):
            rises.append(float(after))
            chain.append(to)
    return tuple(rises), chain
