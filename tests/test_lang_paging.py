"""Paging decided by an alert label (page_label:), and the urgency each severity sends to the pager."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock, pages
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def paged(engine, iid):
    return [e.data["level"] for e in engine.tick(iid) if e.type == "escalated"]


def test_the_label_pages_a_severity_that_would_not(engine):
    iid = engine.open("paged-by-label", "ana", labels={"page": "true"}).id  # SEV4 does not page by itself
    assert paged(engine, iid) == [1]


def test_the_label_keeps_a_paging_severity_quiet(engine):
    iid = engine.open("paged-by-label", "ana", labels={"page": "false", "severity": "critical"}).id
    assert engine.state(iid).severity == "SEV1"
    assert paged(engine, iid) == []


def test_without_the_label_the_severity_decides(engine):
    quiet = engine.open("paged-by-label", "ana").id
    assert paged(engine, quiet) == []
    loud = engine.open("paged-by-label", "ana", labels={"severity": "warning", "page": "maybe"}).id
    assert paged(engine, loud) == [1]


def test_the_page_carries_the_severity_s_urgency(engine):
    low = engine.open("paged-by-label", "ana", labels={"severity": "warning"}).id  # SEV2: urgency low
    engine.tick(low)
    state = engine.state(low)
    page = next(iter(state.escalation.pages.values()))
    assert pages.notice(state, page).urgency == "low"
    high = engine.open("paged-by-label", "ana", labels={"severity": "critical"}).id  # SEV1: pages, so high
    engine.tick(high)
    state = engine.state(high)
    assert pages.notice(state, next(iter(state.escalation.pages.values()))).urgency == "high"


def test_pagerduty_is_sent_the_urgency():
    from runbook.default_plugins.pagerduty import trigger
    from runbook.pluginapi import EscalationNotice

    event = trigger(EscalationNotice("INC-1", "t", "SEV2", 1, (), urgency="low"), "key", None)
    assert event["payload"]["custom_details"]["urgency"] == "low"


def test_a_page_label_needs_an_escalation_policy(tmp_path):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "p.yaml").write_text((CATALOG / "paging.yaml").read_text().replace("escalation: plain\n", ""))
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [
        ("page_label", "page_label: may make any severity page, so the playbook needs escalation: POLICY")]


def test_cli_show_says_the_label_keeps_it_quiet(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "paged-by-label", "--label", "page=false").strip()
    assert "escalation: label page=false says not to page" in rb("incident", "show", iid)
