"""Drills: injects on time, simulated responders against numbers with a known answer, determinism,
stored summaries, and a drill in the TUI."""

from __future__ import annotations

import asyncio
import io
import json
import math
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.drills.simulate import simulate
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

HERE = Path(__file__).parent

PLAYBOOK = """\
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

DRILL = """\
apiVersion: runbook/v1
kind: Drill
id: known
title: A drill with a known answer
playbook: tiny
targets: {{acknowledge: 5m}}
injects:
  - {{at: 1m, message: "Grafana: error rate 40%"}}
  - {{at: 3m, message: "Support: customers complain"}}
responders:
  levels:
    - answer: {p1}
      ack: {{distribution: exponential, mean: 2m}}
    - answer: {p2}
      ack: {{distribution: fixed, mean: 1m}}
  steps:
    default: {{distribution: fixed, mean: 4m}}
"""


def catalog(tmp_path, p1=1.0, p2=0.0):
    (tmp_path / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tmp_path / "tiny.yaml").write_text(PLAYBOOK)
    (tmp_path / "drill.yaml").write_text(DRILL.format(p1=p1, p2=p2))
    return load([str(tmp_path)])


def test_simulated_acknowledgement_matches_the_exponential_formula(tmp_path):
    cat = catalog(tmp_path)
    summary = simulate(cat, cat.models("Drill")["known"], runs=2000, seed=11)
    assert summary["answered_by"] == {"L1": 1.0}
    assert abs(summary["tta"]["mean"] - 120) < 9  # mean of the exponential; 4 standard errors
    expected_miss = math.exp(-300 / 120)  # P(latency > 5m target) = 0.082
    assert abs(summary["breach_probability"]["acknowledge"] - expected_miss) < 0.025
    assert summary["tta"]["median"] == pytest.approx(120 * math.log(2), rel=0.1)
    # one 4-minute step after the acknowledgement, then resolved
    assert summary["ttr"]["mean"] == pytest.approx(summary["tta"]["mean"] + 240, abs=0.01)


def test_when_level_one_never_answers_level_two_does_after_the_delay(tmp_path):
    cat = catalog(tmp_path, p1=0.0, p2=1.0)
    summary = simulate(cat, cat.models("Drill")["known"], runs=50, seed=1)
    assert summary["answered_by"] == {"L2": 1.0}
    assert summary["tta"]["median"] == summary["tta"]["max"] == 360  # paged at 5m, answers 1m later
    assert summary["breach_probability"]["acknowledge"] == 1.0


def test_nobody_answering_counts_as_a_miss(tmp_path):
    cat = catalog(tmp_path, p1=0.0, p2=0.0)
    summary = simulate(cat, cat.models("Drill")["known"], runs=20, seed=1)
    assert summary["answered_by"] == {"nobody": 1.0}
    assert summary["tta"]["n"] == 0 and summary["breach_probability"]["acknowledge"] == 1.0


def test_same_seed_same_summary(tmp_path):
    cat = catalog(tmp_path, p1=0.6, p2=0.8)
    drill = cat.models("Drill")["known"]
    assert simulate(cat, drill, 100, seed=5) == simulate(cat, drill, 100, seed=5)
    assert simulate(cat, drill, 100, seed=5) != simulate(cat, drill, 100, seed=6)


def test_cli_stores_the_summary_not_the_events(rb):
    summary = json.loads(rb("drill", "run", "surprise-ack", "--auto", "--runs", "40", "--seed", "2", "--json"))
    assert summary["runs"] == 40 and set(summary["answered_by"]) <= {"L1", "L2", "L3", "nobody"}
    with Store(str(rb.db)) as store:
        assert [row["summary"]["tta"] for row in store.simulations("surprise-ack")] == [summary["tta"]]
        assert store.incidents() == []  # simulated incidents are never written
    assert "surprise-ack: 40 runs, seed 2" in rb("drill", "history")


def test_unknown_drill_suggests(rb):
    assert "did you mean 'surprise-ack'?" in rb("drill", "run", "surprise-ak", "--auto", expect=3)


def make_engine(tmp_path, cat):
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    return Engine(Store(str(tmp_path / "db.sqlite")), VirtualClock(), host, cat)


def test_injects_fire_on_time_and_drill_targets_apply(tmp_path):
    engine = make_engine(tmp_path, catalog(tmp_path))
    state = engine.open("tiny", "ana", drill=True, rehearse="known")
    assert state.drill and state.sandboxed
    engine.clock.advance(seconds=59)
    assert "drill_inject" not in [e.type for e in engine.tick(state.id)]
    engine.clock.advance(seconds=150)
    injects = [e for e in engine.tick(state.id) if e.type == "drill_inject"]
    assert [(e.data["n"], e.data["message"]) for e in injects] == [(1, "Grafana: error rate 40%"),
                                                                  (2, "Support: customers complain")]
    from runbook.engine.timers import deadlines
    deadline, _ = deadlines(engine.state(state.id))["acknowledge"]
    assert (deadline - engine.state(state.id).opened_at).total_seconds() == 300  # the drill's own target
    engine.store.close()


def test_a_drill_in_the_tui_shows_the_banner_and_its_injects(tmp_path):
    from runbook.tui.app import build_app

    engine = make_engine(tmp_path, catalog(tmp_path))
    iid = engine.open("tiny", "ana", drill=True, rehearse="known").id
    app = build_app(EngineService(engine), engine.catalog, "ana", iid, live=False)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(3):
                await pilot.pause()
                await app.workers.wait_for_complete()
            engine.clock.advance(minutes=2)
            app.screen.tick()
            for _ in range(5):
                await pilot.pause()
                await app.workers.wait_for_complete()
            header = str(app.screen.query_one("#incident-header").render())
            return header, [n.message for n in app._notifications]
    header, notes = asyncio.run(scenario())
    assert "DRILL" in header
    assert "inject: Grafana: error rate 40%" in notes
    engine.store.close()


def test_report_figures_match_hand_computed_fixtures(tmp_path):
    from runbook.drills.report import build

    engine = make_engine(tmp_path, catalog(tmp_path))
    clock = engine.clock
    # three real incidents on SEV2 (ack 10m, mitigate 1h, resolve 4h), acknowledged after 2, 4 and 12 minutes
    for ack_after, fix_after in ((120, 600), (240, 1200), (720, 5400)):
        iid = engine.open("tiny", "ana").id
        clock.advance(seconds=ack_after)
        engine.acknowledge(iid, "ana")
        clock.advance(seconds=fix_after)
        engine.complete(iid, "ana")  # the fix step mitigates
        engine.resolve(iid, "ana")
        clock.advance(hours=1)
    drill = engine.open("tiny", "ana", drill=True, rehearse="known").id  # kept apart by default
    clock.advance(seconds=30)
    engine.acknowledge(drill, "ana")
    report = build(engine)
    assert report.incidents == 3
    tta = report.metrics["TTA"]
    assert [tta[k] for k in ("n", "median", "p90", "max", "target", "breaches")] == [3, 240, 720, 720, 600, 1]
    ttm = report.metrics["TTM"]
    assert (ttm["median"], ttm["max"], ttm["breaches"]) == (1440, 6120, 1)  # 720 + 5400 > 1h
    assert report.steps["fix"] == {"title": "Fix it", "n": 3, "median": 1440, "p90": 6120, "max": 6120}
    assert [row["flagged"] for row in report.trend] == [[], [], ["TTA +20% of target", "TTM +70% of target"]]
    with_drills = build(engine, include_drills=True)
    assert with_drills.incidents == 4
    only_drill = build(engine, drill="known")
    assert only_drill.incidents == 1 and only_drill.metrics["TTA"]["median"] == 30
    engine.store.close()


def test_report_cli_formats(rb):
    iid = rb("incident", "open", "gifts-feature-failing", "--as", "ana").strip()
    rb("incident", "ack", iid, "--as", "ana")
    table = rb("report")
    assert "Response times over 1 incident(s)" in table and "TTA" in table
    csv_out = rb("report", "--format", "csv").splitlines()
    assert csv_out[0].startswith("incident,opened_at,playbook") and csv_out[1].startswith(iid)
    md = rb("report", "--format", "md")
    assert md.startswith("# Response times: 1 incident(s)") and "| metric | n | median |" in md
    data = json.loads(rb("report", "--format", "json", "--playbook", "nope"))
    assert data["incidents"] == 0
    rb("report", "--since", "yesterday", expect=2)


def text_of(widget) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def test_a_drill_ends_in_a_debrief_that_saves_action_items(tmp_path):
    from runbook.engine.metrics import export_markdown
    from runbook.tui.app import build_app
    from runbook.tui.screens.debrief import DebriefScreen

    engine = make_engine(tmp_path, catalog(tmp_path))
    iid = engine.open("tiny", "ana", drill=True, rehearse="known").id
    engine.clock.advance(minutes=7)
    engine.acknowledge(iid, "ana")  # 7m against the drill's 5m target
    app = build_app(EngineService(engine), engine.catalog, "ana", iid, live=False)

    async def settle(pilot):
        for _ in range(5):
            await pilot.pause()
            await app.workers.wait_for_complete()

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("d")       # the fix step (mitigates)
            await settle(pilot)
            await pilot.press("x", "y")  # resolve -> debrief
            await settle(pilot)
            assert isinstance(app.screen, DebriefScreen)
            body = text_of(app.screen.query_one("#debrief-body"))
            await pilot.press("i")
            await pilot.press(*"page the secondary sooner")
            await pilot.press("enter")
            await settle(pilot)
            return body, text_of(app.screen.query_one("#debrief-body"))
    before, after = asyncio.run(scenario())
    assert "Time to acknowledge" in before and "BREACHED" in before
    assert "page the secondary sooner" in after
    state = engine.state(iid)
    assert [a.data["text"] for a in state.action_items] == ["page the secondary sooner"]
    assert "| page the secondary sooner |  |  | ana |  |  | open |" in export_markdown(state)
    engine.store.close()


def test_report_screen_charts_tta_and_ttm(tmp_path):
    from runbook.tui.app import build_app
    from runbook.tui.screens.report import ReportScreen

    cat = catalog(tmp_path)
    (tmp_path / "more.yaml").write_text((tmp_path / "drill.yaml").read_text().replace("id: known", "id: weekly")
                                        .replace("targets:", "schedule: {cron: \"0 14 * * WED\", timezone: "
                                                             "Europe/Berlin}\ntargets:"))
    cat = load([str(tmp_path)])
    engine = make_engine(tmp_path, cat)
    for ack in (120, 300, 900):
        iid = engine.open("tiny", "ana").id
        engine.clock.advance(seconds=ack)
        engine.acknowledge(iid, "ana")
        engine.complete(iid, "ana")
        engine.resolve(iid, "ana")
    app = build_app(EngineService(engine), cat, "ana", None, live=False)

    async def scenario():
        async with app.run_test(size=(110, 40)) as pilot:
            for _ in range(5):
                await pilot.pause()
                await app.workers.wait_for_complete()
            drills = text_of(app.screen.query_one("#drills"))
            await pilot.press("tab", "R")  # out of the symptom filter (which has the focus), then the report
            for _ in range(5):
                await pilot.pause()
                await app.workers.wait_for_complete()
            assert isinstance(app.screen, ReportScreen)
            return drills, text_of(app.screen.query_one("#report-body"))
    drills, body = asyncio.run(scenario())
    assert "weekly last never run · next Wed" in drills
    assert "Response times — 3 real incidents" in body
    assert "TTA" in body and "minutes" in body  # the chart's legend and axis
    assert "15m" in body  # the slowest acknowledgement, in the table
    engine.store.close()


def test_results_do_not_depend_on_the_number_of_processes(tmp_path):
    cat = catalog(tmp_path, p1=0.6, p2=0.8)
    drill = cat.models("Drill")["known"]
    assert simulate(cat, drill, 60, seed=9, processes=1) == simulate(cat, drill, 60, seed=9, processes=2)


def test_a_resolved_incident_reports_the_same_later(tmp_path):
    from runbook.drills.report import build

    engine = make_engine(tmp_path, catalog(tmp_path))
    iid = engine.open("tiny", "ana").id
    engine.clock.advance(seconds=30)
    engine.resolve(iid, "ana")  # never acknowledged, resolved within every target
    now = build(engine).metrics["TTA"]["breaches"]
    engine.clock.advance(hours=5)
    assert build(engine).metrics["TTA"]["breaches"] == now == 0
    engine.store.close()


def test_simulating_a_severity_that_never_pages_is_refused(tmp_path):
    from runbook.errors import UsageError

    cat = catalog(tmp_path)
    (tmp_path / "quiet.yaml").write_text(DRILL.format(p1=1.0, p2=1.0).replace("id: known", "id: quiet")
                                         .replace("playbook: tiny", "playbook: tiny\nseverity: SEV4"))
    cat = load([str(tmp_path)])
    with pytest.raises(UsageError, match="SEV4 does not page anyone"):
        simulate(cat, cat.models("Drill")["quiet"], 10, seed=1)


def test_the_median_of_reports_is_statistics_median():
    import random
    import statistics

    from runbook.drills.report import median

    rng = random.Random(7)
    for n in range(1, 60):
        values = [rng.uniform(0, 900) for _ in range(n)]
        assert median(values) == statistics.median(values)
        assert median([int(v) for v in values]) == statistics.median([int(v) for v in values])
