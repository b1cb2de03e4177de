"""A communicate step with compose: true posts what the responder writes at posting time (the
template is the draft offered), recorded as posted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def test_the_message_written_is_the_message_posted(engine):
    iid = engine.open("ddos-external", "ana").id
    events = engine.complete(iid, "ana", "external", message="  Some customers see slow pages; we are on it. ")
    posted = [e for e in events if e.type == "message_posted"]
    assert [(e.data["text"], e.data["written"], e.data["channel"]) for e in posted] == [
        ("Some customers see slow pages; we are on it.", True, "status-page")]
    assert engine.state(iid).messages[0].record.text == "Some customers see slow pages; we are on it."


def test_a_compose_step_needs_the_message(engine):
    iid = engine.open("ddos-external", "ana").id
    with pytest.raises(CommandError, match=r"step 'external' posts what you write: give the message, e.g. "
                                           r"`runbook incident step .* external --done --message TEXT`"):
        engine.complete(iid, "ana", "external")


def test_a_template_step_takes_no_message_and_records_as_before(engine):
    iid = engine.open("ddos-external", "ana").id
    engine.complete(iid, "ana", "external", message="ok")
    with pytest.raises(CommandError, match="only a step with compose: true takes a message"):
        engine.complete(iid, "ana", "internal", message="x")
    posted = [e for e in engine.complete(iid, "ana", "internal") if e.type == "message_posted"]
    assert "written" not in posted[0].data


def test_cli_posts_the_message_given(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "ddos-external").strip()
    out = rb("incident", "step", iid, "--done", "--message", "Mitigation in progress.")
    assert "message posted to status-page · customers by step external: Mitigation in progress." in out
    assert "Mitigation in progress." in rb("incident", "export", iid)


def test_tui_offers_the_draft_and_posts_what_was_written(engine):
    from pilot_helpers import press, settle
    from textual.widgets import Input

    from runbook.tui.app import build_app
    from runbook.tui.dialogs.prompt import TextPrompt

    iid = engine.open("ddos-external", "ana").id
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(130, 44)) as pilot:
            await settle(pilot)
            await press(pilot, "d")
            assert isinstance(app.screen, TextPrompt)
            field = app.screen.query_one("#prompt-input", Input)
            assert field.value == "We are mitigating a traffic flood affecting edge."  # the draft, filled
            field.value = "We are mitigating a traffic flood; checkout may be slow."
            await press(pilot, "enter")
            assert not isinstance(app.screen, TextPrompt)

    asyncio.run(scenario())
    assert engine.state(iid).messages[0].record.text == "We are mitigating a traffic flood; checkout may be slow."


def test_an_approval_binds_the_text_written_and_another_text_is_refused(engine):
    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    with pytest.raises(CommandError, match=r"step 'external' posts what is written: approve the text it is to post, "
                                           r"e\.g\. `runbook incident approve .* external --message TEXT`"):
        engine.approve(iid, "ana", "external")
    [granted] = engine.approve(iid, "ana", "external", message=" Checkout may be slow; we are on it. ")
    assert granted.data["content"]["composed"] == "Checkout may be slow; we are on it."
    with pytest.raises(CommandError, match=r"step 'external': approval was for composed \"Checkout may be slow; we "
                                           r"are on it\.\"; it now reads \"Checkout is slow\.\": approve again"):
        engine.complete(iid, "ana", "external", message="Checkout is slow.")
    posted = [e for e in engine.complete(iid, "ana", "external") if e.type == "message_posted"]  # the text approved
    assert (posted[0].data["text"], posted[0].data["written"]) == ("Checkout may be slow; we are on it.", True)


def test_approving_another_text_approves_again(engine):
    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    engine.approve(iid, "ana", "external", message="First words.")
    with pytest.raises(CommandError, match="already approved by ana"):
        engine.approve(iid, "ana", "external", message="First words.")
    engine.approve(iid, "ana", "external", message="Better words.")
    posted = [e for e in engine.complete(iid, "ana", "external", message="Better words.") if e.type == "message_posted"]
    assert posted[0].data["text"] == "Better words."


def test_an_approval_binds_what_the_output_must_say(engine):
    iid = engine.open("ddos-approved", "ana").id
    [granted] = engine.approve(iid, "ana", "scrub-check")
    assert granted.data["content"]["expect"] == "output matches up$"
    assert "Post this" not in str(granted.data["content"])


def test_an_older_approval_without_these_fields_still_covers_its_step(engine):
    """Logs written before approvals bound expect: and composed text: what they recorded is compared."""
    from runbook.engine import approvals
    from runbook.engine.events import ApprovalGranted

    iid = engine.open("ddos-approved", "ana").id
    state = engine.state(iid)
    step = state.playbook.step("scrub-check")
    older = {k: v for k, v in approvals.covered(state, step).items() if k != "expect"}
    engine.command(iid, "ana", lambda s: [ApprovalGranted("scrub-check", "commander", "", "", older,
                                                          approvals.digest(older))])
    assert approvals.approved(engine.state(iid), step)
    engine.complete(iid, "ana", "scrub-check")
    state = engine.state(iid)
    external = state.playbook.step("external")
    older = {k: v for k, v in approvals.covered(state, external).items()}  # no composed text: any text posts
    engine.command(iid, "ana", lambda s: [ApprovalGranted("external", "commander", "", "", older,
                                                          approvals.digest(older))])
    posted = [e for e in engine.complete(iid, "ana", "external", message="Anything.") if e.type == "message_posted"]
    assert posted[0].data["text"] == "Anything."


def test_cli_approves_a_composed_text(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "ddos-approved").strip()
    rb("incident", "step", iid, "scrub-check", "--skip", "later")
    out = rb("incident", "approve", iid, "external", "--message", "We are on it.")
    assert "composed: We are on it." in out
    rb("incident", "step", iid, "external", "--done")
    assert "We are on it." in rb("incident", "export", iid)


def test_tui_approves_the_text_written_then_posts_it(engine):
    from pilot_helpers import press, settle
    from textual.widgets import Input

    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog
    from runbook.tui.dialogs.prompt import TextPrompt

    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "d")  # nobody holds commander: doing it approves the text written, then posts it
            assert isinstance(app.screen, TextPrompt)
            field = app.screen.query_one("#prompt-input", Input)
            assert field.value == "We are mitigating a traffic flood affecting edge."
            field.value = "Flood mitigated at the edge."
            await press(pilot, "enter")
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")
            await settle(pilot)

    asyncio.run(scenario())
    state = engine.state(iid)
    assert state.steps["external"].approved_content["composed"] == "Flood mitigated at the edge."
    assert state.messages[0].record.text == "Flood mitigated at the edge."


@pytest.mark.parametrize("key", ["d", "p"])
def test_tui_approving_a_text_refuses_what_changed_while_its_dialog_was_open(engine, tmp_path, key):
    """d (nobody holds commander: approve the text, then post it) and p send what the dialog showed
    besides the text: a parameter set from another terminal meanwhile is refused, old → new."""
    from pilot_helpers import press, settle
    from textual.widgets import Input

    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog
    from runbook.tui.dialogs.prompt import TextPrompt

    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    other_store = Store(str(tmp_path / "db.sqlite"))
    other = Engine(other_store, engine.clock, engine.plugins, engine.catalog)  # another terminal
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, key)
            assert isinstance(app.screen, TextPrompt)
            app.screen.query_one("#prompt-input", Input).value = "Flood mitigated at the edge."
            await press(pilot, "enter")
            assert isinstance(app.screen, ConfirmDialog)
            assert "prompt: Post this to customers (everywhere)?" in str(app.screen.query_one(".dialog-detail")
                                                                         .render())
            other.set_parameter(iid, "mallory", "region", "EU")
            await press(pilot, "y")
            await settle(pilot)
            return [n.message for n in app._notifications]

    try:
        said = asyncio.run(scenario())
    finally:
        other_store.close()
    assert any("not approved: what step 'external' covers changed since it was shown: prompt "
               "\"Post this to customers (everywhere)?\" → \"Post this to customers (EU)?\"; look again" in n
               for n in said), said
    state = engine.state(iid)
    assert not state.steps["external"].approved and not state.messages  # nothing approved, nothing posted
    assert "approval_granted" not in [e.type for e in state.events]


def test_an_approval_given_what_was_shown_binds_it_and_the_text_apart(engine):
    from runbook.engine import approvals

    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    state = engine.state(iid)
    shown = approvals.covered(state, state.playbook.step("external"))
    engine.set_parameter(iid, "mallory", "region", "EU")
    with pytest.raises(CommandError, match=r"covers changed since it was shown: prompt \"Post this to customers "
                                           r"\(everywhere\)\?\" → \"Post this to customers \(EU\)\?\"; look again"):
        engine.approve(iid, "ana", "external", message="Flood mitigated.", expect=shown)
    with pytest.raises(CommandError, match=r"covers changed since it was shown \(now message: We are mitigating"):
        engine.approve(iid, "ana", "external", message="Flood mitigated.", expect=approvals.digest(shown))
    state = engine.state(iid)
    fresh = approvals.covered(state, state.playbook.step("external"))
    engine.approve(iid, "ana", "external", message="Flood mitigated.", expect=fresh)
    assert engine.state(iid).steps["external"].approved_content["composed"] == "Flood mitigated."


def test_a_step_without_repeat_posting_again_after_a_restart_is_not_numbered(engine):
    """Only posts on a cadence are numbered (repeat:); a plain step's second post is its own again."""
    iid = engine.open("ddos-external", "ana").id
    engine.complete(iid, "ana", "external", message="Flood at the edge.")
    engine.complete(iid, "ana", "internal")
    engine.restart(iid, "ana", "internal", "support missed it")
    engine.complete(iid, "ana", "internal")
    assert [e.record.repeat for e in engine.state(iid).messages if e.record.step == "internal"] == [0, 0]


def test_the_approval_of_a_composed_text_reads_as_that_text_and_the_hints_give_a_text(engine):
    """The timeline names the text approved (what is posted), not the template; the commands each
    refusal suggests are the ones that work for a compose step (approve takes the text)."""
    from runbook.engine.metrics import describe

    iid = engine.open("ddos-approved", "ana").id
    engine.skip(iid, "ana", "scrub-check", "not in this test")
    with pytest.raises(CommandError, match=rf"needs approval by \w+ first \(runbook incident approve {iid} external "
                                           r"--message TEXT\)$"):
        engine.complete(iid, "ana", "external", message="Checkout may be slow.")
    [granted] = engine.approve(iid, "ana", "external", message="Checkout may be slow.")
    assert describe(granted).endswith(' for text "Checkout may be slow."')
    with pytest.raises(CommandError, match=rf"approve again \(runbook incident approve {iid} external --message "
                                           r"TEXT\)$"):
        engine.complete(iid, "ana", "external", message="Checkout is slow.")
