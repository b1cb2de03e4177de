"""Staged degradations tell the truth (issue 25): a degrade step with mitigates: true that applies a
staged degradation is done at its first stage, and the incident counts as mitigated only once the
stage its rollout names (mitigates_at, default the last) is reached, by itself or by hand; where
it is, in words; and a stage that does not advance says why and what to do. Through the engine,
the CLI's `show` and the status page, on the shipped video playbook (audio-only: 10 → 50 → 100%)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.flags import video_on
from starlette.testclient import TestClient
from test_stages import Metrics, video_alert
from test_status_page import Tags

from runbook.catalog.loader import load_catalog
from runbook.cli.incident import summary
from runbook.engine import Engine, VirtualClock, stages
from runbook.plugins import PluginHost
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
NO_PROMETHEUS = "no Prometheus address (set RUNBOOK_PROMETHEUS_URL, e.g. http://prometheus:9090)"


def playbooks(tmp_path, mitigates_at=None) -> Path:
    """The shipped playbooks; with `mitigates_at`, audio-only's rollout names that share."""
    if mitigates_at is None:
        return ROOT / "playbooks"
    copy = shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    path = copy / "video-call-degraded.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["degradations"]["audio-only"]["rollout"]["mitigates_at"] = mitigates_at
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


@pytest.fixture
def make(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNBOOK_PROMETHEUS_URL", raising=False)
    flags = video_on(tmp_path)
    stores = []

    def factory(metrics=True, mitigates_at=None):
        store = Store(str(tmp_path / "db.sqlite"), key=None)
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
        catalog = load_catalog([str(playbooks(tmp_path, mitigates_at))])
        assert not catalog.errors
        engine = Engine(store, VirtualClock(), host, catalog)
        engine.metrics_source = Metrics() if metrics else None  # None: the settings' Prometheus, here none
        return engine
    yield factory
    for store in stores:
        store.close()


def to_audio_only(engine, incident: str) -> None:
    """Walk the video playbook to its gated audio-only step and approve it."""
    for _ in range(3):
        engine.complete(incident, "ana")
    engine.choose(incident, "ana", "2")  # several regions: cap the bitrate
    engine.complete(incident, "ana")
    engine.fail(incident, "ana", None, "still frozen")  # verify-bitrate: on to audio-only
    engine.approve(incident, "ana", "audio-only")


def types(events) -> list[str]:
    return [e.type for e in events]


def test_the_step_is_done_at_the_first_stage_and_mitigates_when_the_last_is_reached_by_itself(make):
    engine = make()
    iid = engine.open("video-call-degraded", "ana").id
    to_audio_only(engine, iid)
    done = engine.complete(iid, "ana")
    assert "step_completed" in types(done) and "mitigated" not in types(done)
    [awaited] = [e for e in done if e.type == "mitigation_awaited"]
    assert awaited.record.describe() == ("audio-only is done; the incident counts as mitigated once audio-only "
                                         "reaches stage 3 of 3 (100% of users), not before")
    state = engine.state(iid)
    assert state.status != "mitigated" and state.mitigated_at is None
    assert state.current["main"] == "announce-audio-only"  # the flow goes on
    assert stages.in_words(state, "audio-only") == ("audio-only for about 10% of users, stage 1 of 3; "
                                                    "mitigated at stage 3 (100%)")
    for minutes in (5, 10):  # each stage holds 5m with its checks passing, then the next starts by itself
        engine.clock.advance(minutes=5, seconds=1)
        engine.tick(iid)
        if minutes == 5:
            assert engine.state(iid).degradations["audio-only"].share == 50
            assert engine.state(iid).mitigated_at is None  # half the users still have frozen video
    state = engine.state(iid)
    [mitigated] = [e for e in state.events if e.type == "mitigated"]
    assert mitigated.actor == "runbook"
    assert mitigated.record.describe() == "mitigated (step audio-only: audio-only reached stage 3 of 3, 100% of users)"
    assert state.status == "mitigated" and state.mitigated_at == mitigated.at
    assert stages.in_words(state, "audio-only") == "audio-only for every user, stage 3 of 3"


def test_a_stage_reached_by_hand_mitigates_too_and_only_once(make):
    engine = make()
    iid = engine.open("video-call-degraded", "ana").id
    to_audio_only(engine, iid)
    engine.complete(iid, "ana")
    assert "mitigated" not in types(engine.stage(iid, "ana", "audio-only", "advance"))
    moved = engine.stage(iid, "bo", "audio-only", "advance")
    assert [e.actor for e in moved if e.type == "mitigated"] == ["bo"]
    engine.stage(iid, "bo", "audio-only", "rollback")
    engine.stage(iid, "bo", "audio-only", "advance")
    assert types(engine.state(iid).events).count("mitigated") == 1


def test_the_playbook_names_the_stage_that_mitigates(make):
    engine = make(mitigates_at=50)
    iid = engine.open("video-call-degraded", "ana").id
    to_audio_only(engine, iid)
    assert "mitigation_awaited" in types(engine.complete(iid, "ana"))
    assert "mitigated" in types(engine.stage(iid, "ana", "audio-only", "advance"))
    assert engine.state(iid).status == "mitigated"


def test_mitigates_at_the_first_stage_mitigates_at_once(make):
    engine = make(mitigates_at=10)
    iid = engine.open("video-call-degraded", "ana").id
    to_audio_only(engine, iid)
    done = engine.complete(iid, "ana")
    assert "mitigated" in types(done) and "mitigation_awaited" not in types(done)


def test_a_step_done_on_a_degradation_applied_by_itself_waits_for_the_stage_too(make):
    engine = make()
    (opened,) = engine.receive_alerts([video_alert("mm01", "critical")])  # SEV1: audio-only at 10% by itself
    iid = opened.incident
    to_audio_only(engine, iid)
    done = engine.complete(iid, "ana")  # already applied: nothing flips, the step is done
    assert "degradation_started" not in types(done)
    assert "mitigation_awaited" in types(done) and engine.state(iid).mitigated_at is None


def test_lint_refuses_a_mitigates_at_that_is_no_stage(tmp_path):
    catalog = load_catalog([str(playbooks(tmp_path, mitigates_at=40))])
    problems = [p for p in catalog.errors if "mitigates_at" in p.path]
    expected = "mitigates_at: 40% is not the share of a stage; the stages are 10%, 50%, 100%"
    assert [p.message for p in problems] == [expected]


def test_a_stage_that_cannot_advance_says_why_and_what_to_do(make):
    engine = make(metrics=False)  # no RUNBOOK_PROMETHEUS_URL: the check cannot be evaluated
    iid = engine.open("video-call-degraded", "ana").id
    engine.degrade(iid, "ana", "audio-only")
    engine.clock.advance(minutes=6)  # the hold is over; the checks ran and could not be read
    engine.tick(iid)
    state = engine.state(iid)
    assert state.degradations["audio-only"].stage == 0
    why = f"check call-drops cannot be evaluated: {NO_PROMETHEUS}"
    assert stages.held_why(state, "audio-only") == why
    now = engine.clock.now()
    assert f"HELD: {why}" in stages.describe(state, "audio-only", now)
    assert stages.compact(state, "audio-only", now).startswith("10% HELD: call-drops cannot be evaluated")
    assert "in 0s" not in stages.compact(state, "audio-only", now)  # it used to count "10% → 50% in 0s"
    shown = summary(state, now)
    assert "    audio-only for about 10% of users, stage 1 of 3" in shown
    assert (f"      held: {why}; `runbook incident stage {iid} audio-only advance` advances it by hand") in shown

    engine.stage(iid, "ana", "audio-only", "hold", reason="watching support tickets")
    state = engine.state(iid)
    assert stages.held_why(state, "audio-only") == "held by ana: watching support tickets"
    assert (f"      held: held by ana: watching support tickets; `runbook incident stage {iid} audio-only "
            "resume` lets it go") in summary(state, engine.clock.now())


def test_the_status_page_says_it_in_words_and_why_it_holds(make):
    engine = make(metrics=False)
    iid = engine.open("video-call-degraded", "ana").id
    engine.degrade(iid, "ana", "audio-only")
    engine.clock.advance(minutes=6)
    engine.tick(iid)
    view = "v1ewer-token-for-the-status-page"
    app = build_app(EngineService(engine), ServeConfig("intake-token-for-the-test", tick_every=0, view_token=view))
    with TestClient(app, follow_redirects=False) as client:
        assert client.get(f"/?token={view}").status_code == 303
        home, page = client.get("/").text, client.get(f"/incidents/{iid}").text
    for text in (Tags.text_of(home), Tags.text_of(page)):
        flat = " ".join(text.split())
        assert "audio-only for about 10% of users, stage 1 of 3" in flat
        assert (f"HELD: check call-drops cannot be evaluated: {NO_PROMETHEUS}; runbook incident stage {iid} "
                "audio-only advance (or S in the TUI) advances it by hand") in flat


def test_the_cli_says_when_it_counts_as_mitigated_and_why_a_stage_holds(tmp_path, fixture_env):
    env = {**fixture_env, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_USER": "ana"}

    def rb(*args):
        proc = subprocess.run([sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "incident",
                               *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        return proc.stdout

    iid = rb("open", "video-call-degraded").strip()
    for _ in range(3):
        rb("step", iid, "--done")
    rb("choose", iid, "2")
    rb("step", iid, "--done")
    rb("step", iid, "--fail", "--outcome", "still frozen")
    rb("approve", iid, "audio-only")
    out = rb("step", iid, "audio-only", "--done")
    assert ("audio-only is done; the incident counts as mitigated once audio-only reaches stage 3 of 3 "
            "(100% of users), not before") in out
    assert "mitigated (step" not in out
    rb("stage", iid, "audio-only", "hold", "--reason", "watching support tickets")
    shown = rb("show", iid)
    assert "· open ·" in shown  # not mitigated
    assert "    audio-only for about 10% of users, stage 1 of 3; mitigated at stage 3 (100%)" in shown
    assert (f"      held: held by ana: watching support tickets; `runbook incident stage {iid} audio-only resume` "
            "lets it go") in shown
    rb("stage", iid, "audio-only", "advance")
    out = rb("stage", iid, "audio-only", "advance")
    assert "mitigated (step audio-only: audio-only reached stage 3 of 3, 100% of users)" in out
    assert "· mitigated ·" in rb("show", iid)
