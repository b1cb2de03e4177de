"""The log records words, not only deeds (issue 25, items 1, 2 and the approver's part of 5): an
approval is bound to the rendered content it approved, and a step whose content changed since
waits for a new approval, saying what changed; a communicate step's message is recorded as posted
and every face shows that record; approvers on the CLI see what they approve.

Driven through the engine on a virtual clock, the headless CLI (subprocesses) and the TUI (Pilot),
on tests/words_catalog/grow-volume.yaml (with the fixture catalog's policies)."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pilot_helpers import flat, press, screen_text, settle

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock, approvals
from runbook.engine.events import ApprovalGranted, decode
from runbook.engine.metrics import export_json, export_markdown
from runbook.plugins import PluginHost
from runbook.serve.web import updates
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.views import build_view

HERE = Path(__file__).parent
WORDS = HERE / "words_catalog"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GROW = "python3 -c 'import sys; print('\"'\"'grow'\"'\"', *sys.argv[1:])' pvc/data"  # + the size


@pytest.fixture
def engine(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks"), str(WORDS)]))
    store.close()


def opened(engine) -> str:
    return engine.open("grow-volume", "ana", incident="INC-GROW").id


def types(events) -> list[str]:
    return [e.type for e in events]


def skip_to(engine, iid, step_id):
    while engine.state(iid).current["main"] != step_id:
        engine.skip(iid, "ana", None, "done by hand")


# approvals bound to content ----------------------------------------------------------------------

def test_an_approval_records_what_it_covers_and_its_digest(engine):
    iid = opened(engine)
    [granted] = engine.approve(iid, "ana", "grow")
    content = {"title": "Grow data to 10Gi", "prompt": "Grow data to 10Gi? The volume cannot shrink again.",
               "command": f"{GROW} 10Gi"}
    assert granted.data["content"] == content
    assert granted.data["digest"] == approvals.digest(content)
    # canonical JSON: the same content in another key order has the same digest
    assert approvals.digest(dict(reversed(list(content.items())))) == granted.data["digest"]
    assert approvals.approved(engine.state(iid), engine.state(iid).playbook.step("grow"))
    with pytest.raises(CommandError, match="step 'grow' was already approved by ana"):
        engine.approve(iid, "bo", "grow")


def test_a_parameter_changed_after_approval_refuses_the_run_saying_what_changed(engine):
    iid = opened(engine)
    engine.approve(iid, "ana", "grow")
    engine.set_parameter(iid, "bo", "size", "9000Gi")
    state = engine.state(iid)
    step = state.playbook.step("grow")
    assert state.steps["grow"].approved and not approvals.approved(state, step)  # approved, but for 10Gi
    with pytest.raises(CommandError) as refused:
        engine.run(iid, "bo", "grow")
    assert str(refused.value) == (  # a long field is cut to where it changed
        "step 'grow': approval was for command \"…argv[1:])' pvc/data 10Gi\"; it now reads \"…argv[1:])' pvc/data "
        "9000Gi\" (its prompt and title changed too): approve again (runbook incident approve INC-GROW grow)")
    assert "action_started" not in types(engine.state(iid).events)  # nothing ran
    first = approvals.changes(engine.state(iid), step)[0]
    assert (first.field, first.was, first.now) == ("command", f"{GROW} 10Gi", f"{GROW} 9000Gi")
    engine.approve(iid, "ana", "grow")  # approving again is allowed, and covers 9000Gi
    ran = engine.run(iid, "ana", "grow")
    started = next(e for e in ran if e.type == "action_started")
    assert started.data["argv"][-1] == "9000Gi"


def test_a_changed_field_is_shown_whole_when_short_and_cut_around_the_change_when_long():
    assert approvals.excerpt("grow pvc to 10Gi", "grow pvc to 9000Gi") == ("grow pvc to 10Gi", "grow pvc to 9000Gi")
    before, after = "We paused video in every region. " * 3, " Next update in 30 minutes." * 2
    assert approvals.excerpt(f"{before}SEV2{after}", f"{before}SEV1{after}") == \
        ("…in every region. SEV2 Next update in 30 m…", "…in every region. SEV1 Next update in 30 m…")


def test_the_last_check_before_running_refuses_a_stale_approval_on_every_path(engine):
    """The check on the state the intent is appended to: a retry timer (or any caller that got past
    the command's own check) never runs a command its approval did not cover."""
    iid = opened(engine)
    engine.approve(iid, "ana", "grow")
    engine.set_parameter(iid, "bo", "size", "20Gi")
    step = engine.state(iid).playbook.step("grow")
    with pytest.raises(CommandError,
                       match=r'approval was for command ".* 10Gi"; it now reads ".* 20Gi" .*: approve again'):
        engine.effects.run(iid, "runbook", step)
    assert "action_started" not in types(engine.state(iid).events)


def test_changing_the_value_back_makes_the_approval_cover_the_step_again(engine):
    iid = opened(engine)
    engine.approve(iid, "ana", "grow")
    engine.set_parameter(iid, "bo", "size", "20Gi")
    engine.set_parameter(iid, "bo", "size", "10Gi")
    state = engine.state(iid)
    assert approvals.approved(state, state.playbook.step("grow"))  # the digest is of the content, not the log
    assert "action_finished" in types(engine.run(iid, "ana", "grow"))


def test_time_passing_never_makes_an_approval_stale(engine):
    """{elapsed} is covered as the field itself: what the approver decided is the wording."""
    iid = opened(engine)
    skip_to(engine, iid, "announce")
    [granted] = engine.approve(iid, "ana", "announce")
    assert granted.data["content"]["message"] == "Uploads are slow while we grow storage to 10Gi (‹elapsed› in)."
    engine.clock.advance(minutes=25)
    posted = engine.complete(iid, "ana", "announce")
    assert posted[0].type == "message_posted"
    assert posted[0].record.text == "Uploads are slow while we grow storage to 10Gi (25m in)."


def test_a_changed_message_waits_for_a_new_approval(engine):
    iid = opened(engine)
    skip_to(engine, iid, "announce")
    engine.approve(iid, "ana", "announce")
    engine.set_parameter(iid, "bo", "size", "30Gi")
    with pytest.raises(CommandError,
                       match=r"approval was for message \"… we grow storage to 10Gi \(‹elapsed› in\)\.\"; "
                             r"it now reads \"… we grow storage to 30Gi \(‹elapsed› in\)\.\": approve again"):
        engine.complete(iid, "ana", "announce")
    assert engine.state(iid).messages == []  # nothing was posted


def test_a_degrade_step_approval_covers_its_flags_and_the_gate_holds_by_hand_too(engine):
    iid = opened(engine)
    skip_to(engine, iid, "pause-uploads")
    with pytest.raises(CommandError, match="step 'pause-uploads' needs approval by commander first"):
        engine.degrade(iid, "ana", "uploads-paused")  # by hand, around the step: the same gate
    [granted] = engine.approve(iid, "ana", "pause-uploads")
    assert granted.data["content"] == {"title": "Pause uploads", "prompt": "Pause every upload?",
                                       "degradation": "uploads-paused",
                                       "flags": {"storage.uploads.enabled": False}}
    assert "degradation_applied" in types(engine.complete(iid, "ana", "pause-uploads"))


def test_a_stale_approval_by_someone_else_still_needs_an_override(engine):
    iid = opened(engine)
    engine.assign(iid, "ana", "commander", "bo")
    engine.approve(iid, "bo", "grow")
    engine.set_parameter(iid, "ana", "size", "40Gi")
    with pytest.raises(CommandError, match="approved by the commander, held by bo, not ana"):
        engine.approve(iid, "ana", "grow")
    [granted] = engine.approve(iid, "ana", "grow", override="bo asleep, volume at 99%")
    assert granted.data["override"] == "bo asleep, volume at 99%" and "40Gi" in granted.data["content"]["command"]


def test_an_approval_from_an_older_log_without_content_behaves_as_before(engine):
    iid = opened(engine)
    engine.command(iid, "ana", lambda state: [ApprovalGranted("grow", "commander", "")])  # as 0.x wrote it
    stored = next(e for e in engine.state(iid).events if e.type == "approval_granted")
    assert stored.data == {"step": "grow", "role": "commander", "holder": "", "override": ""}
    assert decode("approval_granted", stored.data).content is None
    engine.set_parameter(iid, "bo", "size", "50Gi")
    state = engine.state(iid)
    assert approvals.approved(state, state.playbook.step("grow"))  # not bound to content: as approvals always were
    assert "action_finished" in types(engine.run(iid, "ana", "grow"))


# posted words kept ---------------------------------------------------------------------------------

def test_a_posted_message_is_recorded_and_every_face_shows_the_record(engine):
    iid = opened(engine)
    skip_to(engine, iid, "announce")
    engine.approve(iid, "ana", "announce")
    engine.clock.advance(minutes=5)
    posted = engine.complete(iid, "liz", "announce")
    assert types(posted)[:2] == ["message_posted", "step_completed"]
    assert posted[0].data == {"step": "announce", "text": "Uploads are slow while we grow storage to 10Gi (5m in).",
                              "title": "Tell customers about data", "channel": "Status page",
                              "audience": "customers", "phase": "response",
                              "status": "investigating"}  # the public phase it announced: nothing mitigated yet
    text = "Uploads are slow while we grow storage to 10Gi (5m in)."
    engine.clock.advance(minutes=5)
    engine.set_parameter(iid, "bo", "size", "9000Gi")
    engine.set_parameter(iid, "bo", "pvc", "archive")
    state = engine.state(iid)
    [update] = updates(state)  # the status page
    assert (update.text, update.title, update.post_to) == (text, "Tell customers about data", "Status page · customers")
    md = export_markdown(state)  # the Markdown export and the postmortem
    assert f"  > {text}" in md and "9000Gi" not in md.split("## Messages posted")[1].split("## Command output")[0]
    assert export_json(state)["messages"] == [{
        "step": "announce", "title": "Tell customers about data", "text": text, "channel": "Status page",
        "audience": "customers", "phase": "response", "status": "investigating", "at": posted[0].at.isoformat(),
        "by": "liz", "written": False, "repeat": 0,
        "seq": posted[0].seq, "posted": True}]
    timeline = [line.text for line in build_view(state, engine.clock.now()).timeline]
    # named by the title it recorded when it posted, not by its id
    assert f"message posted to Status page · customers by step “Tell customers about data”: {text}" in timeline


def test_a_message_with_an_unfilled_value_cannot_be_posted_and_says_how_to_set_it(engine):
    iid = opened(engine)
    engine.resolve(iid, "ana")
    assert engine.state(iid).current_steps() == ["share-postmortem"]
    with pytest.raises(CommandError) as refused:
        engine.complete(iid, "ana", "share-postmortem")
    assert str(refused.value) == ("step 'share-postmortem' not posted: parameter postmortem_url has no value; set it "
                                  "with `runbook incident param INC-GROW postmortem_url=VALUE`")
    assert engine.state(iid).messages == []
    engine.set_parameter(iid, "ana", "postmortem_url", "https://wiki.example/pm/1")  # allowed in the follow-up
    posted = engine.complete(iid, "ana", "share-postmortem")
    assert posted[0].record.text == "Postmortem of INC-GROW: https://wiki.example/pm/1"
    assert posted[0].record.phase == "follow-up"
    assert types(posted)[-1] == "closed"


# the CLI -------------------------------------------------------------------------------------------

@pytest.fixture
def rb(rb, fixture_catalog, tmp_path):
    rb.cwd, rb.catalogs = tmp_path, [fixture_catalog / "playbooks", WORDS]
    return rb


def test_cli_approver_sees_the_prompt_and_a_changed_parameter_refuses_the_run(rb):
    iid = rb("incident", "open", "grow-volume").strip()
    shown = rb("incident", "show", iid)
    assert "grow: Grow data to 10Gi (action) (needs approval by commander)" in shown
    assert f"approval by commander needed (runbook incident approve {iid} grow); it covers:" in shown
    assert "          prompt: Grow data to 10Gi? The volume cannot shrink again." in shown
    assert f"          $ {GROW} 10Gi" in shown
    approved = rb("incident", "approve", iid, "grow")
    assert "step grow approved (as commander, no holder)" in approved
    assert "    prompt: Grow data to 10Gi? The volume cannot shrink again." in approved
    assert f"    $ {GROW} 10Gi" in approved and "  digest: sha256:" in approved
    rb("incident", "param", iid, "size=9000Gi")
    shown = rb("incident", "show", iid)
    assert "(needs approval by commander again)" in shown
    assert "approval by ana is stale: approval was for command \"…argv[1:])' pvc/data 10Gi\"; it now reads " \
           "\"…argv[1:])' pvc/data 9000Gi\"" in shown
    assert f"        approve again (runbook incident approve {iid} grow); that covers:\n" \
           f"          title: Grow data to 9000Gi\n" in shown
    refused = rb("incident", "step", iid, "--run", expect=5)
    assert ("approval was for command \"…argv[1:])' pvc/data 10Gi\"; it now reads \"…argv[1:])' pvc/data 9000Gi\" "
            f"(its prompt and title changed too): approve again (runbook incident approve {iid} grow)") in refused
    gate = json.loads(rb("incident", "show", iid, "--json"))["approvals"]["grow"]
    assert (gate["approved"], gate["approved_by"]) == (False, "ana")
    assert gate["approved_content"]["command"] == f"{GROW} 10Gi" and gate["covers"]["command"] == f"{GROW} 9000Gi"
    assert gate["stale"].startswith("approval was for command")
    assert [c["field"] for c in gate["changes"]] == ["command", "prompt", "title"]
    assert gate["prompt"] == "Grow data to 9000Gi? The volume cannot shrink again."
    again = json.loads(rb("incident", "approve", iid, "grow", "--json"))
    assert again[0]["data"]["content"]["command"] == f"{GROW} 9000Gi"
    assert again[0]["data"]["digest"] == approvals.digest(again[0]["data"]["content"])
    shown = rb("incident", "show", iid)
    assert "(needs approval" not in shown and "(as commander), covering:" in shown
    assert f"          $ {GROW} 9000Gi" in shown
    ran = rb("incident", "step", iid, "--run")
    assert f"running {GROW} 9000Gi" in ran and f"action ok: succeeded: {GROW} 9000Gi" in ran


def test_cli_shows_posted_messages_as_posted_and_refuses_an_unfilled_one(rb):
    iid = rb("incident", "open", "grow-volume").strip()
    rb("incident", "step", iid, "--skip", "grown by hand")
    drafts = json.loads(rb("incident", "show", iid, "--json"))["messages"]
    assert drafts == [{"step": "announce", "title": "Tell customers about data", "text": drafts[0]["text"],
                       "channel": "Status page", "audience": "customers", "posted": False, "blocked": None}]
    rb("incident", "approve", iid)
    rb("incident", "step", iid, "--done", "--as", "liz")
    rb("incident", "param", iid, "size=9000Gi")
    data = json.loads(rb("incident", "show", iid, "--json"))
    [posted] = data["messages"]
    assert posted["posted"] and posted["by"] == "liz" and posted["phase"] == "response"
    assert posted["text"].startswith("Uploads are slow while we grow storage to 10Gi (")
    shown = rb("incident", "show", iid)
    assert "  messages posted:" in shown
    assert f"      | {posted['text']}" in shown and "liz posted to Status page · customers (step announce, response):" \
        in shown
    md = rb("incident", "export", iid, "--format", "md")
    assert f"  > {posted['text']}" in md
    assert json.loads(rb("incident", "export", iid, "--format", "json"))["messages"][0]["text"] == posted["text"]
    rb("incident", "resolve", iid)
    shown = rb("incident", "show", iid)
    assert (f"cannot post yet: step 'share-postmortem' not posted: parameter postmortem_url has no value; set it "
            f"with `runbook incident param {iid} postmortem_url=VALUE`") in shown
    refused = rb("incident", "step", iid, "--done", expect=5)
    assert f"set it with `runbook incident param {iid} postmortem_url=VALUE`" in refused
    rb("incident", "param", iid, "postmortem_url=https://wiki.example/pm/7")
    assert f"Postmortem of {iid}: https://wiki.example/pm/7" in rb("incident", "step", iid, "--done")


# the TUI -------------------------------------------------------------------------------------------

def test_tui_shows_a_stale_approval_as_needing_approval_again_with_what_changed(engine):
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            engine.approve(iid, "ana", "grow")
            app.screen.refresh_view()
            await settle(pilot)
            text = flat(screen_text(app))
            assert "approved by ana" in text and "p approve" not in text
            engine.set_parameter(iid, "bo", "size", "9000Gi")
            app.screen.refresh_view()
            await settle(pilot)
            text = flat(screen_text(app))
            assert "needs approval by commander again (p): approval was for command" in text
            assert "pvc/data 10Gi" in text and "pvc/data 9000Gi" in text
            # the key hints offer it again: approving and running in one confirmation (nobody holds commander)
            assert "u approve (as commander) and run it" in text
            assert any("needs approval by commander again" in n.message for n in app._notifications)
            await press(pilot, "p")
            assert isinstance(app.screen, ConfirmDialog)
            detail = str(app.screen.query_one(".dialog-detail").render())
            assert "Was approved for something else — approval was for command" in detail
            assert f"$ {GROW} 9000Gi" in detail and "prompt: Grow data to 9000Gi?" in detail
            await press(pilot, "y")
            state = engine.state(iid)
            assert approvals.approved(state, state.playbook.step("grow"))
            assert "9000Gi" in state.steps["grow"].approved_content["command"]
            assert "approved by ana" in flat(screen_text(app))

    asyncio.run(scenario())


def test_a_degradation_applied_on_a_gated_steps_behalf_needs_its_approval(tmp_path):
    """engine.degrade(..., step=) is the step's own flip: without the step's approval it is refused."""
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(HERE.parent / "playbooks")]))
    try:
        iid = engine.open("video-call-degraded", "ana").id
        with pytest.raises(CommandError, match="needs approval by commander"):
            engine.degrade(iid, "ana", "audio-only", step="audio-only")
        assert not engine.state(iid).degradations["audio-only"].touched
    finally:
        store.close()


def test_an_approval_is_refused_when_what_it_covers_changed_since_it_was_shown(engine):
    iid = opened(engine)
    shown = approvals.digest(approvals.covered(engine.state(iid), engine.state(iid).playbook.step("grow")))
    engine.set_parameter(iid, "mallory", "size", "9000Gi")  # while the approver reads the dialog
    with pytest.raises(CommandError, match=r"not approved: what step 'grow' covers changed since it was shown "
                                           r"\(now \$ .*9000Gi\); look again"):
        engine.approve(iid, "ana", "grow", expect=shown)
    assert not engine.state(iid).steps["grow"].approved
    fresh = approvals.digest(approvals.covered(engine.state(iid), engine.state(iid).playbook.step("grow")))
    assert types(engine.approve(iid, "ana", "grow", expect=fresh)) == ["approval_granted"]


def test_a_run_is_refused_when_the_command_changed_since_it_was_confirmed(engine):
    from runbook.engine import texts

    iid = opened(engine)
    engine.approve(iid, "ana", "grow")
    confirmed = texts.shown_command(engine.state(iid), engine.state(iid).playbook.step("grow"))
    engine.set_parameter(iid, "mallory", "size", "9000Gi")
    engine.approve(iid, "ana", "grow")  # approved again for 9000Gi, while the dialog still said 10Gi
    with pytest.raises(CommandError, match=r"not run: step 'grow' would now run `.*9000Gi`, not the `.*10Gi`"):
        engine.run(iid, "ana", "grow", expect=confirmed)
    assert "action_started" not in types(engine.state(iid).events)


def test_tui_approve_and_run_refuse_what_changed_while_the_dialog_was_open(engine):
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "p")
            assert isinstance(app.screen, ConfirmDialog)
            assert f"$ {GROW} 10Gi" in str(app.screen.query_one(".dialog-detail").render())
            engine.set_parameter(iid, "mallory", "size", "9000Gi")  # another terminal, meanwhile
            await press(pilot, "y")
            await settle(pilot)
            assert not engine.state(iid).steps["grow"].approved  # 9000Gi was never shown: not approved
            assert any("covers changed since it was shown" in n.message for n in app._notifications)
            engine.approve(iid, "ana", "grow")
            app.screen.refresh_view()
            await settle(pilot)
            await press(pilot, "u")
            assert isinstance(app.screen, ConfirmDialog)
            engine.set_parameter(iid, "mallory", "size", "5Gi")
            engine.approve(iid, "ana", "grow")
            await press(pilot, "y")
            await settle(pilot)
            assert "action_started" not in types(engine.state(iid).events)
            assert any("not run: step 'grow' would now run" in n.message for n in app._notifications)

    asyncio.run(scenario())


def test_a_stale_message_approval_shows_line_breaks_as_such(tmp_path, fixture_catalog):
    words = tmp_path / "words"
    shutil.copytree(WORDS, words)
    pb = words / "grow-volume.yaml"
    pb.write_text(pb.read_text().replace('template: "Uploads are slow while we grow storage to {size} ({elapsed} in)."',
                                         'template: "Uploads are slow.\\nWe grow storage to {size}."'))
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks"), str(words)]))
    try:
        iid = opened(engine)
        skip_to(engine, iid, "announce")
        engine.approve(iid, "ana", "announce")
        engine.set_parameter(iid, "bo", "size", "30Gi")
        with pytest.raises(CommandError) as refused:
            engine.complete(iid, "ana", "announce")
        assert ('approval was for message "Uploads are slow.⏎We grow storage to 10Gi."; '
                'it now reads "Uploads are slow.⏎We grow storage to 30Gi."') in str(refused.value)
    finally:
        store.close()
