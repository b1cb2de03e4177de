"""The home screen's Alerts pane: what `runbook serve` received, live, with the alerts no playbook
took first; Enter resumes an alert's incident or opens one by hand with the alert's labels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pilot_helpers import flat, press, screen_text, settle

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.engine.intake import Alert
from runbook.service import EngineService
from runbook.store import Store
from runbook.text import _UNSAFE
from runbook.tui.app import build_app
from runbook.tui.dialogs.alert import AlertDialog
from runbook.tui.dialogs.parameters import ParameterForm
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import IncidentScreen

HERE = Path(__file__).parent
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOSTILE = "db\x1b]0;pwned\x07\u202eevil\x9b31m"


def alert(name, fingerprint, status="firing", starts="2026-01-05T08:59:00Z", **labels):
    return Alert(fingerprint, status, starts, {"alertname": name, **labels}, {"summary": f"{name} summary"})


@pytest.fixture
def world(tmp_path):
    """An app on a database file, and `engine(clock)`: another connection to it (another process
    would do the same), to post alerts from outside the TUI."""
    catalog = load([str(HERE / "serve_catalog"), str(HERE / "fixtures" / "catalog" / "playbooks")])
    stores = []

    def engine(clock=None):
        store = Store(str(tmp_path / "db.sqlite"), key=None)
        stores.append(store)
        return Engine(store, clock or VirtualClock(START), None, catalog)

    class World:
        def __init__(self):
            self.engine = engine()
            self.outside = engine

        def app(self):
            return build_app(EngineService(self.engine), catalog, "ana", live=False)

    yield World()
    for store in stores:
        store.close()


def seed(engine):
    return {o.fingerprint: o for o in engine.receive_alerts([
        alert("DiskFull", "f1", instance="db-7.example", severity="critical"),  # opened
        alert("Mystery", "f2", instance="web-1"),  # unmatched: no playbook's symptom
        alert("DiskFull", "f3", instance="DB_7!", severity="warning"),  # failed: the host pattern refuses it
        alert("Gone", "f4", status="resolved"),  # heard of only once resolved
    ])}


def rows(app) -> list[str]:
    table = app.screen.query_one("#alerts")
    return [flat(" ".join(str(cell) for cell in table.get_row_at(i))) for i in range(table.row_count)]


def test_the_pane_lists_alerts_that_need_a_human_first_with_what_became_of_each(world):
    outcomes = seed(world.engine)
    assert [o.outcome for o in outcomes.values()] == ["opened", "unmatched", "failed", "resolved"]
    opened = outcomes["f1"].incident
    app = world.app()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            return rows(app), screen_text(app), [n.message for n in app._notifications]
    shown, screen, toasts = asyncio.run(scenario())
    kinds = [row.split()[2].rstrip("…") for row in shown]  # labels that do not fit end between words, with …
    assert set(kinds[:2]) == {"DiskFull", "Mystery"}
    assert [r for r in shown if "UNMATCHED" in r] == [
        "09:00 firing Mystery instance=web-1 UNMATCHED no playbook…"]  # ended between words: Enter shows why
    failed = next(r for r in shown if "FAILED" in r)
    # what does not fit at 80 columns ends between labels and words, marked (the dialog has it all)
    assert "DiskFull…" in failed and "FAILED could not open…" in failed
    assert shown.index(failed) < 2
    assert any(f"→ {opened} opened" in r for r in shown[2:])
    assert any("Gone" in r and "heard of only once resolved" in r for r in shown[2:])
    assert "2 without an incident" in screen and "UNMATCHED" in screen, screen
    assert toasts == []  # there when the screen opened: listed first and marked, not announced


def test_no_alerts_take_one_line(world):
    app = world.app()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            return screen_text(app), app.screen.query_one("#alerts").region.height
    screen, table_shown = asyncio.run(scenario())
    assert "Alerts — none received in the last 24 h (runbook serve)" in screen
    assert table_shown == 0


def test_an_alert_posted_from_outside_appears_on_reload_and_is_announced_once(world):
    world.engine.receive_alerts([alert("DiskFull", "f1", instance="db-7.example")])
    app = world.app()
    outside = world.outside()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            before = rows(app)
            outside.receive_alerts([alert("Mystery", "f2", instance="web-1")])
            app.screen.action_reload()  # what the screen's 2-second timer does
            await settle(pilot)
            after = rows(app)
            outside.receive_alerts([alert("Mystery", "f2", instance="web-1")])  # a repeat delivery
            app.screen.action_reload()
            await settle(pilot)
            app.screen.action_reload()
            await settle(pilot)
            return before, after, [n.message for n in app._notifications]
    before, after, toasts = asyncio.run(scenario())
    assert len(before) == 1 and len(after) == 2 and "Mystery" in after[0] and "UNMATCHED" in after[0]
    announced = [t for t in toasts if "Mystery" in t]
    assert len(announced) == 1, toasts
    assert "instance=web-1" in announced[0] and "no playbook symptom matches" in announced[0]


def test_alerts_older_than_a_day_are_left_out(world):
    old = Engine(world.engine.store, VirtualClock(datetime(2026, 1, 4, 8, 0, tzinfo=UTC)), None,
                 world.engine.catalog)
    old.receive_alerts([alert("Yesterday", "f9", starts="2026-01-04T07:59:00Z")])
    world.engine.receive_alerts([alert("Today", "f8")])
    names = [a.name for a in world.app().gateway.alerts()]
    assert names == ["Today"]


def test_enter_on_an_alert_with_an_incident_resumes_it(world):
    incident = seed(world.engine)["f1"].incident
    app = world.app()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "tab", "tab")  # the filter, then the incidents, then the alerts
            table = app.screen.query_one("#alerts")
            assert table.has_focus
            table.move_cursor(row=next(i for i, row in enumerate(rows(app)) if "opened" in row))
            await press(pilot, "enter")
            return app.screen
    screen = asyncio.run(scenario())
    assert isinstance(screen, IncidentScreen) and screen.incident == incident


def test_enter_on_an_unmatched_alert_shows_why_and_opens_an_incident_with_its_labels(world):
    world.engine.receive_alerts([alert("DiskAlmostFull", "f5", instance="db-9.example", severity="critical")])
    app = world.app()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "tab", "tab", "enter")
            assert isinstance(app.screen, AlertDialog)
            dialog = screen_text(app)
            await press(pilot, "enter")  # find a playbook for it
            assert isinstance(app.screen, HomeScreen)
            filtered = app.screen.query_one("#filter").value
            top = app.screen.query_one("#playbooks").get_row_at(0)[0]
            home = screen_text(app)
            await press(pilot, "enter")  # open the top match: its parameters come from the labels
            assert isinstance(app.screen, ParameterForm)
            host = app.screen.query_one("#param-host").value
            await press(pilot, "enter")
            return dialog, filtered, top, home, host, app.screen
    dialog, filtered, top, home, host, screen = asyncio.run(scenario())
    assert "no playbook symptom matches these labels" in dialog
    assert "instance = db-9.example" in dialog and "summary = DiskAlmostFull summary" in dialog
    assert filtered == "disk almost full" and top == "disk-full"
    assert "For alert DiskAlmostFull: Enter opens the top match with its labels" in home
    assert host == "db-9.example"
    assert isinstance(screen, IncidentScreen)
    state = world.engine.state(screen.incident)
    assert state.parameters == {"host": "db-9.example"} and state.severity == "SEV1"  # severity_from the labels
    (row,) = world.engine.alerts()  # the alert is linked: no longer listed as needing a human
    assert (row["outcome"], row["incident"]) == ("opened", screen.incident)
    assert row["reason"] == "opened by hand by ana on disk-full"
    assert [e.record.fingerprint for e in state.events if e.type == "alert_received"] == ["f5"]


def test_enter_on_an_alert_without_an_incident_or_a_need_only_shows_it(world):
    world.engine.receive_alerts([alert("Gone", "f4", status="resolved", region="eu")])
    app = world.app()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "tab", "tab", "enter")
            shown = isinstance(app.screen, AlertDialog) and screen_text(app)
            await press(pilot, "enter")  # nothing to act on: Enter does not close it into a search
            still = isinstance(app.screen, AlertDialog)
            await press(pilot, "escape")
            return shown, still, app.screen.query_one("#filter").value
    shown, still, filtered = asyncio.run(scenario())
    assert "Alert Gone — resolved" in shown and "no playbook symptom matches" in shown and "region = eu" in shown
    assert "find a playbook" not in shown and "Esc close" in shown
    assert still and filtered == ""


def test_labels_from_the_network_never_reach_the_terminal_raw(world):
    app = world.app()
    outside = world.outside()

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            outside.receive_alerts([Alert("f6\x1b[2J", "firing", "2026-01-05T08:59:00Z",
                                          {"alertname": f"Mystery{HOSTILE}", "instance": HOSTILE, HOSTILE: "x"},
                                          {"summary": HOSTILE})])
            app.screen.action_reload()
            await settle(pilot)
            pane = screen_text(app)
            toasts = [(n.title, n.message) for n in app._notifications]
            await press(pilot, "tab", "tab", "enter")
            return pane, toasts, screen_text(app)
    pane, toasts, dialog = asyncio.run(scenario())
    views = world.app().gateway.alerts()
    texts = [str(value) for view in views for value in view if isinstance(value, (str, tuple))]
    assert texts and not any(_UNSAFE.search(text) for text in texts)
    for shown in (pane, dialog, *(t for pair in toasts for t in pair)):
        assert not _UNSAFE.search(shown)
    assert "db\\x1b]0;pwned\\x07\\u202eevil\\x9b31m" in dialog
    assert toasts and "\\x1b" in toasts[0][1]



def test_snapshot_home_with_alerts_at_80x24(world, snap_compare, monkeypatch):
    ids = iter(["A1B2C3", "A1B2C4", "A1B2C5", "A1B2C6", "A1B2C7", "A1B2C8"])
    monkeypatch.setattr("secrets.token_hex", lambda n: next(ids))  # the reserved incident ids, fixed
    seed(world.engine)

    async def ready(pilot):
        await settle(pilot)

    assert snap_compare(world.app(), terminal_size=(80, 24), run_before=ready)


def test_a_rejected_alert_is_listed_with_why(world):
    """A malformed alert the intake kept (serve/alertmanager.py) is shown with where and why, so
    someone fixes its sender; it is not offered for opening: there is nothing valid to open from."""
    (kept,) = world.engine.receive_alerts([Alert("0123abcd", "firing", "", {"alertname": "VideoLoss"},
                                                 rejected="alerts[0].labels.region: holds a lone surrogate")])
    assert kept.outcome == "rejected"
    app = world.app()

    async def scenario():
        async with app.run_test(size=(120, 24)) as pilot:
            await settle(pilot)
            return rows(app)
    (shown,) = asyncio.run(scenario())
    # the pane's last column ends between words ("REJECTED…": issue 28); the reason is the alert's
    assert "VideoLoss REJECTED" in shown
    assert kept.reason == "alerts[0].labels.region: holds a lone surrogate"
