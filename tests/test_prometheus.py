"""prometheus: waits against the real Prometheus (Debian's package, installed by scripts/test): samples
written as OpenMetrics up to now, turned into blocks by promtool, served on loopback; the engine polls
on a virtual clock that starts now. Holds, not yet, and the three ways a check breaks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_helpers import RealPrometheus

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.metric_checks import MetricCheck, PrometheusSource, evaluate
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

HERE = Path(__file__).parent
PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: loss-wait
title: Wait for packet loss to fall
service: rtc-video
severity: SEV2
escalation: ladder
parameters:
  selector: {summary: "PromQL inserted as it is (no pattern: only in this test)"}
steps:
  - id: low
    kind: wait
    title: Wait until packet loss is under 2%
    prometheus: {query: "{selector}", expect: "< 0.02"}
    every: 30s
    timeout: 10m
    on_broken: fail
  - id: after
    title: Carry on
    mitigates: true
"""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    now = time.time()
    server = RealPrometheus(tmp_path_factory.mktemp("prometheus"), {
        "rtc_loss_ratio": [({"region": "eu-west-1"}, 0.034), ({"region": "us-east-1"}, 0.01)],
    }, now)
    server.now = now
    yield server
    server.stop()


@pytest.fixture
def world(tmp_path, prometheus):
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text((HERE / "waits_catalog" / "policies.yaml").read_text())
    (catalog_dir / "pb.yaml").write_text(PLAYBOOK)
    catalog = load([str(catalog_dir)])
    assert not catalog.errors, catalog.errors
    store = Store(str(tmp_path / "db.sqlite"))
    clock = VirtualClock(datetime.fromtimestamp(prometheus.now, UTC))

    def poll(selector, url=prometheus.url):
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None, prometheus_url=url),
                          entry_points=False)
        engine = Engine(store, clock, host, catalog)
        iid = engine.open("loss-wait", "ana", params={"selector": selector}).id
        clock.advance(seconds=30)
        fired = engine.tick(iid)
        (polled,) = [e for e in fired if e.type == "check_polled"]
        return polled.data["outcome"], polled.data["summary"], engine.state(iid)

    yield poll
    store.close()


def test_a_series_under_the_threshold_holds(world):
    outcome, summary, state = world('rtc_loss_ratio{region="us-east-1"}')
    assert (outcome, summary) == ("holds", '0.01 (expect < 0.02) at rtc_loss_ratio{region="us-east-1"}')
    assert state.current["main"] == "after"


def test_a_series_over_it_is_not_yet_naming_the_worst(world):
    outcome, summary, state = world("rtc_loss_ratio")
    assert outcome == "not-yet"
    assert summary == '0.034 (expect < 0.02) at rtc_loss_ratio{region="eu-west-1"}; 1 of 2 series do not meet it'
    assert state.current["main"] == "low"


def test_a_query_prometheus_cannot_parse_is_a_query_error(world):
    outcome, summary, state = world("rate(rtc_loss_ratio")
    assert outcome == "broken" and summary.startswith("query error: bad_data: ")
    assert "parse error" in summary
    assert state.steps["low"].status == "failed"  # on_broken: fail


def test_a_metric_with_no_samples_is_no_data(world):
    assert world("rtc_jitter_seconds")[:2] == ("broken", "no data for the query")


def test_a_stopped_prometheus_is_unreachable(tmp_path, world):
    server = RealPrometheus(tmp_path, {"rtc_loss_ratio": [({"region": "eu-west-1"}, 0.001)]}, time.time())
    try:
        assert world("rtc_loss_ratio", url=server.url)[0] == "holds"
    finally:
        server.stop()
    outcome, summary, _ = world("rtc_loss_ratio", url=server.url)
    assert (outcome, summary) == ("broken", f"Prometheus at {server.url} unreachable: connection refused")


def test_the_evaluator_reads_a_scalar_from_the_real_server(prometheus):
    at = datetime.fromtimestamp(prometheus.now, UTC)
    reading = evaluate(MetricCheck('scalar(rtc_loss_ratio{region="us-east-1"})', "<= 0.01"),
                       PrometheusSource(prometheus.url), at=at)
    assert reading[:3] == ("holds", 0.01, "0.01 (expect <= 0.01)")
