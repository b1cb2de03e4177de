"""The shipped video-call-degraded playbook's staged audio-only fallback against a real Prometheus
(Debian's package, started on loopback by the test over samples written with promtool): call
drops stay low for the first 10 minutes, then jump. On a virtual clock walking through that
history, the first stage passes its checks and widens to 50%, then the jump rolls everything back
by itself, and the flag file says so at each point."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.flags import video_on
from prometheus_helpers import RealPrometheus

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
STEP = 15
GOOD, BAD = 0.005, 0.05  # dropped / started per second; the check expects < 0.02


def history(start: int, turn: int, end: int) -> str:
    """Counters of calls started (100/s) and dropped (0.5/s, then 5/s from `turn`), as OpenMetrics."""
    started, dropped, lines_started, lines_dropped = 0.0, 0.0, [], []
    for t in range(start, end + 1, STEP):
        lines_started.append(f"rtc_calls_started_total {started} {t}")
        lines_dropped.append(f"rtc_calls_dropped_total {dropped} {t}")
        started += 100 * STEP
        dropped += 100 * STEP * (GOOD if t < turn else BAD)
    return "\n".join(["# TYPE rtc_calls_started counter", *lines_started,
                      "# TYPE rtc_calls_dropped counter", *lines_dropped, "# EOF"]) + "\n"


@pytest.fixture
def world(tmp_path):
    now = int(time.time())
    start = now - 40 * 60
    turn = start + 17 * 60  # the clock starts at start + 10m: stage 2 begins at about +15m30s
    server = RealPrometheus(tmp_path, {}, now, text=history(start, turn, now))
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None, prometheus_url=server.url), entry_points=False)
    clock = VirtualClock(datetime.fromtimestamp(start + 10 * 60, UTC))  # 5m of rate history behind it
    engine = Engine(Store(str(tmp_path / "db.sqlite"), key=None), clock, host, load_catalog([str(ROOT / "playbooks")]))
    yield engine, flags, turn
    engine.store.close()
    server.stop()


def test_a_stage_passes_its_checks_then_a_breach_rolls_back_by_itself(world):
    engine, flags, turn = world
    incident = engine.open("video-call-degraded", "ana").id
    engine.degrade(incident, "ana", "audio-only")
    video = lambda: json.loads(flags.read_text())["flags"]["rtc.video.enabled"]  # noqa: E731
    assert video()["targeting"]["fractional"][1] == ["off", 10]
    for _ in range(11):  # 5m30s of checks every 30s: the hold is over, the checks held
        engine.clock.advance(30)
        engine.tick(incident)
    state = engine.state(incident)
    assert state.degradations["audio-only"].share == 50, [e.record.describe() for e in state.events[-6:]]
    checks = [e.record.results[0] for e in state.events if e.type == "stage_checked"]
    assert checks[0]["outcome"] == "holds" and checks[0]["value"] == pytest.approx(GOOD, rel=0.05)
    assert video()["targeting"]["fractional"][1] == ["off", 50]
    while engine.clock.now().timestamp() < turn + 6 * 60:  # past the jump, with a 5m rate window over it
        engine.clock.advance(30)
        engine.tick(incident)
        if not engine.state(incident).degradations["audio-only"].applied:
            break
    state = engine.state(incident)
    assert not state.degradations["audio-only"].applied, [e.record.describe() for e in state.events[-8:]]
    (rollback,) = [e for e in state.events if e.type == "stage_steered" and e.record.action == "rollback"]
    assert rollback.record.automatic and rollback.record.reason.startswith("check call-drops failed: 0.0")
    assert "(expect < 0.02)" in rollback.record.reason
    assert video()["defaultVariant"] == "on" and "targeting" not in video()
