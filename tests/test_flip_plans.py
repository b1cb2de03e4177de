"""One plan for saying and doing (issue 25): a flip is planned once (engine/flips.py), every face
states the plan's lines, and the engine writes that plan. Through the engine, then the CLI, on the
shipped video playbook: low-bitrate (300 kbps, restored to 1500) and the staged audio-only
(10 → 50 → 100% of users)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.flags import video_on

from runbook import flagd
from runbook.catalog.loader import load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"


@pytest.fixture
def world(tmp_path):
    flags = video_on(tmp_path)
    store = Store(str(tmp_path / "db.sqlite"), key=None)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load_catalog([str(PLAYBOOKS)]))
    yield engine, flags
    store.close()


def flag(flags: Path, name: str) -> flagd.FlagState:
    return flagd.state(flagd.read(str(flags)), name)


def said(events) -> list[str]:
    return [line for e in events if e.type == "degradation_started" for line in e.record.said]


def test_restoring_low_bitrate_states_and_writes_its_restore_value(world):
    engine, flags = world
    iid = engine.open("video-call-degraded", "ana").id
    plan = engine.plan_degrade(iid, "low-bitrate")
    assert plan.lines == ("rtc.video.max-bitrate-kbps → 300",)
    engine.degrade(iid, "ana", "low-bitrate", expect=plan.lines)
    plan = engine.plan_restore(iid, "low-bitrate")
    # the bug: the TUI's restore dialog said "Now: rtc.video.max-bitrate-kbps → 300" and wrote 1500
    assert plan.lines == ("rtc.video.max-bitrate-kbps → 1500 (restored)",)
    events = engine.restore(iid, "ana", "low-bitrate", expect=plan.lines)
    assert said(events) == ["rtc.video.max-bitrate-kbps → 1500 (restored)"]
    assert flag(flags, "rtc.video.max-bitrate-kbps").value == 1500
    assert "restoring degradation low-bitrate: rtc.video.max-bitrate-kbps → 1500 (restored)" in [
        e.record.describe() for e in events]


def test_a_staged_apply_and_each_stage_state_their_share(world):
    engine, flags = world
    iid = engine.open("video-call-degraded", "ana").id
    plan = engine.plan_degrade(iid, "audio-only")
    assert (plan.stage, plan.share, plan.of, plan.staged) == (0, 10, 3, "stage 1 of 3 (10% of users)")
    assert plan.lines == ("rtc.video.enabled → false for 10% of users (stage 1 of 3)",
                          "rtc.screen-share.enabled → false for 10% of users (stage 1 of 3)")
    assert said(engine.degrade(iid, "ana", "audio-only")) == list(plan.lines)
    assert flag(flags, "rtc.video.enabled").share == 10
    assert engine.plan_stage(iid, "audio-only", "hold") is None  # flips nothing
    advance = engine.plan_stage(iid, "audio-only", "advance")
    assert advance.lines[0] == "rtc.video.enabled → false for 50% of users (stage 2 of 3)"
    engine.stage(iid, "ana", "audio-only", "advance", expect=advance.lines)
    last = engine.plan_stage(iid, "audio-only", "advance")
    assert last.lines[0] == "rtc.video.enabled → false for every user (stage 3 of 3)"
    engine.stage(iid, "ana", "audio-only", "advance", expect=last.lines)
    assert (flag(flags, "rtc.video.enabled").value, flag(flags, "rtc.video.enabled").share) == (False, None)
    back = engine.plan_stage(iid, "audio-only", "rollback")
    assert back.lines[0] == "rtc.video.enabled → false for 50% of users (stage 2 of 3)"
    engine.stage(iid, "ana", "audio-only", "rollback", expect=back.lines)
    # back from every user to half of them: the others have video again (it used to stay off for all)
    state = flag(flags, "rtc.video.enabled")
    assert (state.value, state.share, state.variant) == (False, 50, "off")
    assert json.loads(flags.read_text())["flags"]["rtc.video.enabled"]["defaultVariant"] == "on"
    full = engine.plan_stage(iid, "audio-only", "rollback", full=True)
    assert full.lines == ("rtc.video.enabled → true (restored)", "rtc.screen-share.enabled → true (restored)")


def test_a_restore_while_another_incident_holds_the_flag_says_what_it_keeps(world):
    engine, flags = world
    first = engine.open("video-call-degraded", "ana").id
    second = engine.open("video-call-degraded", "bo").id
    engine.degrade(first, "ana", "audio-only")
    engine.degrade(second, "bo", "audio-only")
    engine.stage(second, "bo", "audio-only", "advance")  # the second at 50%, the first at 10%
    plan = engine.plan_restore(second, "audio-only")
    assert plan.lines == (f"kept: audio-only of {first} holds rtc.video.enabled at false for 10% of users",
                          f"kept: audio-only of {first} holds rtc.screen-share.enabled at false for 10% of users")
    events = engine.restore(second, "bo", "audio-only", expect=plan.lines)
    assert flag(flags, "rtc.video.enabled").share == 10  # what the first holds, not the 50% left behind
    assert f"flag rtc.video.enabled now false for 10% of users, as audio-only of {first} still holds it" in [
        e.record.describe() for e in events]
    last = engine.plan_restore(first, "audio-only")
    assert last.lines[0] == "rtc.video.enabled → true (restored)"
    engine.restore(first, "ana", "audio-only", expect=last.lines)
    assert (flag(flags, "rtc.video.enabled").value, flag(flags, "rtc.video.enabled").share) == (True, None)


def test_an_apply_never_narrows_the_share_another_incident_holds(world):
    engine, flags = world
    first = engine.open("video-call-degraded", "ana").id
    second = engine.open("video-call-degraded", "bo").id
    engine.degrade(first, "ana", "audio-only")
    engine.stage(first, "ana", "audio-only", "advance")  # 50%
    plan = engine.plan_degrade(second, "audio-only")
    assert plan.lines[0] == (f"rtc.video.enabled → false for 50% of users "
                             f"(stage 1 of 3 is 10% of users; audio-only of {first} holds 50% of users)")
    engine.degrade(second, "bo", "audio-only", expect=plan.lines)
    assert flag(flags, "rtc.video.enabled").share == 50
    assert engine.state(second).degradations["audio-only"].share == 10  # its own stage is what it records


def test_what_was_shown_must_still_be_what_is_written(world):
    engine, _ = world
    first = engine.open("video-call-degraded", "ana").id
    second = engine.open("video-call-degraded", "bo").id
    engine.degrade(first, "ana", "audio-only")
    engine.degrade(second, "bo", "audio-only")
    shown = engine.plan_restore(second, "audio-only").lines  # kept: the first holds it
    engine.restore(first, "ana", "audio-only")  # meanwhile the first lets go
    with pytest.raises(CommandError, match=r"would now write something else than what was shown: "
                                           r"rtc.video.enabled → true \(restored\)"):
        engine.restore(second, "bo", "audio-only", expect=shown)
    assert engine.state(second).degradations["audio-only"].applied  # nothing was written
    stale = engine.plan_stage(second, "audio-only", "advance").lines
    engine.stage(second, "bo", "audio-only", "advance")
    with pytest.raises(CommandError, match="would now write something else"):
        engine.stage(second, "bo", "audio-only", "rollback", expect=stale)
    assert [e.record.action for e in engine.state(second).events if e.type == "stage_steered"] == ["advance"]


def test_a_degrade_step_and_an_option_are_planned_by_the_step(world):
    engine, _ = world
    iid = engine.open("video-call-degraded", "ana").id
    for _ in range(3):
        engine.complete(iid, "ana")
    assert engine.plan_step(iid) is None  # a decision without degradations flips nothing
    engine.choose(iid, "ana", "2")  # several regions: cap-bitrate
    plan = engine.plan_step(iid)
    assert plan.lines == ("rtc.video.max-bitrate-kbps → 300",)
    engine.complete(iid, "ana", expect=plan.lines)
    engine.fail(iid, "ana", None, "still frozen")  # verify-bitrate failed: audio-only, behind its approval
    gated = engine.plan_step(iid)  # what its approver reads
    assert gated.staged == "stage 1 of 3 (10% of users)"
    assert gated.lines[0] == "rtc.video.enabled → false for 10% of users (stage 1 of 3)"


@pytest.fixture
def rb(rb, tmp_path):
    rb.env.pop("RUNBOOK_PROMETHEUS_URL", None)
    rb.cwd, rb.catalogs = tmp_path, [PLAYBOOKS]
    return rb


def test_the_cli_states_what_it_writes_and_dry_run_writes_nothing(rb, tmp_path):
    iid = rb("incident", "open", "video-call-degraded").strip()
    out = rb("incident", "degrade", iid, "low-bitrate", "--dry-run")
    assert out == f"would apply low-bitrate of {iid}:\n  rtc.video.max-bitrate-kbps → 300\n"
    assert not (tmp_path / "flags.json").exists()
    out = rb("incident", "degrade", iid, "low-bitrate")
    assert "applying degradation low-bitrate: rtc.video.max-bitrate-kbps → 300" in out
    out = rb("incident", "restore", iid, "low-bitrate", "--dry-run", "--json")
    assert json.loads(out)["lines"] == ["rtc.video.max-bitrate-kbps → 1500 (restored)"]
    assert flagd.state(flagd.read(str(tmp_path / "flags.json")), "rtc.video.max-bitrate-kbps").value == 300
    out = rb("incident", "restore", iid, "low-bitrate")
    assert "restoring degradation low-bitrate: rtc.video.max-bitrate-kbps → 1500 (restored)" in out
    assert flagd.state(flagd.read(str(tmp_path / "flags.json")), "rtc.video.max-bitrate-kbps").value == 1500

    out = rb("incident", "degrade", iid, "audio-only", "--dry-run")
    assert out.splitlines() == [f"would apply audio-only of {iid} at stage 1 of 3 (10% of users):",
                                "  rtc.video.enabled → false for 10% of users (stage 1 of 3)",
                                "  rtc.screen-share.enabled → false for 10% of users (stage 1 of 3)"]
    rb("incident", "degrade", iid, "audio-only")
    out = rb("incident", "stage", iid, "audio-only", "advance", "--dry-run")
    assert "  rtc.video.enabled → false for 50% of users (stage 2 of 3)" in out.splitlines()
    assert rb("incident", "stage", iid, "audio-only", "hold", "--dry-run") == "no flags are flipped\n"
    assert "audio-only held at stage 1" not in rb("incident", "show", iid)  # a dry run holds nothing either
    out = rb("incident", "stage", iid, "audio-only", "advance")
    assert "rtc.video.enabled → false for 50% of users (stage 2 of 3)" in out


def test_show_prints_what_a_gated_degrade_step_will_write(rb):
    iid = rb("incident", "open", "video-call-degraded").strip()
    for _ in range(3):
        rb("incident", "step", iid, "--done")
    rb("incident", "choose", iid, "2")
    rb("incident", "step", iid, "--done")  # cap-bitrate
    rb("incident", "step", iid, "--fail", "--outcome", "still frozen")  # verify-bitrate -> audio-only
    shown = rb("incident", "show", iid)
    assert "(needs approval by commander)" in shown
    lines = shown.splitlines()
    at = lines.index("        writes (stage 1 of 3 (10% of users)):")
    assert lines[at + 1:at + 3] == ["          rtc.video.enabled → false for 10% of users (stage 1 of 3)",
                                    "          rtc.screen-share.enabled → false for 10% of users (stage 1 of 3)"]


SHARED_FLAG_PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: two-holds
title: Two degradations on one flag
service: rtc-video
severity: SEV2
escalation: rtc-default
symptoms:
  - id: slow
    summary: Video is slow
degradations:
  fewer-layers:
    summary: Send fewer simulcast layers
    set: {rtc.video.enabled: false}
  audio-first:
    summary: Audio first, video off, bitrate capped
    set: {rtc.video.enabled: false, rtc.video.max-bitrate-kbps: 200}
steps:
  - id: look
    kind: check
    title: Look at the dashboards
"""


def test_resolve_states_each_restore_as_it_will_write_it(world, tmp_path):
    """Two degradations of one incident hold one flag: the first restored is kept by the second,
    the second then writes the value from before both; the plans resolve states are what it writes."""
    engine, flags = world
    (tmp_path / "two-holds.yaml").write_text(SHARED_FLAG_PLAYBOOK)
    engine.catalog = load_catalog([str(PLAYBOOKS), str(tmp_path / "two-holds.yaml")])
    iid = engine.open("two-holds", "ana").id
    engine.degrade(iid, "ana", "fewer-layers")
    engine.degrade(iid, "ana", "audio-first")
    plans = engine.plan_resolve(iid)
    assert [p.degradation for p in plans] == ["fewer-layers", "audio-first"]
    assert plans[0].lines == (f"kept: audio-first of {iid} holds rtc.video.enabled at false",)
    # counted without the first, the second is not "kept" by a degradation restored before it
    assert plans[1].lines[0] == "rtc.video.enabled → true (restored)"
    events = engine.resolve(iid, "ana")
    assert said(events) == [*plans[0].lines, *plans[1].lines]
    assert flag(flags, "rtc.video.enabled").value is True and engine.state(iid).resolved


def test_resolve_dry_run_prints_the_restores_and_changes_nothing(rb, tmp_path):
    iid = rb("incident", "open", "video-call-degraded").strip()
    rb("incident", "degrade", iid, "low-bitrate")
    out = rb("incident", "resolve", iid, "--dry-run")
    assert out.splitlines() == [f"would restore low-bitrate of {iid}:",
                                "  rtc.video.max-bitrate-kbps → 1500 (restored)"]
    assert json.loads(rb("incident", "resolve", iid, "--dry-run", "--json"))["restores"] == [
        {"degradation": "low-bitrate", "lines": ["rtc.video.max-bitrate-kbps → 1500 (restored)"]}]
    assert json.loads(rb("incident", "show", iid, "--json"))["status"] == "open"
    assert flagd.state(flagd.read(str(tmp_path / "flags.json")), "rtc.video.max-bitrate-kbps").value == 300
