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
