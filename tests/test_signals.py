"""A step that waits for a signal (wait_for: {signal: NAME}): refused until someone gives it
(`runbook incident signal`, or G in the TUI), recorded with who gave it, checked by lint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.service import EngineService
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.confirm import ConfirmDialog

HERE = Path(__file__).parent
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: go-public
title: Going public
service: rtc
severity: SEV2
escalation: ladder
roles:
  commander: {title: Incident commander}
  liaison: {title: Customer liaison}
symptoms: [{id: s, summary: Something}]
steps:
  - id: assess
    title: Assess the impact
tracks:
  comms:
    role: liaison
    steps:
      - id: post-publicly
        kind: communicate
        title: Post on the status page
        wait_for: {signal: go-public}
        template: "We are aware of problems with {title}."
"""


@pytest.fixture
def catalog_dir(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tmp_path / "catalog" / "pb.yaml").write_text(PLAYBOOK)
    return tmp_path / "catalog"


@pytest.fixture
def engine(catalog_dir, tmp_path):
    store = Store(str(tmp_path / "db.sqlite"), key=None)
    yield Engine(store, VirtualClock(START), None, load([str(catalog_dir)]))
    store.close()


def test_a_step_waiting_for_a_signal_goes_ahead_once_it_is_given(engine):
    iid = engine.open("go-public", "ana").id
    with pytest.raises(CommandError, match="waits for the signal 'go-public'; whoever decides gives it with "
                                           f"`runbook incident signal {iid} go-public`"):
        engine.complete(iid, "liz", "post-publicly")
    with pytest.raises(CommandError, match="no step of go-public waits for a signal 'go-publik'; did you mean "
                                           "'go-public'"):
        engine.signal(iid, "ana", "go-publik")
    [given] = engine.signal(iid, "ana", "go-public")
    assert given.record.describe() == "signal given: go-public" and given.record.loud == "warning"
    with pytest.raises(CommandError, match="already given by ana at 09:00:00"):
        engine.signal(iid, "bo", "go-public")
    engine.complete(iid, "liz", "post-publicly")
    assert engine.state(iid).steps["post-publicly"].status == "done"


def test_the_cli_gives_the_signal_and_show_says_what_waits(rb, catalog_dir, tmp_path):
    rb.catalogs = [catalog_dir]
    rb.env["RUNBOOK_PLUGINS_DIR"] = str(tmp_path)
    iid = rb("incident", "open", "go-public").strip()
    assert "waiting for signal go-public" in rb("incident", "show", iid)
    assert "waits for the signal 'go-public'" in rb("incident", "step", iid, "post-publicly", "--done", expect=5)
    given = rb("incident", "signal", iid, "go-public", "--as", "bo")
    assert "bo" in given and "signal given: go-public" in given
    rb("incident", "step", iid, "post-publicly", "--done")


def test_the_tui_shows_the_wait_and_g_gives_the_signal(engine):
    iid = engine.open("go-public", "ana", incident="INC-SIGNAL").id
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def settle(pilot):
        for _ in range(5):
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("tab")  # the comms track, whose step waits
            await settle(pilot)
            panel = str(app.screen.query_one("#current-title").render())
            await pilot.press("G")
            await settle(pilot)
            asked = isinstance(app.screen, ConfirmDialog)
            await pilot.press("y")
            await settle(pilot)
            return panel, asked
    panel, asked = asyncio.run(scenario())
    assert "WAITING for signal go-public" in panel and asked
    assert "go-public" in engine.state(iid).signals


def test_lint_checks_the_signal_name(catalog_dir, tmp_path):
    from runbook.catalog import load as load_catalog

    bad = PLAYBOOK.replace("wait_for: {signal: go-public}", "wait_for: {signal: 'Go Public!', step: assess}")
    (catalog_dir / "pb.yaml").write_text(bad)
    from runbook.errors import DocumentError
    with pytest.raises(DocumentError) as refused:
        load_catalog([str(catalog_dir)])
    text = str(refused.value)
    assert "pb.yaml:" in text and "wait_for" in text
