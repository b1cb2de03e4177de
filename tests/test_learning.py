"""Learning from incidents through the engine, on both stores: past incidents like this one
(searched in the store), action items across incidents (evidence, reminders), the review people
write and the postmortem built from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock, learning
from runbook.engine.metrics import export_markdown
from runbook.errors import NotFoundError, UsageError
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import MemoryStore, open_store

CATALOG = Path(__file__).resolve().parent / "fixtures" / "catalog"


@pytest.fixture(scope="module")
def catalog():
    return load([str(CATALOG / "playbooks")])


@pytest.fixture
def engine(store_location, catalog, tmp_path):
    store = open_store(store_location)
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, catalog)
    store.close()


def past(engine, playbook, region=None, note=None, mitigate=False, item=None):
    """An incident that happened and is over; the clock moves on an hour after it."""
    state = engine.open(playbook, "ana", params={"region": region} if region else None)
    if note:
        engine.note(state.id, "ana", note)
    if mitigate:
        engine.mitigate(state.id, "bo")
    engine.resolve(state.id, "ana")
    if item:
        engine.add_action_item(state.id, "ana", item, owner="bo", kind="detect")
    engine.clock.advance(hours=1)
    return state.id


def test_the_past_incident_with_the_same_fault_and_a_working_mitigation_ranks_first(engine):
    fixed = past(engine, "video-call-degraded", "eu-west-1", "SFU CPU saturated in eu-west-1", mitigate=True,
                 item="alert on SFU CPU")
    past(engine, "video-call-degraded", "us-east-1", "freeze in us-east-1 went away by itself")
    past(engine, "login-outage", note="token service down")
    engine.clock.advance(days=41)
    now = engine.open("video-call-degraded", "cy", params={"region": "eu-west-1"})
    later = engine.open("video-call-degraded", "cy", params={"region": "eu-west-1"})  # not in now's past

    found = engine.similar(now.id)
    assert [m["incident"] for m in found][:1] == [fixed]
    assert later.id not in [m["incident"] for m in found] and now.id not in [m["incident"] for m in found]
    assert len(found) <= 3
    top = found[0]
    assert top["mitigation"]["who"] == "bo" and top["mitigation"]["seconds"] == 0
    assert [a["text"] for a in top["open_actions"]] == ["alert on SFU CPU"]
    assert learning.repeat_warning(found) == f"repeat: action 'alert on SFU CPU' from {fixed} open 41 days"


def test_the_search_index_is_a_projection_rebuilt_from_the_log(engine):
    fixed = past(engine, "video-call-degraded", "eu-west-1", "SFU CPU saturated", mitigate=True)
    now = engine.open("video-call-degraded", "cy", params={"region": "eu-west-1"})
    store = engine.store
    store._run("DELETE FROM search_docs")  # lost (or never built: a database from before migration 9)
    assert store.search_behind() == sorted([fixed, now.id])
    assert engine.reindex() == 2 and store.search_behind() == []
    assert engine.similar(now.id)[0]["incident"] == fixed


def test_a_note_added_later_makes_an_incident_findable_by_its_words(engine):
    first = past(engine, "stickers-not-loading")
    other = past(engine, "stickers-not-loading")
    engine.note(other, "ana", "cdn certificate expired")
    now = engine.open("stickers-not-loading", "cy")
    assert [m["incident"] for m in engine.similar(now.id)] == [other, first]  # newest first on a tie
    engine.note(now.id, "cy", "cdn certificate expired?")
    assert [m["incident"] for m in engine.similar(now.id)] == [other, first]


def test_another_playbook_must_share_much_more_than_a_word(engine):
    past(engine, "video-call-degraded", "eu-west-1", "frozen video")
    fresh = engine.open("login-outage", "cy")
    assert engine.similar(fresh.id) == []


def test_action_items_carry_owner_due_priority_kind_ticket_and_close_with_evidence(engine):
    a = past(engine, "video-call-degraded")
    b = past(engine, "login-outage")
    engine.add_action_item(a, "ana", "cap SFU CPU", owner="bo", due="2026-01-10", priority="P2", kind="prevent",
                           ticket="https://tracker/RB-1")
    engine.add_action_item(b, "ana", "runbook for token expiry", kind="process")
    items = {i.id: i for i in engine.action_items()}
    assert set(items) == {f"{a}#1", f"{b}#1"}
    first = items[f"{a}#1"]
    assert (first.owner, first.due, first.priority, first.kind, first.ticket) == \
        ("bo", "2026-01-10", "P2", "prevent", "https://tracker/RB-1")
    assert items[f"{b}#1"].owner == "ana"  # no owner given: who added it

    with pytest.raises(CommandError, match="needs evidence"):
        engine.close_action_item(f"{a}#1", "bo", "  ")
    engine.close_action_item(f"{a}#1", "bo", "https://git/pr/7")
    with pytest.raises(CommandError, match="already closed by bo"):
        engine.close_action_item(f"{a}#1", "bo", "https://git/pr/7")
    with pytest.raises(NotFoundError, match="no action item #9"):
        engine.close_action_item(f"{a}#9", "bo", "x")
    closed = {i.id: i for i in engine.action_items()}[f"{a}#1"]
    assert (closed.open, closed.closed_by, closed.evidence, closed.evidence_kind) == \
        (False, "bo", "https://git/pr/7", "link")
    # the closing is an event in the incident's log, not a row someone can rewrite
    assert engine.state(a).events[-1].type == "action_item_closed"


@pytest.mark.parametrize("fields, message", [({"due": "tomorrow"}, "not a date"), ({"kind": "fix"}, "unknown kind"),
                                             ({"priority": "high"}, "unknown priority")])
def test_bad_action_item_fields_are_refused_naming_what_is_valid(engine, fields, message):
    a = past(engine, "login-outage")
    with pytest.raises(UsageError, match=message):
        engine.add_action_item(a, "ana", "x", **fields)
    assert engine.action_items() == []


def test_drill_evidence_must_be_a_drill_that_passed(engine):
    a = past(engine, "video-call-degraded")
    engine.add_action_item(a, "ana", "rehearse the fallback")
    real = past(engine, "login-outage")
    with pytest.raises(CommandError, match="is not a drill"):
        engine.close_action_item(f"{a}#1", "ana", real, "drill")
    drill = engine.open("video-call-degraded", "ana", drill=True)
    with pytest.raises(CommandError, match=r"did not pass \(it is not resolved"):
        engine.close_action_item(f"{a}#1", "ana", drill.id, "drill")
    engine.acknowledge(drill.id, "ana")
    engine.resolve(drill.id, "ana")
    engine.close_action_item(f"{a}#1", "ana", drill.id, "drill")
    assert not engine.action_items()[0].open


def test_overdue_items_remind_their_owners_through_notify_once_a_day(engine):
    a = past(engine, "login-outage")
    today = engine.clock.now().date()
    engine.add_action_item(a, "ana", "late one", owner="bo", due=str(today.replace(day=1) if today.day > 1
                                                                      else today.replace(month=today.month - 1)))
    engine.add_action_item(a, "ana", "not due", owner="bo", due="2999-01-01")
    engine.add_action_item(a, "ana", "no date", owner="bo")
    sent = engine.remind_overdue("cron")
    assert [(s["id"], s["owner"], s["delivered"]) for s in sent] == [(f"{a}#1", "bo", 1)]
    reminded = [e for e in engine.state(a).events if e.type == "action_item_reminded"]
    assert [(e.record.item, e.record.owner, e.actor) for e in reminded] == [(1, "bo", "cron")]
    assert engine.remind_overdue("cron") == []  # once a day
    engine.clock.advance(days=1)
    assert len(engine.remind_overdue("cron")) == 1
    engine.close_action_item(f"{a}#1", "bo", "https://x")
    engine.clock.advance(days=1)
    assert engine.remind_overdue("cron") == []


def test_the_review_is_kept_in_the_log_and_the_postmortem_shows_the_latest(engine):
    a = past(engine, "video-call-degraded", "eu-west-1", mitigate=True)
    engine.write_review(a, "ana", "root-cause", "a bad deploy")
    engine.write_review(a, "bo", "root-cause", "SFU CPU saturation after the 1.2 deploy")
    engine.write_review(a, "bo", "went-well", "the fallback worked")
    with pytest.raises(UsageError, match="unknown review section 'cause'"):
        engine.write_review(a, "bo", "cause", "x")
    state = engine.state(a)
    assert [e.record.text for e in state.events if e.type == "review_written"][:2] == \
        ["a bad deploy", "SFU CPU saturation after the 1.2 deploy"]
    md = export_markdown(state)
    root = md.split("## Root cause\n\n", 1)[1].split("\n## ", 1)[0]
    assert "SFU CPU saturation after the 1.2 deploy" in root and "a bad deploy" not in root and "bo" in root
    assert "the fallback worked" in md.split("### What went well", 1)[1].split("###", 1)[0]
    assert "- Review by: ana, bo\n" in md


def test_the_postmortem_follows_the_google_sre_template(engine):
    a = past(engine, "video-call-degraded", "eu-west-1", mitigate=True, item="alert on SFU CPU")
    md = export_markdown(engine.state(a))
    headings = [h for h in re.findall(r"^##+ (.+)$", md, re.M)]
    order = ["Summary", "Impact", "Detection", "Responders", "Metrics", "Messages posted", "Key moments",
             "Timeline", "Trigger", "Root cause", "Resolution", "Recovery", "Lessons learned", "What went well",
             "What went wrong", "Where we got lucky", "Action items"]
    assert [h for h in headings if h in order] == order
    impact = md.split("## Impact", 1)[1].split("## Detection", 1)[0]
    assert "region=eu-west-1" in impact and "Users affected for: 0s from open to mitigation" in impact
    assert "Reported by a person: ana" in md
    assert "- bo:" in md.split("## Responders", 1)[1]
    assert f"| {a}#1 | alert on SFU CPU | detect |" in md


def test_a_store_that_does_not_search_finds_nothing_and_indexes_nothing(catalog):
    engine = Engine(MemoryStore(), VirtualClock(), None, catalog)
    state = engine.open("login-outage", "ana")
    assert engine.similar(state.id) == []


def test_a_command_on_a_big_incident_leaves_its_words_to_reindex(engine, store_location, catalog, monkeypatch):
    """A command on an incident read from its checkpoint does not read the whole log to rebuild
    its words; `reindex` does, and the early note is found again."""
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "50")
    big = engine.open("video-call-degraded", "ana").id
    engine.note(big, "ana", "quokka sighting in the SFU logs")
    for n in range(300):
        engine.note(big, "ana", f"poll {n}")
    engine.clock.advance(hours=1)
    fresh = Engine(open_store(store_location), engine.clock, None, catalog)
    try:
        fresh.write_review(big, "ana", "trigger", "a deploy")
        assert big in fresh.store.search_behind()
        assert fresh.reindex() >= 1 and big not in fresh.store.search_behind()
        now = fresh.open("video-call-degraded", "cy")
        fresh.note(now.id, "cy", "quokka again")
        assert fresh.similar(now.id)[0]["incident"] == big
    finally:
        fresh.store.close()
