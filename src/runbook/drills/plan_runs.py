"""Many simulated runs of a DrillPlan drawn at once with NumPy, summarised as runs through the
engine are (simulate.py): n, median, p90, max and mean of TTA/TTM/TTR, the probability of
missing each target, and which level acknowledged.

Runs are drawn in chunks; chunk i has its own generator seeded by (i, seed), so the same seed
gives the same summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runbook.catalog.drill import Drill, Latency
from runbook.drills.plan import DrillPlan
from runbook.drills.simulated import Z90

CHUNK = 65_536


@dataclass
class Outcomes:
    """One entry per run; NaN where a time was never reached."""

    tta: np.ndarray
    ttm: np.ndarray
    ttr: np.ndarray
    answered_by: np.ndarray  # the level that acknowledged, 0 for nobody
    breaches: dict  # target -> bool array


def draw(latency: Latency, rng: np.random.Generator, n: int) -> np.ndarray:
    """n durations in seconds from a latency distribution (as simulate.sample draws one)."""
    d = latency.distribution
    if d == "fixed":
        return np.full(n, float(latency.mean))
    if d == "exponential":
        return rng.exponential(latency.mean, n)
    if d == "uniform":
        return rng.uniform(latency.low, latency.high, n)
    mu = math.log(latency.median)
    return rng.lognormal(mu, (math.log(latency.p90) - mu) / Z90, n)


def sample(plan: DrillPlan, runs: int, seed: int, progress=None) -> Outcomes:
    parts = []
    for index, first in enumerate(range(0, runs, CHUNK)):
        count = min(CHUNK, runs - first)
        parts.append(_chunk(plan, count, np.random.default_rng([index, int(seed < 0), abs(seed)])))
        if progress:
            progress(count)
    names = sorted({name for part in parts for name in part.breaches})
    return Outcomes(*(np.concatenate([getattr(part, key) for part in parts]) for key in ("tta", "ttm", "ttr",
                                                                                          "answered_by")),
                    {name: np.concatenate([part.breaches.get(name, np.zeros(len(part.tta), bool)) for part in parts])
                     for name in names})


def _chunk(plan: DrillPlan, n: int, rng: np.random.Generator) -> Outcomes:
    at = np.array([page.at for page in plan.pages])
    answers = np.full((n, len(plan.pages)), np.inf)
    for k, page in enumerate(plan.pages):
        answered = rng.random(n) < page.answer
        answers[:, k] = np.where(answered, page.at + draw(page.ack, rng, n), np.inf)
    if len(plan.pages) > 1:
        # a page goes out only while every earlier answer is still to come (one at that very moment wins)
        earlier = np.minimum.accumulate(answers, axis=1)[:, :-1]
        answers[:, 1:] = np.where(earlier > at[1:], answers[:, 1:], np.inf)
    first = answers.min(axis=1) if plan.pages else np.full(n, np.inf)
    answered = np.isfinite(first)
    levels = np.array([page.level for page in plan.pages], dtype=np.int64)
    # simultaneous answers: the lowest level acknowledges, as the engine path orders (time, level)
    by = np.where(answers == first[:, None], levels, np.iinfo(np.int64).max).min(axis=1) if plan.pages \
        else np.zeros(n, np.int64)
    tta = np.where(answered, first, np.nan)
    done = np.cumsum(np.column_stack([draw(latency, rng, n) for latency in plan.steps]), axis=1) if plan.steps \
        else np.zeros((n, 1))
    ttr = tta + done[:, -1]
    m = plan.mitigated_after
    ttm = np.full(n, np.nan) if m is None else tta if m == 0 else tta + done[:, m - 1]
    mitigated = ttr if m is None else ttm
    # the targets in force: those of the severity after every rise that came before mitigation
    rises = np.searchsorted(np.array(plan.rises), np.where(answered, mitigated, 0.0), side="right")
    reached = {"acknowledge": tta, "mitigate": mitigated, "resolve": ttr}
    breaches = {}
    for name in sorted({name for targets in plan.targets for name in targets} | set(plan.unanswered_targets)):
        limits = np.array([targets.get(name, np.nan) for targets in plan.targets])[rises]
        missed = name in plan.unanswered_targets
        if not (answered & ~np.isnan(limits)).any() and not (missed and (~answered).any()):
            continue  # no run had this target
        with np.errstate(invalid="ignore"):
            breaches[name] = np.where(answered, reached[name] > limits, missed)
    return Outcomes(tta, ttm, ttr, np.where(answered, by, 0), breaches)


def _stats(values: np.ndarray) -> dict:
    """As simulate._stats: n, median, p90 (the ceil(0.9 n)-th value), max and mean."""
    ordered = np.sort(values[~np.isnan(values)])
    n = len(ordered)
    if not n:
        return {"n": 0, "median": None, "p90": None, "max": None, "mean": None}
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"n": n, "median": float(median), "p90": float(ordered[min(n - 1, math.ceil(0.9 * n) - 1)]),
            "max": float(ordered[-1]), "mean": float(ordered.mean())}


def summary(drill: Drill, runs: int, seed: int, outcomes: Outcomes) -> dict:
    levels, counts = np.unique(outcomes.answered_by, return_counts=True)
    answered_by = {f"L{level}" if level else "nobody": int(count) / runs for level, count in zip(levels, counts)}
    return {
        "drill": drill.id, "playbook": drill.playbook, "runs": runs, "seed": seed,
        "tta": _stats(outcomes.tta), "ttm": _stats(outcomes.ttm), "ttr": _stats(outcomes.ttr),
        "breach_probability": {name: int(missed.sum()) / runs for name, missed in outcomes.breaches.items()},
        "answered_by": dict(sorted(answered_by.items())),
    }
