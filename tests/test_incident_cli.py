"""The headless incident CLI drives an incident from open to resolved, as a second responder would."""

from __future__ import annotations

import json


def test_open_to_resolved_with_the_cli_alone(rb, tmp_path):
    iid = rb("incident", "open", "video-call-degraded").strip()
    assert iid.startswith("INC-")
    assert "acknowledged" in rb("incident", "ack", iid[:7])
    for _ in range(3):
        rb("incident", "step", iid, "--done")
    out = rb("incident", "choose", iid, "Several")
    assert "where: chose 'Several regions or global' → cap-bitrate" in out
    out = rb("incident", "step", iid, "--done", "--as", "ben")
    assert "flag rtc.video.max-bitrate-kbps" in out
    flags = json.loads((tmp_path / "flags.json").read_text())["flags"]
    assert flags["rtc.video.max-bitrate-kbps"]["defaultVariant"] == "300"
    rb("incident", "step", iid, "--done")  # verify-bitrate: mitigates
    rb("incident", "note", iid, "bitrate cap holds; SFU eu-west recovering", "--as", "ben")
    rb("incident", "step", iid, "open-channel", "--skip", "channel already open")
    rb("incident", "severity", iid, "SEV1", "--reason", "two regions")
    out = rb("incident", "resolve", iid)
    assert "degradation low-bitrate restored" in out
    assert "1500" in (tmp_path / "flags.json").read_text()
    shown = json.loads(rb("incident", "show", iid, "--json"))
    assert shown["status"] == "resolved" and shown["severity"] == "SEV1"
    assert shown["metrics"]["ttm"] is not None
    md = rb("incident", "export", iid, "--format", "md")
    assert md.startswith("# Postmortem: Video calls degraded")
    assert "ben: bitrate cap holds; SFU eu-west recovering" in md
    assert "low-bitrate" in md
    # what was left undone is "not done" once resolved, never "in progress"
    assert "in progress" not in md and "| not done |" in md
    text = rb("incident", "show", iid)
    assert "left undone:" in text and "— not done" in text and "current steps" not in text
    assert f"{iid}: " in rb("incident", "verify", iid) and "hash chain intact" in rb("incident", "verify", iid)
    listed = rb("incident", "list")  # no longer open: listed as resolved lately
    assert listed.index("resolved in the last 24 hours:") < listed.index(iid)
    assert iid in rb("incident", "list", "--all")


def test_errors_have_distinct_exit_codes(rb):
    assert "no incident 'INC-NOPE'" in rb("incident", "ack", "INC-NOPE", expect=3, stream="stderr")
    iid = rb("incident", "open", "gifts-feature-failing").strip()
    rb("incident", "ack", iid)
    assert "already acknowledged by ana" in rb("incident", "ack", iid, expect=5, stream="stderr")
    assert "say what happened to the step" in rb("incident", "step", iid, expect=2, stream="stderr")
    assert "no playbook 'gift-feature-failing'; did you mean 'gifts-feature-failing'?" in rb(
        "incident", "open", "gift-feature-failing", expect=3, stream="stderr")
    # a step the playbook does not have is a name that does not exist, like an incident's (3)
    assert "has no step 'nosuch'" in rb("incident", "approve", iid, "nosuch", expect=3, stream="stderr")
    assert "has no step 'nosuch'" in rb("incident", "restart", iid, "nosuch", "--reason", "again", expect=3,
                                        stream="stderr")


def test_step_flags_are_exclusive(rb):
    iid = rb("incident", "open", "gifts-feature-failing").strip()
    err = rb("incident", "step", iid, "--done", "--fail", expect=2, stream="stderr")
    assert "give only one of --done, --skip REASON, --fail, --run (got done, fail)" in err


def test_show_tells_where_escalation_stands_and_prints_no_empty_heading(rb):
    iid = rb("incident", "open", "video-call-degraded").strip()  # level 1 is paged at once
    assert "next escalation: level 2 in " in rb("incident", "show", iid)
    rb("incident", "severity", iid, "SEV4", "--reason", "one customer's network")
    shown = rb("incident", "show", iid)
    assert "escalation: SEV4 does not page; paged up to level 1 before; nobody has acknowledged" in shown
    assert "stopped" not in shown  # nobody stopped it: nobody acknowledged
    rb("incident", "ack", iid)
    assert "escalation stopped at level 1: acknowledged by ana at " in rb("incident", "show", iid)
    for step in ("open-channel", "tell-support", "status-page", "all-clear"):
        rb("incident", "step", iid, step, "--done")
    rb("incident", "resolve", iid)
    lines = rb("incident", "show", iid).splitlines()
    assert "  Not every step was done: 1 not done, 16 not reached." in lines
    assert "  left undone:" in lines and "  failed:" not in lines and "  skipped:" not in lines
    headings = [i for i, line in enumerate(lines) if line.endswith(":")]
    assert all(len(lines[i + 1]) - len(lines[i + 1].lstrip()) > len(lines[i]) - len(lines[i].lstrip())
               for i in headings)  # every heading has something under it


def test_list_shows_what_was_resolved_in_the_last_day_and_counts_the_older(rb, tmp_path, fixture_catalog, repo_root):
    """The morning after: `incident list` is not "no open incidents" and nothing more."""
    from datetime import UTC, datetime

    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    store = Store(str(tmp_path / "db.sqlite"))  # the database rb's commands use
    try:
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=str(repo_root / "plugins")),
                          entry_points=False)
        catalog = load([str(fixture_catalog / "playbooks")])
        engine = Engine(store, VirtualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)), host, catalog)
        old = engine.open("gifts-feature-failing", "ana").id  # resolved long ago
        engine.resolve(old, "ana")
    finally:
        store.close()
    assert rb("incident", "list") == "no open incidents\n1 resolved earlier is hidden: runbook incident list --all\n"
    iid = rb("incident", "open", "gifts-feature-failing").strip()
    rb("incident", "resolve", iid)
    listed = rb("incident", "list").splitlines()
    assert listed[:2] == ["no open incidents", "resolved in the last 24 hours:"]
    assert listed[2].startswith(f"{iid}  SEV4  resolved") and old not in listed[2]
    assert listed[3] == "1 resolved earlier is hidden: runbook incident list --all"
