"""Handing off to something that is not a playbook: a vendor's support, a security process,
another team. Recorded as handed off (who, how to reach them, the instructions, as shown); the
incident stays open and goes on, or resolves, as the step says."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.engine.metrics import export_json, export_markdown
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

CATALOG = Path(__file__).parent / "lang_catalog"
VENDOR = "Acme Shield support (eu-west)"


@pytest.fixture
def engine(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def opened(engine) -> str:
    iid = engine.open("ddos-handoff", "ana").id
    engine.assign(iid, "ana", "commander", "bo")
    return iid


def test_a_vendor_handoff_is_recorded_as_shown_and_the_incident_goes_on(engine):
    iid = opened(engine)
    engine.approve(iid, "bo", "to-vendor")
    events = engine.complete(iid, "ana", "to-vendor")
    (handed,) = [e for e in events if e.type == "handed_off"]
    assert handed.data == {"step": "to-vendor", "playbook": None, "incident": None, "to": VENDOR,
                           "contact": "+1 555 0100, https://support.acme.example",
                           "instructions": "Give them the start of the attack and the region eu-west.",
                           "resolves": False}
    assert handed.record.describe() == (f"handed off to {VENDOR} (contact: +1 555 0100, "
                                        "https://support.acme.example); the incident stays open")
    state = engine.state(iid)
    assert not state.resolved and state.current["main"] == "watch"
    assert [(h["to"], h["by"]) for h in state.handed_to] == [(VENDOR, "ana")]
    # what was recorded stays, whatever the parameters say later
    engine.set_parameter(iid, "ana", "region", "us-east")
    assert engine.state(iid).handed_to[0]["to"] == VENDOR


def test_a_handoff_that_resolves_ends_the_incident(engine):
    iid = opened(engine)
    engine.approve(iid, "bo", "to-vendor")
    engine.complete(iid, "ana", "to-vendor")
    engine.complete(iid, "ana", "watch")
    events = engine.complete(iid, "ana", "to-security")
    assert [e.type for e in events][-1] == "resolved"
    state = engine.state(iid)
    assert state.resolved and [h["to"] for h in state.handed_to] == [VENDOR, "Security on-call"]
    assert state.handed_to[1]["resolves"]


def test_the_approval_covers_who_it_is_handed_to(engine):
    iid = opened(engine)
    engine.approve(iid, "bo", "to-vendor")
    engine.set_parameter(iid, "ana", "region", "us-east")  # another vendor desk than the one approved
    with pytest.raises(CommandError, match=r"approval was for handoff \"Acme Shield support \(eu-west\)\"; it now "
                                           r"reads \"Acme Shield support \(us-east\)\""):
        engine.complete(iid, "ana", "to-vendor")
    engine.approve(iid, "bo", "to-vendor")
    engine.complete(iid, "ana", "to-vendor")
    assert engine.state(iid).handed_to[0]["to"] == "Acme Shield support (us-east)"


@pytest.mark.parametrize("change, path, message", [
    ("    to: {name: Security on-call, contact: security@example.com}\n    resolves: true\n",
     "steps[2]", "a handoff step hands over either to a playbook (playbook: ID) or to someone who is not one "
                 "(to: {name: ..., contact: ...}); give one of them"),
    ("    resolves: true\n", "steps[2]", "a handoff step hands over either to a playbook (playbook: ID) or to "
                                         "someone who is not one (to: {name: ..., contact: ...}); give only one"),
])
def test_lint_wants_a_playbook_or_someone_else(tmp_path, change, path, message):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    text = (CATALOG / "handoff-to.yaml").read_text()
    replaced = "" if "to:" in change else "    playbook: paged-by-label\n    resolves: true\n"
    (tmp_path / "p.yaml").write_text(text.replace(change, replaced) if "to:" in change
                                     else text.replace("    resolves: true\n", replaced))
    (tmp_path / "other.yaml").write_text((CATALOG / "paging.yaml").read_text())
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [(path, message)]


def test_lint_resolves_is_only_for_a_handoff_to_someone_else(tmp_path):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "other.yaml").write_text((CATALOG / "paging.yaml").read_text())
    (tmp_path / "p.yaml").write_text((CATALOG / "handoff-to.yaml").read_text().replace(
        "    to: {name: Security on-call, contact: security@example.com}\n", "    playbook: paged-by-label\n"))
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [
        ("steps[2].resolves", "a handoff to a playbook always resolves this incident; resolves: is for a handoff "
                              "with to:")]


def test_exports_name_who_it_was_handed_to(engine):
    iid = opened(engine)
    engine.approve(iid, "bo", "to-vendor")
    engine.complete(iid, "ana", "to-vendor")
    state = engine.state(iid)
    assert export_json(state)["handed_to"][0]["contact"] == "+1 555 0100, https://support.acme.example"
    assert ("- Handed off to: Acme Shield support (eu-west) (contact: +1 555 0100, https://support.acme.example; "
            "09:00:00 by ana)") in export_markdown(state)


def test_cli_show_says_whom_it_hands_to_and_whom_it_was_handed_to(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "ddos-handoff").strip()
    rb("incident", "assign", iid, "commander", "bo")
    shown = rb("incident", "show", iid)
    assert (f"hand off to {VENDOR} (contact: +1 555 0100, https://support.acme.example); the incident stays open"
            in shown)
    rb.env["RUNBOOK_USER"] = "bo"
    rb("incident", "approve", iid, "to-vendor")
    rb("incident", "step", iid, "to-vendor", "--done")
    shown = rb("incident", "show", iid)
    assert (f"handed off to {VENDOR} (contact: +1 555 0100, https://support.acme.example; step to-vendor, by bo; "
            "the incident stays open)") in shown
    assert json.loads(rb("incident", "show", iid, "--json"))["handed_to"][0]["to"] == VENDOR


def test_tui_shows_the_target_and_asks_before_handing_off(engine):
    from pilot_helpers import press, settle, widget_text

    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine)
    engine.approve(iid, "bo", "to-vendor")
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(130, 44)) as pilot:
            await settle(pilot)
            assert (f"hand off to {VENDOR} · contact: +1 555 0100, https://support.acme.example · the incident "
                    "stays open") in widget_text(app.screen.query_one("#current-title"))
            await press(pilot, "d")
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")

    asyncio.run(scenario())
    assert [h["to"] for h in engine.state(iid).handed_to] == [VENDOR]


def test_cli_show_playbook_says_whom_each_step_hands_to(rb):
    rb.catalogs = [CATALOG]
    shown = rb("show", "ddos-handoff")
    assert (f"hands off to {VENDOR} (contact: +1 555 0100, https://support.acme.example), the incident staying "
            "open") in shown
    assert "hands off to Security on-call (contact: security@example.com), resolving the incident" in shown
