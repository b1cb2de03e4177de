"""The drill scheduler on a virtual clock: cron in the drill's time zone across DST, only the latest
missed run after downtime and only within the window, concurrency forbid, and two schedulers racing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from runbook.catalog import load, load_catalog
from runbook.drills.scheduler import latest_occurrence, run_once
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

HERE = Path(__file__).parent
BERLIN = ZoneInfo("Europe/Berlin")

PLAYBOOK = (HERE / "test_drills.py").read_text().split('PLAYBOOK = """\\\n')[1].split('"""')[0]
DRILLS = """\
apiVersion: runbook/v1
kind: Drill
id: daily-human
title: Daily human drill
playbook: tiny
participants: [ana]
schedule: {{cron: "{cron}", timezone: Europe/Berlin, window: 30m}}
---
apiVersion: runbook/v1
kind: Drill
id: nightly-sim
title: Nightly simulation
playbook: tiny
schedule: {{cron: "0 3 * * *", timezone: Europe/Berlin, window: 1h}}
responders:
  levels:
    - answer: 1.0
      ack: {{distribution: fixed, mean: 1m}}
"""


def world(tmp_path, cron="0 10 * * *"):
    (tmp_path / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (tmp_path / "tiny.yaml").write_text(PLAYBOOK)
    (tmp_path / "drills.yaml").write_text(DRILLS.format(cron=cron))
    catalog = load([str(tmp_path)])
    clock = VirtualClock(datetime(2026, 3, 23, 8, 0, tzinfo=UTC))

    def engine():
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
        return Engine(Store(str(tmp_path / "db.sqlite")), clock, host, catalog)
    return catalog, clock, engine


def fired(decisions, drill="daily-human"):
    return [(d.action, d.scheduled.astimezone(BERLIN).strftime("%m-%d %H:%M")) for d in decisions if d.drill == drill]


def test_weekly_time_stays_local_across_daylight_saving(tmp_path):
    catalog, _, _ = world(tmp_path, cron="0 14 * * WED")
    drill = catalog.models("Drill")["daily-human"]
    before = latest_occurrence(drill, None, datetime(2026, 3, 25, 13, 30, tzinfo=UTC))
    after = latest_occurrence(drill, None, datetime(2026, 4, 1, 12, 30, tzinfo=UTC))
    assert (before.astimezone(UTC).hour, after.astimezone(UTC).hour) == (13, 12)
    assert before.astimezone(BERLIN).hour == after.astimezone(BERLIN).hour == 14


def test_a_time_that_does_not_exist_on_the_dst_night_fires_once(tmp_path):
    catalog, clock, engine = world(tmp_path, cron="30 2 * * *")
    e = engine()
    clock.set(datetime(2026, 3, 29, 1, 5, tzinfo=UTC))  # 03:05 CEST, just after the jump
    assert fired(run_once(e, catalog)) == [("fire", "03-29 03:00")]
    clock.advance(minutes=20)
    assert fired(run_once(e, catalog)) == []


def test_after_downtime_only_the_latest_missed_run_fires_within_its_window(tmp_path):
    catalog, clock, engine = world(tmp_path)
    e = engine()
    clock.set(datetime(2026, 3, 23, 9, 5, tzinfo=UTC))  # Monday 10:05 Berlin
    assert fired(run_once(e, catalog)) == [("fire", "03-23 10:00")]
    e.resolve(e.list(open_only=True)[0]["id"], "ana")
    clock.set(datetime(2026, 3, 26, 9, 20, tzinfo=UTC))  # down three days; Thursday 10:20 CET
    assert fired(run_once(e, catalog)) == [("fire", "03-26 10:00")]
    for row in e.list(open_only=True):
        e.resolve(row["id"], "ana")
    clock.set(datetime(2026, 3, 27, 9, 45, tzinfo=UTC))  # Friday 10:45: outside the 30m window
    assert fired(run_once(e, catalog)) == [("skip-late", "03-27 10:00")]
    assert fired(run_once(e, catalog)) == []


def test_concurrency_forbid_skips_while_the_last_run_is_open(tmp_path):
    catalog, clock, engine = world(tmp_path)
    e = engine()
    clock.set(datetime(2026, 3, 23, 9, 1, tzinfo=UTC))
    assert fired(run_once(e, catalog)) == [("fire", "03-23 10:00")]
    incident = e.list(open_only=True)[0]
    assert incident["drill"] == 1 and e.state(incident["id"]).escalation.count == 1  # paged: announced
    clock.set(datetime(2026, 3, 24, 9, 1, tzinfo=UTC))
    assert fired(run_once(e, catalog)) == [("skip-running", "03-24 10:00")]


def test_two_schedulers_racing_fire_a_run_once(tmp_path):
    catalog, clock, engine = world(tmp_path)
    first, second = engine(), engine()
    clock.set(datetime(2026, 3, 23, 9, 1, tzinfo=UTC))
    results = fired(run_once(first, catalog)) + fired(run_once(second, catalog))
    assert results == [("fire", "03-23 10:00")]
    assert len(first.list(open_only=True)) == 1


def test_automated_drills_simulate_and_store_a_summary(tmp_path):
    catalog, clock, engine = world(tmp_path)
    e = engine()
    clock.set(datetime(2026, 3, 23, 2, 10, tzinfo=UTC))  # 03:10 Berlin
    decisions = [d for d in run_once(e, catalog) if d.drill == "nightly-sim"]
    assert [d.action for d in decisions] == ["fire"] and decisions[0].detail.startswith("simulated 200 runs")
    assert e.store.simulations("nightly-sim")[0]["summary"]["answered_by"] == {"L1": 1.0}


def test_every_occurrence_of_the_repeated_hour_fires_when_clocks_go_back(tmp_path):
    catalog, clock, engine = world(tmp_path, cron="*/30 * * * *")
    e = engine()
    seen = []
    # Berlin goes from CEST to CET at 03:00 on 2026-10-25: 02:00 and 02:30 happen twice
    for minutes in range(0, 150, 30):
        clock.set(datetime(2026, 10, 24, 23, 1, tzinfo=UTC).replace(minute=1) + timedelta(minutes=minutes))
        seen += [(d.action, d.scheduled.isoformat()) for d in run_once(e, catalog) if d.drill == "daily-human"]
        for row in e.list(open_only=True):
            e.resolve(row["id"], "ana")
    assert seen == [("fire", "2026-10-25T01:00:00+02:00"), ("fire", "2026-10-25T01:30:00+02:00"),
                    ("fire", "2026-10-25T02:00:00+02:00"), ("fire", "2026-10-25T02:30:00+02:00"),
                    ("fire", "2026-10-25T02:00:00+01:00")]


def test_a_broken_drill_does_not_stop_the_others(tmp_path):
    catalog, clock, engine = world(tmp_path)
    (tmp_path / "bad.yaml").write_text("""\
apiVersion: runbook/v1
kind: Drill
id: bad
title: A drill whose symptom does not exist
playbook: tiny
symptom: nope
participants: [ana]
schedule: {cron: "0 10 * * *", timezone: Europe/Berlin}
""")
    catalog = load_catalog([str(tmp_path)])  # lint reports the bad symptom; the scheduler still sees the drill
    e = engine()
    e.catalog = catalog
    clock.set(datetime(2026, 3, 23, 9, 1, tzinfo=UTC))
    decisions = {d.drill: d for d in run_once(e, catalog)}
    assert decisions["bad"].action == "failed"
    assert "cannot open an incident on drill 'bad'" in decisions["bad"].detail
    assert "bad.yaml:6:10: symptom: symptom of tiny 'nope' does not exist" in decisions["bad"].detail
    assert decisions["daily-human"].action == "fire"
