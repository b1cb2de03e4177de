"""Parameters at incident time: given, taken from alert labels or asked for, checked before any
command runs, recorded, shown, and filled into every text and command by the one renderer.
Driven through the headless CLI and the TUI on tests/params_catalog/drain-next-server.yaml."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app

PARAMS_CATALOG = Path(__file__).parent / "params_catalog"
HOSTILE = "web 1'; touch pwned $(touch pwned2)"


@pytest.fixture
def rb(rb, fixture_catalog, tmp_path):
    rb.cwd, rb.catalogs = tmp_path, [fixture_catalog / "playbooks", PARAMS_CATALOG]
    return rb


def test_the_test_playbook_validates(rb):
    assert rb("validate", "--strict", str(PARAMS_CATALOG)).startswith("valid")


def test_labels_params_and_defaults_fill_the_incident_and_every_command(rb, tmp_path):
    iid = rb("incident", "open", "drain-next-server", "--label", "region=eu-west-1", "--label",
             f"instance={HOSTILE}", "--label", "alertname=RtcMediaNodeDown", "--param", "replicas=3").strip()
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["parameters"] == {"region": "eu-west-1", "host": HOSTILE, "pvc": "media-data", "replicas": "3"}
    assert data["parameter_sources"] == {"region": "label", "host": "label", "pvc": "default", "replicas": "param"}
    shown = rb("incident", "show", iid)
    assert f"parameters: host={HOSTILE} (label)" in shown or "region=eu-west-1 (label)" in shown
    assert f"step-1: Look at {HOSTILE} in eu-west-1 (incident {iid}, SEV2)" in shown
    rb("incident", "step", iid, "--done")
    out = rb("incident", "step", iid, "--run", "--json")
    finished = next(e for e in json.loads(out) if e["type"] == "action_finished")["data"]
    cwd, region, argv = json.loads(finished["output"])
    assert (cwd, region) == ("/tmp", "eu-west-1")
    assert argv == ["pvc/media-data", "--template={{.metadata.name}}", HOSTILE]  # one argument, never split
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    # the drain is gated: the command shown before approval is the exact, quoted argv
    shown = rb("incident", "show", iid)
    assert "$ python3 -c 'import sys, json; print(json.dumps(sys.argv[1:]))' drain " \
           "'--node=web 1'\"'\"'; touch pwned $(touch pwned2)' eu-west-1" in shown
    rb("incident", "approve", iid, "drain")
    out = json.loads(rb("incident", "step", iid, "--run", "--json"))
    started = next(e for e in out if e["type"] == "action_started")["data"]
    assert started["argv"][-2:] == [f"--node={HOSTILE}", "eu-west-1"]
    # "drain the next server": set host and go round again
    assert "parameters: host=web-2 (param)" in rb("incident", "param", iid, "host=web-2")
    rb("incident", "choose", iid, "Yes")
    rb("incident", "approve", iid, "drain")
    out = json.loads(rb("incident", "step", iid, "--run", "--json"))
    assert next(e for e in out if e["type"] == "action_started")["data"]["argv"][-2:] == ["--node=web-2", "eu-west-1"]
    export = rb("incident", "export", iid)
    assert "- Parameter host: web-2 (param)" in export and "- Parameter region: eu-west-1 (label)" in export


@pytest.mark.parametrize("args, message", [
    ((), "playbook drain-next-server needs parameter region (Region the alert fired in): give --param "
         "region=VALUE or --label region=VALUE (and 1 more: host)"),
    (("--label", "region=EU", "--param", "host=a"),
     "parameter region: 'EU' does not match ^[a-z]+-[a-z]+-[0-9]+$ (from alert label region)"),
    (("--param", "regoin=eu-west-1"),
     "playbook drain-next-server has no parameter 'regoin' (parameters: region, host, pvc, "
     "replicas); did you mean 'region'?"),
    (("--param", "region"), "--param 'region' is not KEY=VALUE, expected e.g. --param region=eu-west-1"),
    (("--param", "region=eu-west-1", "--param", "host=a", "--param", "replicas=many"),
     "parameter replicas: 'many' is not a whole number (from --param)"),
])
def test_a_bad_or_missing_value_is_one_line_and_nothing_is_opened(rb, args, message):
    err = rb("incident", "open", "drain-next-server", *args, expect=2)
    assert err == f"runbook: error: {message}\n"
    assert rb("incident", "list") == "no open incidents\n"


def test_param_later_is_checked_the_same_way(rb):
    iid = rb("incident", "open", "drain-next-server", "--param", "region=eu-west-1", "--param", "host=a").strip()
    assert rb("incident", "param", iid, "region=west", expect=2) == \
        "runbook: error: parameter region: 'west' does not match ^[a-z]+-[a-z]+-[0-9]+$ (from runbook incident param)\n"
    assert rb("incident", "param", iid, "host=a", expect=5) == "runbook: error: parameter host is already 'a'\n"


def test_the_shipped_rtc_playbook_takes_region_from_the_alert(rb):
    iid = rb("incident", "open", "calls-failing-one-region", "--label", "region=eu-west-1").strip()
    shown = rb("incident", "show", iid)
    assert "parameters: region=eu-west-1 (label)" in shown
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["parameters"] == {"region": "eu-west-1"}


def test_an_old_playbook_opens_and_runs_as_before(rb):
    iid = rb("incident", "open", "login-outage").strip()
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["parameters"] == {}
    assert "parameters_set" not in [e["type"] for e in data["events"]]


# the TUI ------------------------------------------------------------------------------------

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(START), host,
                 load([str(fixture_catalog / "playbooks"), str(PARAMS_CATALOG)]))
    store.close()


async def _settle(pilot):
    for _ in range(5):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_tui_asks_for_a_missing_parameter_then_shows_it_and_the_exact_command(engine):
    from runbook.tui.dialogs.confirm import ConfirmDialog
    from runbook.tui.dialogs.parameters import ParameterForm
    from runbook.tui.screens.incident import IncidentScreen

    opening = {"playbook": "drain-next-server", "params": {}, "labels": {"region": "eu-west-1"}}
    app = build_app(EngineService(engine), engine.catalog, "ana", live=False, opening=opening)

    async def walk():
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot)
            assert isinstance(app.screen, ParameterForm)
            assert app.screen.query_one("#param-region").value == "eu-west-1"  # from the label
            app.screen.query_one("#param-host").focus()
            await pilot.press("enter")  # host is required and empty: refused, said why
            await _settle(pilot)
            assert isinstance(app.screen, ParameterForm)
            assert "host is required" in str(app.screen.query_one("#param-error").render())
            for key in "web 1":
                await pilot.press(key if key != " " else "space")
            await pilot.press("enter")
            await _settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            screen_text = app.screen.query_one("#incident-header").render()
            assert "host=web 1" in str(screen_text) and "region=eu-west-1" in str(screen_text)
            iid = app.screen.incident
            engine.complete(iid, "ana")  # the check
            engine.complete(iid, "ana")  # show-claim, by hand
            app.screen.refresh_view()
            await _settle(pilot)
            await pilot.press("p")
            await _settle(pilot)
            assert isinstance(app.screen, ConfirmDialog)
            detail = str(app.screen.query_one(".dialog-detail").render())
            assert "Drain web 1 in eu-west-1? Calls on it move to other servers." in detail
            assert "$ python3 -c 'import sys, json; print(json.dumps(sys.argv[1:]))' drain '--node=web 1' eu-west-1" \
                in detail
            return iid

    import asyncio

    iid = asyncio.run(walk())
    state = engine.state(iid)
    assert state.parameters == {"region": "eu-west-1", "host": "web 1", "pvc": "media-data"}
    assert state.parameter_sources == {"region": "label", "host": "form", "pvc": "default"}
