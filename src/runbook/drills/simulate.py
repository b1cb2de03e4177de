"""Simulated drills: responders drawn from a Drill's profiles drive the real engine on a virtual clock.

Each run opens an incident in a `MemoryStore`, lets the escalation timers page level after
level, has the paged levels answer (or not) after sampled latencies, walks the main track
with sampled step durations, and resolves. Only the metrics of each run are kept; the summary
(n, median, p90, max of TTA/TTM/TTR, the probability of breaching each target, and which level
answered) is what gets stored. The same seed gives the same summary.

That is the exact path (`--exact`). By default a drill is compiled once into a plan
(plan.py) and its runs are drawn at once (plan_runs.py), to the same summary in distribution;
drills on features the plan does not model, and runs too few to pay for compiling it, go
through the engine, and the summary says which path it took and why.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runbook.catalog.drill import Drill, Latency
from runbook.drills.report import summarize
from runbook.drills.simulated import DEFAULT_STEP, MAX_STEPS, START, Z90, SimulatedPlugins, answer, take_role
from runbook.engine import Engine, VirtualClock, approvals, timers
from runbook.engine.metrics import metrics
from runbook.errors import UsageError
from runbook.store import MemoryStore

PLAN_FROM = 100  # fewer runs go through the engine: quicker than compiling a plan and importing NumPy


def sample(latency: Latency, rng: random.Random) -> float:
    """Seconds drawn from a latency distribution."""
    d = latency.distribution
    if d == "fixed":
        return latency.mean
    if d == "exponential":
        return rng.expovariate(1.0 / latency.mean)
    if d == "uniform":
        return rng.uniform(latency.low, latency.high)
    mu = math.log(latency.median)
    sigma = (math.log(latency.p90) - mu) / Z90
    return rng.lognormvariate(mu, sigma)


@dataclass
class RunResult:
    tta: float | None
    ttm: float | None
    ttr: float | None
    answered_by: int | None
    breaches: dict = field(default_factory=dict)


def simulate_run(engine: Engine, drill: Drill, rng: random.Random, start: datetime) -> RunResult:
    clock: VirtualClock = engine.clock
    clock.set(start)
    state = engine.open(drill.playbook, "simulation", symptom=drill.symptom, severity=drill.severity, drill=True)
    iid = state.id
    profiles = drill.responders.levels
    answers: list[tuple[datetime, int]] = []
    answered_by = None
    for _ in range(1000):
        nxt = timers.next_escalation(engine.state(iid))
        first_answer = min(answers) if answers else None
        if first_answer and (nxt is None or first_answer[0] <= nxt.at):
            clock.set(first_answer[0])
            engine.tick(iid)
            engine.acknowledge(iid, f"level-{first_answer[1]}")
            answered_by = first_answer[1]
            break
        if nxt is None:
            break  # the ladder is exhausted and nobody answered
        clock.set(max(nxt.at, clock.now()))
        engine.tick(iid)
        level = nxt.data["level"]
        profile = profiles[min(level, len(profiles)) - 1] if profiles else None
        if profile is not None and rng.random() < profile.answer:
            answers.append((nxt.at + timedelta(seconds=sample(profile.ack, rng)), level))
    if answered_by is not None:
        _walk(engine, iid, drill, rng)
    state = engine.state(iid)
    m = metrics(state, clock.now())
    targets = dict(drill.targets) or {name: info["target"] for name, info in m.targets.items()}
    actual = m.reached()
    breaches = {name: actual[name] is None or actual[name] > limit for name, limit in targets.items()}
    engine.discard(iid)
    return RunResult(m.tta, m.ttm, m.ttr, answered_by, breaches)


def _walk(engine: Engine, iid: str, drill: Drill, rng: random.Random) -> None:
    """Walk the main track to its end with sampled step durations, then resolve."""
    profile = drill.responders
    clock = engine.clock
    for _ in range(MAX_STEPS):
        state = engine.state(iid)
        step_id = state.current.get("main")
        if step_id is None:
            break
        step = state.playbook.step(step_id)
        latency = profile.steps.get(step.id) or profile.steps.get("default") or DEFAULT_STEP
        clock.advance(sample(latency, rng))
        engine.tick(iid)
        state = engine.state(iid)
        if state.current.get("main") != step_id:
            continue  # a timer moved it on (a wait that held, or timed out)
        if step.approval and not approvals.approved(state, step):
            engine.approve(iid, step.approval.by, step.id)
        take_role(engine, iid, state, step)
        if step.kind in ("decision", "choose"):
            engine.choose(iid, "simulation", str(profile.choices.get(step.id, 1)), step.id)
        else:
            engine.complete(iid, "simulation", step.id, value=answer(state, step))
    if not engine.state(iid).resolved:  # a handoff step resolves its incident itself
        engine.resolve(iid, "simulation")


def _stats(values: list[float]) -> dict:
    summary = summarize(values)
    summary["mean"] = math.fsum(values) / len(values) if values else None  # statistics.fmean
    return summary


def _run_range(catalog, drill: Drill, seed: int, first: int, count: int, progress=None) -> list[RunResult]:
    """Runs first..first+count-1; run n draws from its own generator seeded by (seed, n), so the
    results do not depend on how runs are split between processes."""
    engine = Engine(MemoryStore(), VirtualClock(START), SimulatedPlugins(), catalog)
    results = []
    for n in range(first, first + count):
        rng = random.Random(f"{seed}:{n}")
        results.append(simulate_run(engine, drill, rng, START + timedelta(days=n)))
        if progress:
            progress(1)
    return results


def _worker(args):
    catalog, drill, seed, first, count = args
    return _run_range(catalog, drill, seed, first, count)


def _fork_context():
    """multiprocessing's fork context, or None where processes cannot fork. Imported only for
    big runs: the import is a tenth of a short run's start-up."""
    import multiprocessing

    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def simulate(catalog, drill: Drill, runs: int, seed: int, progress=None, processes: int | None = None,
             exact: bool = False) -> dict:
    """Simulate `runs` drills; the summary a report shows and the store keeps, with the path
    taken (`method`: "plan" or "engine", and `engine_because` when the plan was not used).
    The same seed gives the same summary on either path, whatever the number of processes."""
    refuse_unsimulable(catalog, drill)
    why = "--exact" if exact else f"fewer than {PLAN_FROM} runs" if runs < PLAN_FROM else None
    if why is None:
        from runbook.drills.plan import compile_plan

        plan, why = compile_plan(catalog, drill)
        if plan is not None:
            from runbook.drills import plan_runs

            summary = plan_runs.summary(drill, runs, seed, plan_runs.sample(plan, runs, seed, progress))
            return {**summary, "method": "plan"}
    summary = _engine_summary(drill, runs, seed, engine_runs(catalog, drill, runs, seed, progress, processes))
    return {**summary, "method": "engine", "engine_because": why}


def refuse_unsimulable(catalog, drill: Drill) -> None:
    """A drill without responder profiles, or on a severity that pages nobody, has nothing to simulate."""
    if not drill.responders.levels:
        raise UsageError(f"drill {drill.id} has no responders.levels to simulate; add responder profiles")
    playbook = catalog.models("Playbook").get(drill.playbook)
    severity = drill.severity or (playbook.severity if playbook else None)
    level = catalog.severity_level(severity)
    if level is not None and not level.pages:
        raise UsageError(f"{severity} does not page anyone, so there is no answer to simulate; give the drill "
                         "a paging severity (severity: SEV2)")


def engine_runs(catalog, drill: Drill, runs: int, seed: int, progress=None,
                processes: int | None = None) -> list[RunResult]:
    """Every run through the engine (on every core for large counts), in run order."""
    import os

    processes = processes or (min(os.cpu_count() or 1, 8) if runs >= 2000 else 1)
    forking = _fork_context() if processes > 1 else None
    if forking is not None:
        chunk = math.ceil(runs / processes)
        jobs = [(catalog, drill, seed, start, min(chunk, runs - start)) for start in range(0, runs, chunk)]
        with forking.Pool(len(jobs)) as pool:
            results = []
            for part in pool.imap(_worker, jobs):
                results += part
                if progress:
                    progress(len(part))
    else:
        results = _run_range(catalog, drill, seed, 0, runs, progress)
    return results


def _engine_summary(drill: Drill, runs: int, seed: int, results: list[RunResult]) -> dict:
    levels: dict[str, int] = {}
    for r in results:
        key = f"L{r.answered_by}" if r.answered_by else "nobody"
        levels[key] = levels.get(key, 0) + 1
    target_names = sorted({name for r in results for name in r.breaches})
    return {
        "drill": drill.id, "playbook": drill.playbook, "runs": runs, "seed": seed,
        "tta": _stats([r.tta for r in results if r.tta is not None]),
        "ttm": _stats([r.ttm for r in results if r.ttm is not None]),
        "ttr": _stats([r.ttr for r in results if r.ttr is not None]),
        "breach_probability": {name: sum(r.breaches.get(name, False) for r in results) / runs
                               for name in target_names},
        "answered_by": {k: v / runs for k, v in sorted(levels.items())},
    }
