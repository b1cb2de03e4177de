"""`runbook incident review`, `incident similar` and `runbook actions ...` as a user runs them."""

from __future__ import annotations

import json


def test_review_similar_and_actions_from_the_command_line(rb):
    old = rb("incident", "open", "video-call-degraded", "--param", "region=eu-west-1").strip()
    rb("incident", "note", old, "SFU CPU at 100% in eu-west-1")
    rb("incident", "mitigate", old, "--as", "bo")
    rb("incident", "resolve", old)
    out = rb("actions", "add", old, "alert on SFU CPU", "--owner", "bo", "--due", "2026-01-02", "--kind", "detect",
             "--priority", "P2", "--ticket", "https://tracker/RB-9")
    assert f"added {old}#1" in out
    rb("incident", "review", old, "--trigger", "the 1.2 deploy", "--root-cause", "SFU CPU saturation")
    review = json.loads(rb("incident", "review", old, "--json"))
    assert review["root-cause"]["text"] == "SFU CPU saturation" and review["root-cause"]["by"] == "ana"
    assert review["summary"] is None
    text = rb("incident", "review", old)
    assert "Root cause (ana," in text and "Summary: (not written; --summary TEXT)" in text

    new = rb("incident", "open", "video-call-degraded", "--param", "region=eu-west-1").strip()
    found = json.loads(rb("incident", "similar", new, "--json"))
    assert found["matches"][0]["incident"] == old
    assert found["matches"][0]["mitigation"]["who"] == "bo"
    assert found["repeat"].startswith(f"repeat: action 'alert on SFU CPU' from {old} open ")
    shown = rb("incident", "similar", new)
    assert shown.startswith("!! repeat: action 'alert on SFU CPU'") and f"1. {old}" in shown

    listed = rb("actions", "list")
    assert f"{old}#1" in listed and "OVERDUE" in listed and "alert on SFU CPU" in listed
    assert json.loads(rb("actions", "list", "--owner", "nobody", "--json")) == []
    item = json.loads(rb("actions", "show", f"{old}#1", "--json"))
    assert (item["kind"], item["priority"], item["ticket"], item["status"]) == \
        ("detect", "P2", "https://tracker/RB-9", "open")

    reminded = rb("actions", "remind")
    assert f"reminded bo of {old}#1" in reminded
    assert "no overdue action items to remind" in rb("actions", "remind")

    err = rb("actions", "close", f"{old}#1", expect=2)  # no evidence and no terminal to ask at
    assert err.count("\n") == 1 and "needs evidence" in err
    rb("actions", "close", f"{old}#1", "--evidence", "https://grafana/alert/7")
    assert "no open action items" in rb("actions", "list")
    assert "closed" in rb("actions", "list", "--all")
    md = rb("incident", "export", old)
    assert "SFU CPU saturation" in md and "closed " in md.split("## Action items", 1)[1]
    rb("db", "reindex")  # brings every search row up to its log's end
    assert "reindexed 0 incident(s)" in rb("db", "reindex")


def test_bad_input_is_one_line_with_a_documented_exit_code(rb):
    iid = rb("incident", "open", "login-outage").strip()
    err = rb("actions", "add", iid, "x", "--due", "soon", expect=2)
    assert err.strip() == "runbook: error: due date 'soon' is not a date; write it as 2026-12-24"
    err = rb("actions", "show", "no-hash-here", expect=2)
    assert "is not an action item id" in err and err.count("\n") == 1
    err = rb("actions", "show", f"{iid}#4", expect=3)
    assert f"{iid} has no action item #4" in err
    err = rb("actions", "add", iid, "x", "--kind", "fix", expect=2)
    assert "'fix' is not one of" in err
    assert "no past incident like" in rb("incident", "similar", iid)


def test_report_compares_with_the_simulation_and_adds_one_analysis_item(rb):
    rb("drill", "run", "weekly-audio-fallback", "--auto", "--runs", "200", "--seed", "1")  # video-call-degraded
    iid = rb("incident", "open", "video-call-degraded").strip()
    rb("incident", "ack", iid)
    rb("incident", "mitigate", iid)
    rb("incident", "resolve", iid)
    out = rb("report")
    assert "Simulated against observed" in out and "ANALYSE" in out
    assert f"added analysis action item {iid}#1" in out and f"added analysis action item {iid}#2" in out
    items = json.loads(rb("actions", "list", "--json"))
    assert [i["text"].split(":")[0] for i in items] == ["Analyse TTA of video-call-degraded",
                                                        "Analyse TTM of video-call-degraded"]
    assert {i["kind"] for i in items} == {"process"}
    again = json.loads(rb("report", "--format", "json"))
    assert again["analysis_items"] == []  # once while open
    assert again["actions"]["added"] == 2 and again["actions"]["open"] == 2 and again["actions"]["completion"] == 0
    [tta] = [p for p in again["predictions"] if p["metric"] == "TTA"]
    assert tta["playbook"] == "video-call-degraded" and tta["n"] == 1 and tta["flagged"]
    rb("actions", "close", f"{iid}#1", "--evidence", "https://wiki/analysis")
    assert json.loads(rb("report", "--format", "json"))["actions"]["completion"] == 0.5
    assert "added analysis" not in rb("report", "--no-analysis")


def test_list_and_show_say_when_a_drill_last_verified_a_playbook(rb):
    assert "verified" not in rb("list", "--kind", "Playbook")  # no database yet: none is made
    assert not rb.db.exists()
    real = rb("incident", "open", "login-outage").strip()
    rb("incident", "resolve", real)
    assert "login-outage" in rb("list") and "never verified by a drill" in rb("list", "--kind", "Playbook")
    drill = rb("incident", "open", "login-outage", "--drill").strip()
    rb("incident", "ack", drill)
    rb("incident", "resolve", drill)
    line = next(x for x in rb("list", "--kind", "Playbook").splitlines() if "login-outage" in x)
    assert f"({drill}, passed)" in line and "last drill " in line
    assert "Drills: last drill" in rb("show", "login-outage")
    assert json.loads(rb("show", "login-outage", "--json"))["last_drill"]["incident"] == drill
