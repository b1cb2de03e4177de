"""Staged degradations: shares written as flagd fractional targeting, read back by the real
OpenFeature flagd provider; stages advancing while their checks hold, rolling back by themselves
when one fails; a responder holding, advancing and rolling back by hand. Virtual clock; the
metrics come from a scripted source here (tests/test_prometheus*.py drive a real Prometheus)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.flags import video_on

from runbook.catalog.loader import load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent


class Metrics:
    """A scripted metrics source (runbook.metric_checks' MetricSource): the next values to
    answer (a number, or an exception text for a broken read), then the last one again."""

    def __init__(self, *answers):
        self.answers = list(answers) or [0.001]
        self.asked = []

    def query(self, promql, at=None, timeout=None):
        from runbook.metric_checks import CheckBroken, Series

        self.asked.append(promql)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, str):
            raise CheckBroken(answer)
        return [Series({}, answer)]


@pytest.fixture
def world(tmp_path):
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    engine = Engine(Store(str(tmp_path / "db.sqlite"), key=None), VirtualClock(), host,
                    load_catalog([str(ROOT / "playbooks")]))
    engine.metrics_source = Metrics()
    incident = engine.open("video-call-degraded", "ana").id
    yield engine, incident, flags
    engine.store.close()


def flag(flags: Path, name: str) -> dict:
    return json.loads(flags.read_text())["flags"][name]


def shares(engine, incident):
    return [(e.record.stage, e.record.share) for e in engine.state(incident).events if e.type == "degradation_applied"]


def test_degrade_starts_the_first_stage_as_a_fractional_share_of_users(world):
    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    state = engine.state(incident)
    deg = state.degradations["audio-only"]
    assert (deg.applied, deg.stage, deg.share) == (True, 0, 10)
    video = flag(flags, "rtc.video.enabled")
    assert video["defaultVariant"] == "on"  # everyone else keeps video
    assert video["targeting"] == {"fractional": [{"var": "userId"}, ["off", 10], ["on", 90]]}
    assert "degradation audio-only at stage 1 of 3: 10% of users" in [e.record.describe() for e in state.events]
    with pytest.raises(CommandError, match=r"already applied, at stage 1 of 3 .10%.; steer it with"):
        engine.degrade(incident, "bo", "audio-only")


def test_the_openfeature_flagd_provider_gives_each_stage_its_share_of_10000_users(world):
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    seen = []
    for share in (10, 50, 100):
        if share != 10:
            engine.stage(incident, "ana", "audio-only", "advance")
        assert engine.state(incident).degradations["audio-only"].share == share
        provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(flags),
                                 deadline_ms=100)
        api.set_provider_and_wait(provider)
        try:
            client = api.get_client()
            off = sum(1 for n in range(10_000) if client.get_boolean_value(
                "rtc.video.enabled", True, EvaluationContext(attributes={"userId": f"user-{n}"})) is False)
        finally:
            api.shutdown()
        seen.append((share, off / 100))
    print("shares (declared, measured over 10,000 users):", seen)
    for share, measured in seen:
        assert abs(measured - share) <= 2, seen


def test_stages_advance_after_their_hold_while_the_checks_hold(world):
    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    engine.clock.advance(30)
    engine.tick(incident)  # the first check
    checked = [e for e in engine.state(incident).events if e.type == "stage_checked"]
    assert checked and checked[-1].record.results[0]["outcome"] == "holds"
    assert "rtc_calls_dropped_total" in engine.metrics_source.asked[0]
    engine.clock.advance(5 * 60)
    engine.tick(incident)
    assert shares(engine, incident) == [(0, 10), (1, 50)]
    steered = [e for e in engine.state(incident).events if e.type == "stage_steered"][-1]
    assert (steered.actor, steered.record.automatic, steered.record.reason) == (
        "runbook", True, "stage 1 held 5m with its checks passing")
    engine.clock.advance(6 * 60)
    engine.tick(incident)
    assert shares(engine, incident)[-1] == (2, 100)
    video = flag(flags, "rtc.video.enabled")
    assert video["defaultVariant"] == "off" and "targeting" not in video  # the last stage: everyone
    engine.clock.advance(30)
    fired = [e.type for e in engine.tick(incident) if e.type.startswith("stage_")]
    assert fired == ["stage_checked"]  # whole: no stage to go to, the checks still watch


def test_a_failed_check_rolls_back_by_itself_and_says_why(world):
    engine, incident, flags = world
    engine.metrics_source = Metrics(0.004, 0.031)
    engine.degrade(incident, "ana", "audio-only")
    engine.clock.advance(30)
    engine.tick(incident)
    engine.clock.advance(30)
    engine.tick(incident)
    state = engine.state(incident)
    deg = state.degradations["audio-only"]
    assert not deg.applied and deg.stage == -1  # on_failure: restore
    rollback = [e for e in state.events if e.type == "stage_steered"][-1]
    assert rollback.record.describe() == ("automatically: audio-only rollback from stage 1 to restore fully: "
                                          "check call-drops failed: 0.031 (expect < 0.02)")
    video = flag(flags, "rtc.video.enabled")
    assert video["defaultVariant"] == "on" and "targeting" not in video
    assert "runbook.share" not in video.get("metadata", {})


def test_a_check_that_cannot_be_evaluated_holds_the_stage_without_advancing(world):
    engine, incident, _ = world
    engine.metrics_source = Metrics("no data for the query")
    engine.degrade(incident, "ana", "audio-only")
    for _ in range(20):
        engine.clock.advance(30)
        engine.tick(incident)
    deg = engine.state(incident).degradations["audio-only"]
    assert (deg.applied, deg.stage) == (True, 0)  # on_check_broken: hold
    assert deg.checks["call-drops"][:3] == ("broken", None, "no data for the query")
    engine.metrics_source.answers = [0.001]
    engine.clock.advance(30)
    engine.tick(incident)
    assert engine.state(incident).degradations["audio-only"].stage == 1  # held long enough already


def test_without_a_metrics_source_the_checks_are_broken_and_the_stage_holds(world):
    engine, incident, _ = world
    engine.metrics_source = None
    engine.degrade(incident, "ana", "audio-only")
    engine.clock.advance(10 * 60)
    engine.tick(incident)
    deg = engine.state(incident).degradations["audio-only"]
    assert deg.stage == 0 and "RUNBOOK_PROMETHEUS_URL" in deg.checks["call-drops"][2]


def test_a_responder_holds_advances_and_rolls_back_by_hand(world):
    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    engine.stage(incident, "bo", "audio-only", "hold", "watching support tickets")
    with pytest.raises(CommandError, match="already held"):
        engine.stage(incident, "bo", "audio-only", "hold")
    engine.clock.advance(30 * 60)
    engine.tick(incident)
    assert engine.state(incident).degradations["audio-only"].stage == 0  # held: no advance
    engine.stage(incident, "bo", "audio-only", "advance", "tickets fine")
    assert engine.state(incident).degradations["audio-only"].share == 50
    lines = [e.record.describe() for e in engine.state(incident).events if e.type == "flag_changed"]
    assert lines[-2] == "flag rtc.video.enabled: true → false for 50% of users"  # from the value before it all
    engine.stage(incident, "bo", "audio-only", "rollback", "one region complains")
    assert engine.state(incident).degradations["audio-only"].share == 10
    assert flag(flags, "rtc.video.enabled")["targeting"]["fractional"][1] == ["off", 10]
    engine.stage(incident, "bo", "audio-only", "rollback")
    assert not engine.state(incident).degradations["audio-only"].applied
    with pytest.raises(CommandError, match="is not applied; start its first stage"):
        engine.stage(incident, "bo", "audio-only", "advance")
    with pytest.raises(CommandError, match="is not staged"):
        engine.stage(incident, "bo", "low-bitrate", "advance")


def test_resolve_restores_a_staged_degradation_mid_rollout(world):
    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    engine.stage(incident, "ana", "audio-only", "advance")
    engine.resolve(incident, "ana")
    video = flag(flags, "rtc.video.enabled")
    assert video["defaultVariant"] == "on" and "targeting" not in video and "metadata" not in video


def test_a_flag_with_targeting_of_its_own_is_not_overwritten(world):
    engine, incident, flags = world
    data = json.loads(flags.read_text())
    data["flags"]["rtc.video.enabled"]["targeting"] = {"if": [{"==": [{"var": "tier"}, "beta"]}, "off", "on"]}
    flags.write_text(json.dumps(data))
    events = engine.degrade(incident, "ana", "audio-only")
    failed = [e for e in events if e.type == "degradation_failed"]
    assert failed and "has targeting rules of its own" in failed[0].record.reason
    assert json.loads(flags.read_text())["flags"]["rtc.video.enabled"]["targeting"]["if"]


def test_a_flag_missing_from_the_file_starts_from_the_playbooks_restore_value(world):
    engine, incident, flags = world
    data = json.loads(flags.read_text())
    del data["flags"]["rtc.screen-share.enabled"]
    flags.write_text(json.dumps(data))
    engine.degrade(incident, "ana", "audio-only")
    share = flag(flags, "rtc.screen-share.enabled")
    assert share["defaultVariant"] == "on" and share["targeting"]["fractional"][1] == ["off", 10]
    engine.restore(incident, "ana", "audio-only")
    assert flag(flags, "rtc.screen-share.enabled")["defaultVariant"] == "on"


# --- automatic degradation and drill safeguards ------------------------------------------------

def video_alert(fingerprint: str, severity: str):
    from runbook.engine.intake import Alert

    return Alert(fingerprint, "firing", "2026-11-30T10:00:00Z",
                 {"alertname": "RTCVideoFreezeRatioHigh", "service": "rtc-video", "severity": severity})


def test_an_alert_opening_a_sev1_video_incident_starts_audio_only_by_itself(world):
    engine, _, flags = world
    (opened,) = engine.receive_alerts([video_alert("aa01", "critical")])
    state = engine.state(opened.incident)
    assert state.severity == "SEV1"
    deg = state.degradations["audio-only"]
    assert (deg.applied, deg.stage, deg.share) == (True, 0, 10)
    started = [e for e in state.events if e.type == "degradation_started"]
    assert [e.actor for e in started] == ["auto-degrade"]
    assert flag(flags, "rtc.video.enabled")["targeting"]["fractional"][1] == ["off", 10]


def test_not_at_a_severity_the_symptom_does_not_name(world):
    engine, _, _ = world
    (opened,) = engine.receive_alerts([video_alert("aa02", "warning")])  # SEV3
    assert not engine.state(opened.incident).degradations["audio-only"].touched


def test_opening_by_hand_applies_nothing_by_itself(world):
    engine, incident, _ = world  # opened with engine.open, no alert
    assert not engine.state(incident).degradations["audio-only"].touched


def drill_catalog(tmp_path, **extra):
    import yaml

    drills = tmp_path / "drills"
    drills.mkdir(exist_ok=True)
    doc = {"apiVersion": "runbook/v1", "kind": "Drill", "id": "video-gameday", "title": "Video game day",
           "playbook": "video-call-degraded", "symptom": "video-quality-low", "severity": "SEV1", **extra}
    (drills / "video-gameday.yaml").write_text(yaml.safe_dump(doc))
    return load_catalog([str(ROOT / "playbooks"), str(drills)])


def test_a_real_incident_on_the_same_service_stops_a_drill_and_restores_what_it_applied(world, tmp_path):
    engine, _incident, flags = world
    engine.catalog = drill_catalog(tmp_path)
    drill = engine.open("video-call-degraded", "lea", rehearse="video-gameday").id
    engine.degrade(drill, "lea", "low-bitrate")  # to the sandbox flag file
    sandbox = Path(str(flags).replace("flags.json", "flags.sandbox.json"))
    assert flag(sandbox, "rtc.video.max-bitrate-kbps")["defaultVariant"] == "300"
    real = engine.open("video-call-degraded", "ana").id
    state = engine.state(drill)
    stopped = [e for e in state.events if e.type == "drill_stopped"]
    assert stopped and stopped[0].record.describe() == (
        f"DRILL STOPPED: a real incident {real} opened on service rtc-video")
    assert state.resolved and not state.degradations["low-bitrate"].touched
    assert flag(sandbox, "rtc.video.max-bitrate-kbps").get("defaultVariant") != "300"


def test_a_drill_whose_guard_breaches_stops(world, tmp_path):
    engine, _, _ = world
    engine.catalog = drill_catalog(tmp_path, guard={"check_every": "1m", "checks": [
        {"name": "real-freezes", "prometheus": {"query": "rtc_freeze_ratio", "expect": "< 0.03"}}]})
    drill = engine.open("video-call-degraded", "lea", rehearse="video-gameday").id
    engine.metrics_source = Metrics(0.01, 0.05)
    engine.clock.advance(60)
    engine.tick(drill)
    assert not engine.state(drill).resolved
    engine.clock.advance(60)
    engine.tick(drill)
    state = engine.state(drill)
    assert state.resolved
    assert [e.record.reason for e in state.events if e.type == "drill_stopped"] == [
        "guard real-freezes breached: 0.05 (expect < 0.03)"]


def test_drills_apply_automatic_degradations_only_when_they_say_so(world, tmp_path):
    engine, _, flags = world
    sandbox = Path(str(flags).replace("flags.json", "flags.sandbox.json"))
    engine.catalog = drill_catalog(tmp_path)
    plain = engine.open("video-call-degraded", "lea", rehearse="video-gameday", severity="SEV1").id
    assert not engine.state(plain).degradations["audio-only"].touched
    engine.resolve(plain, "lea")
    engine.catalog = drill_catalog(tmp_path, automatic=True)
    sandbox.write_text(flags.read_text())  # the sandbox holds the same flags
    auto = engine.open("video-call-degraded", "lea", rehearse="video-gameday", severity="SEV1").id
    deg = engine.state(auto).degradations["audio-only"]
    assert (deg.applied, deg.share) == (True, 10)
    assert "targeting" in flag(sandbox, "rtc.video.enabled") and "targeting" not in flag(flags, "rtc.video.enabled")


def test_restoring_in_stages_steps_down_after_each_hold_until_restored(world):
    engine, incident, flags = world
    engine.degrade(incident, "ana", "audio-only")
    engine.stage(incident, "ana", "audio-only", "advance")
    engine.stage(incident, "ana", "audio-only", "advance")
    assert engine.state(incident).degradations["audio-only"].share == 100
    engine.stage(incident, "ana", "audio-only", "unwind", "video is healthy again")
    with pytest.raises(CommandError, match="already restoring in stages"):
        engine.stage(incident, "bo", "audio-only", "unwind")
    seen = []
    for _ in range(40):
        engine.clock.advance(30)
        engine.tick(incident)
        deg = engine.state(incident).degradations["audio-only"]
        if not seen or seen[-1] != deg.share:
            seen.append(deg.share)
        if not deg.applied:
            break
    assert seen == [100, 50, 10, None]  # one stage down per 5m hold, then restored
    video = flag(flags, "rtc.video.enabled")
    assert video["defaultVariant"] == "on" and "targeting" not in video
    reasons = [e.record.reason for e in engine.state(incident).events
               if e.type == "stage_steered" and e.record.automatic]
    assert reasons[-1] == "restoring in stages: stage 1 held 5m"
