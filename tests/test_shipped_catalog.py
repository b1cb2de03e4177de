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
