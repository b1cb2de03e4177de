"""The example library that ships in playbooks/ is clean and covers the faults a team meets first."""

from __future__ import annotations

from runbook.catalog import load_catalog
from runbook.catalog.models import Playbook


def test_shipped_catalog_has_no_errors_or_warnings(repo_root):
    catalog = load_catalog([str(repo_root / "playbooks"), str(repo_root / "drills")])
    assert [p.format() for p in catalog.problems] == []


def test_every_shipped_file_carries_the_schema_modeline(repo_root):
    catalog = load_catalog([str(repo_root / "playbooks"), str(repo_root / "drills")])
    for doc in catalog.documents:
        first = doc.text.splitlines()[0]
        assert first == f"# yaml-language-server: $schema=../src/runbook/catalog/schemas/{doc.kind.lower()}.schema.json"
        assert (repo_root / "playbooks" / first.split("=", 1)[1]).resolve().is_file()


def test_shipped_drills_cover_the_three_rehearsals(repo_root):
    drills = load_catalog([str(repo_root / "playbooks"), str(repo_root / "drills")]).models("Drill")
    assert {"weekly-audio-fallback", "surprise-ack", "escalation-stress"} <= set(drills)
    assert drills["weekly-audio-fallback"].schedule.cron == "0 14 * * WED"
    assert drills["weekly-audio-fallback"].responders.choices == {"where": 2}
    assert all(d.mode == "tabletop" for d in drills.values())


def test_library_covers_the_core_faults(repo_root):
    catalog = load_catalog([str(repo_root / "playbooks")])
    playbooks = catalog.models("Playbook")
    assert len(playbooks) >= 7
    services = {pb.service for pb in playbooks.values()}
    assert {"rtc-video", "rtc-signaling", "messaging", "auth", "media-upload", "push"} <= services
    assert any(pb.degradations.get("audio-only") for pb in playbooks.values())
    tiers = [t.availability for sp in catalog.models("SeverityPolicy").values() for t in sp.tiers]
    assert "99.99%" in tiers
    rosters = list(catalog.models("Roster").values())
    assert {"rtc-primary", "rtc-secondary"} <= {r.id for roster in rosters for r in roster.rotations}


def test_library_uses_the_whole_language(repo_root):
    """The examples double as documentation, so each construct appears at least once."""
    playbooks: list[Playbook] = list(load_catalog([str(repo_root / "playbooks")]).models("Playbook").values())
    steps = [s for pb in playbooks for s in pb.steps]
    kinds = {s.kind for s in steps}
    assert kinds >= {"check", "action", "decision", "choose", "degrade", "restore", "wait", "verify", "communicate"}
    assert any(len(pb.tracks) > 1 for pb in playbooks)
    assert any(pb.reminders for pb in playbooks)
    assert any(s.approval for s in steps)
    assert any(s.kind == "wait" and s.on_timeout for s in steps)
    assert any(sym.false_positives for pb in playbooks for sym in pb.symptoms)
    assert any(sym.severity_rises for pb in playbooks for sym in pb.symptoms)
    assert any(s.run is not None for s in steps) and any(s.uses for s in steps)
    plain = [s for s in steps if s.id.startswith("step-")]
    assert plain, "one playbook shows the shortest form: steps as a plain list of strings"
    # going back to an earlier step
    back = [(pb, s) for pb in playbooks for s in pb.steps for o in s.options
            if o.next and o.next in [x.id for x in pb.steps[: pb.steps.index(s)]]]
    back += [(pb, s) for pb in playbooks for s in pb.steps
             if s.on_fail and s.on_fail in [x.id for x in pb.steps[: pb.steps.index(s)]]]
    assert back


def test_schema_cache_skips_only_texts_that_passed(tmp_path, repo_root, monkeypatch):
    from runbook.catalog import schema_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = load_catalog([str(repo_root / "playbooks")])
    assert first.problems == [] and (tmp_path / "cache" / "runbook" / "schema-passed.json").exists()
    calls = []
    monkeypatch.setattr("runbook.catalog.loader.schema_problems", lambda *a: calls.append(a) or [])
    second = load_catalog([str(repo_root / "playbooks")])
    assert calls == [] and [d.id for d in second.documents] == [d.id for d in first.documents]
    load_catalog([str(repo_root / "playbooks")], trust_cache=False)
    assert len(calls) == len(first.documents)  # `runbook validate` always checks everything
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: runbook/v1\nkind: Roster\nid: r2\n")
    assert load_catalog([str(broken)]).errors and schema_cache.key(broken.read_text()) not in schema_cache.SchemaCache()


# the language as real teams use it ------------------------------------------------------------

def shipped_playbooks(repo_root) -> dict[str, Playbook]:
    return load_catalog([str(repo_root / "playbooks")]).models("Playbook")


def test_the_flagship_has_a_follow_up_phase_and_names_its_commander(repo_root):
    pb = shipped_playbooks(repo_root)["video-call-degraded"]
    assert pb.followup is not None and pb.followup.role == "commander"
    steps = {s.id: s for s in pb.followup.steps}
    assert list(steps) == ["postmortem", "customer-followup", "action-items"]
    assert steps["customer-followup"].kind == "communicate" and steps["customer-followup"].audience == "customers"
    assert "{commander}" in pb.step("open-channel").template
    templates = [s.template for p in shipped_playbooks(repo_root).values() for s in p.steps if s.template]
    assert not [t for t in templates if "<name>" in t]  # a role's holder is {role}, never a blank to fill in


def test_at_least_three_playbooks_use_parameters_captures_roles_and_follow_up(repo_root):
    full = [pb.id for pb in shipped_playbooks(repo_root).values()
            if pb.parameters and pb.captures and pb.roles and pb.followup is not None]
    assert len(full) >= 3, full
    assert {"video-call-degraded", "calls-failing-one-region", "message-delivery-delayed"} <= set(full)


def test_the_flagship_through_the_engine_fills_the_commander_and_follows_up(repo_root, tmp_path):
    from runbook.engine import Engine, VirtualClock, texts
    from runbook.store import Store

    store = Store(str(tmp_path / "db.sqlite"))
    engine = Engine(store, VirtualClock(), None, load_catalog([str(repo_root / "playbooks")]))
    iid = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    engine.assign(iid, "ana", "commander", "Lea Fontaine")
    engine.assign(iid, "ana", "comms", "Sam Okafor")  # the customer follow-up message names them
    state = engine.state(iid)
    step = state.playbook.step("open-channel")
    message = texts.text(state, step.template, step)
    assert "in eu-west-1" in message and "Incident commander: Lea Fontaine." in message
    engine.resolve(iid, "ana")
    assert engine.state(iid).current["followup"] == "postmortem"
    for _ in range(3):
        engine.complete(iid, "ana")
    assert engine.state(iid).closed
    store.close()


def test_each_poll_of_the_backlog_wait_records_the_backlog_it_saw(repo_root, tmp_path, monkeypatch):
    """message-delivery-delayed's wait prints the lag it summed; a stand-in kubectl prints two partitions."""
    import os
    import stat

    from runbook.engine import Engine, VirtualClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text("#!/bin/sh\necho 'GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID'\n"
                       "echo 'msg-delivery msg-inbound 0 100 41000 40900 c1'\n"
                       "echo 'msg-delivery msg-inbound 1 100 450 350 c2'\n")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load_catalog([str(repo_root / "playbooks")]))
    iid = engine.open("message-delivery-delayed", "ana").id
    for _ in range(4):  # lag, consumers, downstream, tell-support
        engine.complete(iid, "ana")
    engine.choose(iid, "ana", "Add delivery consumers")
    engine.complete(iid, "ana")  # scale-consumers
    engine.complete(iid, "ana")  # verify: lag is falling
    poll = next(e for e in engine.run(iid, "ana", "backlog-drained") if e.type == "check_polled")
    assert poll.record.describe() == "poll 1 of backlog-drained: backlog=41250; exit status 1, not yet"
    store.close()


def test_validate_and_show_through_the_cli(repo_root, rb):
    rb.cwd = repo_root  # the shipped catalog
    assert rb("validate", "--strict").startswith("valid: 0 errors, 0 warnings")
    shown = rb("show", "video-call-degraded")
    assert "Track followup: After the incident (role commander)" in shown
    assert "[communicate] Follow up with affected customers  #customer-followup" in shown
    assert "runs rtcctl traffic shift rtc-video --from ‹region› --percent 100" in shown
    iid = rb("incident", "open", "video-call-degraded", "--param", "region=eu-west-1").strip()
    rb("incident", "assign", iid, "commander", "Lea Fontaine")
    assert "Incident commander: Lea Fontaine." in rb("incident", "show", iid)
    login = rb("incident", "open", "login-outage").strip()  # no parameters: only known names are filled
    assert "Incident commander: ‹commander›." in rb("incident", "show", login)  # nobody holds it yet
