"""Drills compiled into plans: runs drawn at once agree in distribution with runs through the
engine, the same seed gives the same summary, and what the plan does not model goes through the
engine, saying so.

Agreement is tested on the raw runs of both paths, 20,000 each, over the same seeds. Every
comparison allows 4.5 standard errors of the difference, from the binomial variance: for a
proportion (a breach probability, a level's share) sqrt(p(1-p)(1/n1 + 1/n2)) with p pooled;
for a quantile q (median, p90) the fraction of engine runs below the plan's quantile must be q
within sqrt(q(1-q)(1/n1 + 1/n2)) (distribution-free: the plan's sample quantile sits at rank
q of its own runs, and each fraction is a binomial proportion); atoms (fixed latencies) are
allowed for by comparing against both the fraction below and the fraction at or below. About 70
comparisons at 4.5 standard errors (two-sided 7e-6 each) fail by chance with probability under
1e-3; one ladder level or one step too many moves a share or a quantile by far more.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from runbook.catalog import load
from runbook.drills import plan_runs
from runbook.drills.plan import compile_plan
from runbook.drills.simulate import PLAN_FROM, engine_runs, simulate

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).parent
RUNS = 20_000
Z = 4.5

TINY = """\
apiVersion: runbook/v1
kind: Playbook
id: tiny
title: Tiny
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
steps:
  - {id: fix, title: Fix it, mitigates: true}
"""

KNOWN = """\
apiVersion: runbook/v1
kind: Drill
id: known
title: The test drill of test_drills, with answers left to chance
playbook: tiny
targets: {acknowledge: 5m}
responders:
  levels:
    - {answer: 0.6, ack: {distribution: exponential, mean: 2m}}
    - {answer: 0.8, ack: {distribution: fixed, mean: 1m}}
  steps:
    default: {distribution: fixed, mean: 4m}
"""

# no targets of its own and slow steps: the severity often rises to SEV1 (after 30m unmitigated),
# switching the ladder before the acknowledgement and the targets after it
SLOW_VIDEO = """\
apiVersion: runbook/v1
kind: Drill
id: slow-video
title: A sleepy night on the video playbook
playbook: video-call-degraded
symptom: video-quality-low
responders:
  levels:
    - {answer: 0.3, ack: {distribution: lognormal, median: 6m, p90: 20m}}
    - {answer: 0.4, ack: {distribution: exponential, mean: 8m}}
  steps:
    default: {distribution: exponential, mean: 5m}
    fix: {distribution: uniform, min: 10m, max: 1h}
  choices: {where: 2}  # several regions: the bitrate cap (rerouting one region runs rtcctl, which no plan models)
"""

WAITING = """\
apiVersion: runbook/v1
kind: Playbook
id: waiting
title: Waiting
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
steps:
  - {id: look, title: Look}
  - {id: settle, kind: wait, title: Let it settle, for: 10m}
  - {id: fix, title: Fix it, mitigates: true}
"""


@pytest.fixture(scope="module")
def drills(tmp_path_factory):
    """The shipped catalog with the shipped drills, and the test drills beside it."""
    directory = tmp_path_factory.mktemp("plans")
    shutil.copytree(ROOT / "playbooks", directory / "playbooks")
    shutil.copytree(ROOT / "drills", directory / "drills")
    tests = directory / "tests"
    tests.mkdir()
    (tests / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tests / "tiny.yaml").write_text(TINY)
    (tests / "known.yaml").write_text(KNOWN)
    (directory / "drills" / "slow-video.yaml").write_text(SLOW_VIDEO)
    return load([str(directory / "playbooks"), str(directory / "drills")]), load([str(tests)])


def shipped() -> list[str]:
    return sorted(path.stem for path in (ROOT / "drills").glob("*.yaml"))


def proportion_agrees(a: float, n_a: int, b: float, n_b: int) -> bool:
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    return abs(a - b) <= Z * math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))


def quantile_agrees(q: float, plan_values: np.ndarray, engine_values: np.ndarray, plan_quantile: float) -> bool:
    n_p, n_e = len(plan_values), len(engine_values)
    tolerance = Z * math.sqrt(q * (1 - q) * (1 / n_p + 1 / n_e))
    below = np.count_nonzero(engine_values < plan_quantile) / n_e
    at_or_below = np.count_nonzero(engine_values <= plan_quantile) / n_e
    return below - tolerance <= q <= at_or_below + tolerance


@pytest.mark.parametrize("drill_id", [*shipped(), "slow-video", "known"])
def test_the_plan_agrees_with_the_engine_in_distribution(drills, drill_id):
    cat = drills[1] if drill_id == "known" else drills[0]
    drill = cat.models("Drill")[drill_id]
    plan, why = compile_plan(cat, drill)
    assert plan is not None, why
    fast = plan_runs.sample(plan, RUNS, seed=3)
    summary = plan_runs.summary(drill, RUNS, 3, fast)
    exact = engine_runs(cat, drill, RUNS, seed=3)
    values = {"tta": [r.tta for r in exact], "ttm": [r.ttm for r in exact], "ttr": [r.ttr for r in exact]}
    problems = []
    for key, column in values.items():
        engine_values = np.array([v for v in column if v is not None])
        plan_values = getattr(fast, key)
        plan_values = plan_values[~np.isnan(plan_values)]
        if not proportion_agrees(len(plan_values) / RUNS, RUNS, len(engine_values) / RUNS, RUNS):
            problems.append(f"{key}: reached in {len(plan_values)} vs {len(engine_values)} runs")
        for q, name in ((0.5, "median"), (0.9, "p90")):
            if len(engine_values) and not quantile_agrees(q, plan_values, engine_values, summary[key][name]):
                problems.append(f"{key} {name}: {summary[key][name]:.0f} s is at "
                                f"{np.mean(engine_values <= summary[key][name]):.3f} of the engine's runs")
    for target in sorted(set(summary["breach_probability"]) | {t for r in exact for t in r.breaches}):
        engine_p = sum(r.breaches.get(target, False) for r in exact) / RUNS
        plan_p = summary["breach_probability"].get(target, 0.0)
        if not proportion_agrees(plan_p, RUNS, engine_p, RUNS):
            problems.append(f"missing {target}: {plan_p:.4f} vs {engine_p:.4f}")
    levels = {f"L{r.answered_by}" if r.answered_by else "nobody" for r in exact} | set(summary["answered_by"])
    for level in sorted(levels):
        engine_share = sum((f"L{r.answered_by}" if r.answered_by else "nobody") == level for r in exact) / RUNS
        plan_share = summary["answered_by"].get(level, 0.0)
        if not proportion_agrees(plan_share, RUNS, engine_share, RUNS):
            problems.append(f"{level} acknowledged: {plan_share:.4f} vs {engine_share:.4f}")
    assert problems == []


def test_the_slow_drill_exercises_rises_of_ladder_and_of_targets(drills):
    cat = drills[0]
    plan, _ = compile_plan(cat, cat.models("Drill")["slow-video"])
    assert plan.rises == (1800.0,)
    assert [t["mitigate"] for t in plan.targets] == [3600, 1800]  # SEV2's, then SEV1's
    assert {page.at for page in plan.pages} >= {0.0, 300.0, 1800.0, 1980.0}  # rtc-critical from the rise


def test_same_seed_same_summary_on_the_plan(drills):
    cat = drills[0]
    drill = cat.models("Drill")["escalation-stress"]
    first = simulate(cat, drill, 70_000, seed=7)  # more than one chunk
    assert first["method"] == "plan" and "engine_because" not in first
    assert simulate(cat, drill, 70_000, seed=7) == first
    assert simulate(cat, drill, 70_000, seed=8) != first
    assert simulate(cat, drill, 500, seed=-7) != simulate(cat, drill, 500, seed=7)


def test_exact_and_few_runs_go_through_the_engine(drills):
    cat = drills[0]
    drill = cat.models("Drill")["surprise-ack"]
    assert simulate(cat, drill, 200, seed=1, exact=True)["engine_because"] == "--exact"
    few = simulate(cat, drill, PLAN_FROM - 1, seed=1)
    assert few["method"] == "engine" and few["engine_because"] == f"fewer than {PLAN_FROM} runs"


def test_a_drill_the_plan_does_not_model_goes_through_the_engine_and_says_so(rb, tmp_path):
    (tmp_path / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tmp_path / "waiting.yaml").write_text(WAITING)
    (tmp_path / "drill.yaml").write_text(KNOWN.replace("id: known", "id: waits").replace("playbook: tiny",
                                                                                         "playbook: waiting"))
    cat = load([str(tmp_path)])
    summary = simulate(cat, cat.models("Drill")["waits"], 200, seed=1)
    assert summary["method"] == "engine" and summary["engine_because"] == "step settle is a wait step"
    rb.cwd, rb.catalogs = tmp_path, [tmp_path]
    proc = rb.run("drill", "run", "waits", "--auto", "--runs", "200", "--json")
    assert "waits: every run goes through the engine: the plan does not model this drill " \
           "(step settle is a wait step)" in proc.stderr
    assert json.loads(proc.stdout)["method"] == "engine"


def test_the_cli_takes_exact_and_prints_the_same_report(rb):
    fast = rb("drill", "run", "escalation-stress", "--auto", "--runs", "2000", "--seed", "7")
    exact = rb("drill", "run", "escalation-stress", "--auto", "--runs", "200", "--seed", "7", "--exact")
    assert "2,000 simulated runs, seed 7" in fast
    assert "200 simulated runs, each through the engine, seed 7" in exact
    for line in ("TTA", "TTM", "TTR", "probability of missing each target:", "  acknowledge", "who acknowledged:"):
        assert line in fast and line in exact
    assert "--exact goes with --auto" in rb("drill", "run", "escalation-stress", "--exact", expect=2)
