"""Nothing decides from a projection that can be forged or left stale: what the engine and the
server act on (flags to restore, timers to fire, incidents to tick) comes from the log, and a
summary row edited behind runbook's back is warned of and stops nothing. A flag shared by open
incidents is what their records hold together, read back by the OpenFeature flagd provider.
On SQLite and PostgreSQL (the summary edited as the owner: the responder role may not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.flags import video_on
from helpers.tamper import tamper

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import TimerPass
from runbook.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
REGION = {"region": "eu-west-1"}


class Healthy:
    """A metrics source whose every check holds (runbook.metric_checks' MetricSource)."""

    def query(self, promql, at=None, timeout=None):
        from runbook.metric_checks import Series

        return [Series({}, 0.0)]


@pytest.fixture
def world(open_test_store, tmp_path):
    flags = video_on(tmp_path)
    catalog = load_catalog([str(ROOT / "playbooks")])

    def engine() -> Engine:
        host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
        made = Engine(open_test_store(key=None), VirtualClock(), host, catalog)
        made.metrics_source = Healthy()
        return made

    return engine, flags


def off_share(flags: Path) -> float:
    """The percentage of 10,000 users the OpenFeature flagd provider (file mode) gives video off."""
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(flags),
                                            deadline_ms=100))
    try:
        client = api.get_client()
        return sum(1 for n in range(10_000) if client.get_boolean_value(
            "rtc.video.enabled", True, EvaluationContext(attributes={"userId": f"user-{n}"})) is False) / 100
    finally:
        api.shutdown()


@pytest.mark.parametrize("wider_at", [100, 50])
def test_resolving_the_wider_holder_leaves_the_share_the_open_one_holds(world, wider_at):
    """D1: A at `wider_at`%, B at 10% on the same flag; resolving A leaves 10% off (what B's
    record holds), not A's share; resolving B then gives video back to everyone."""
    make, flags = world
    engine = make()
    a = engine.open("video-call-degraded", "ana", params=REGION).id
    b = engine.open("video-call-degraded", "bo", params=REGION).id
    engine.degrade(a, "ana", "audio-only")
    engine.degrade(b, "bo", "audio-only")
    for _ in range({100: 2, 50: 1}[wider_at]):
        make().stage(a, "ana", "audio-only", "advance")
    assert abs(off_share(flags) - wider_at) <= 2
    make().resolve(a, "ana")  # another process: what B holds comes from B's record
    assert engine.state(b).degradations["audio-only"].share == 10
    assert abs(off_share(flags) - 10) <= 2
    make().resolve(b, "bo")
    assert off_share(flags) == 0


def test_a_summary_edited_to_say_resolved_does_not_drop_that_incidents_hold(world):
    """D1 from a forged projection: B's summary row says resolved, its log says open and holding
    audio-only at 50%; A's restore keeps B's share."""
    make, flags = world
    engine = make()
    a = engine.open("video-call-degraded", "ana", params=REGION).id
    b = engine.open("video-call-degraded", "bo", params=REGION).id
    engine.degrade(b, "bo", "audio-only")
    engine.stage(b, "bo", "audio-only", "advance")
    engine.degrade(a, "ana", "audio-only")
    tamper(engine.store, "UPDATE incidents SET status = 'resolved' WHERE id = ?", [b])
    make().restore(a, "ana", "audio-only")
    assert abs(off_share(flags) - 50) <= 2


def test_a_summary_edited_to_closed_stops_no_timer_and_no_stage(world):
    """D5: the server's timers tick what the log says is open: escalations go on and a stage whose
    checks hold advances, although the summary row says closed; `list` says it disagrees."""
    make, flags = world
    engine = make()
    incident = engine.open("video-call-degraded", "ana", params=REGION).id
    engine.degrade(incident, "ana", "audio-only")
    tamper(engine.store, "UPDATE incidents SET status = 'closed' WHERE id = ?", [incident])
    server = make()
    ticks = TimerPass()
    for _ in range(24):  # two hours, a tick every five minutes
        server.clock.advance(300)
        ticks(server)
    state = server.state(incident)
    assert sum(e.type == "escalated" for e in state.events) >= 2
    assert state.degradations["audio-only"].share == 100
    assert abs(off_share(flags) - 100) <= 2
    [row] = [r for r in server.list(open_only=True) if r["id"] == incident]
    assert not row["log_intact"] and "the summary says status 'closed'" in row["log_problem"]
