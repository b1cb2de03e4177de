"""Checks on real metrics (prometheus: on wait and verify steps): the expect: parser, every outcome of
a query read from a fake Prometheus endpoint, and the engine's waits and verifies reading them on a
virtual clock. tests/test_prometheus.py runs the same against the real server."""

from __future__ import annotations

import json
import socket
from datetime import UTC
from pathlib import Path

import pytest
from prometheus_helpers import FakePrometheus, query_error, scalar, vector

from runbook.catalog import kinds, load
from runbook.engine import Engine, VirtualClock
from runbook.metric_checks import (
    BROKEN,
    EXPECT_PATTERN,
    HOLDS,
    NOT_YET,
    CheckBroken,
    Condition,
    ExpectError,
    MetricCheck,
    NoPrometheus,
    PrometheusSource,
    Series,
    evaluate,
    parse_expect,
    source_for,
)
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store
from runbook.views import build_view

HERE = Path(__file__).parent
LOSS = 'rtc_loss_ratio{region="eu-west-1"}'
FAILED_CALLS = "sum(rtc_calls_failed)"


@pytest.fixture
def prometheus():
    fake = FakePrometheus()
    yield fake
    fake.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


# expect: -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, condition", [
    ("< 0.02", Condition("<", 0.02)), ("<= 5", Condition("<=", 5)), ("> 0", Condition(">", 0)),
    (">= 0.99", Condition(">=", 0.99)), ("== 0", Condition("==", 0)), ("!= 1", Condition("!=", 1)),
    ("<0.5", Condition("<", 0.5)), ("> -3", Condition(">", -3)), ("< 1e-3", Condition("<", 0.001)),
    ("<= .5", Condition("<=", 0.5)), (" >= 10 ", Condition(">=", 10))])
def test_expect_reads_an_operator_and_a_number(text, condition):
    assert parse_expect(text) == condition


@pytest.mark.parametrize("text", ["=< 0.02", "< ", "0.02", "< 0.02 or > 1", "= 0", "<< 1", "< NaN", "< inf",
                                  "< 0x10", "below 5", "", "<\n1", 0.02, None])
def test_expect_refuses_anything_else_in_one_line_naming_it(text):
    with pytest.raises(ExpectError) as caught:
        parse_expect(text)
    message = str(caught.value)
    assert "\n" not in message and repr(text) in message
    assert "an operator (<, <=, >, >=, ==, !=) and a number" in message


def test_the_schema_refuses_exactly_what_the_parser_refuses():
    import re

    pattern = kinds.schema("Playbook")["$defs"]["prometheusCheck"]["properties"]["expect"]["pattern"]
    assert pattern == EXPECT_PATTERN
    for text in ["< 0.02", ">= .5", "== 0", "=< 1", "< 1 and", "< NaN"]:
        try:
            parse_expect(text)
            parsed = True
        except ExpectError:
            parsed = False
        assert (re.search(pattern, text) is not None) == parsed, text


def test_conditions_compare_as_written():
    assert [Condition(op, 1).met(v) for op in ("<", "<=", ">", ">=", "==", "!=") for v in (0, 1, 2)] == [
        True, False, False, True, True, False, False, False, True, False, True, True, False, True, False,
        True, False, True]


# readings from a fake Prometheus -----------------------------------------------------------

def read(prometheus, query=LOSS, expect="< 0.02", **kwargs):
    return evaluate(MetricCheck(query, expect), PrometheusSource(prometheus.url, **kwargs))


def test_every_series_meeting_the_condition_holds(prometheus):
    prometheus.answers[LOSS] = vector(({"region": "eu-west-1", "pop": "a"}, 0.01),
                                      ({"region": "eu-west-1", "pop": "b"}, 0.015))
    reading = read(prometheus)
    assert reading.outcome == HOLDS and reading.holds and reading.value == 0.015
    assert reading.detail == '0.015 (expect < 0.02) at {pop="b", region="eu-west-1"}'
    assert reading.output == '{pop="a", region="eu-west-1"} 0.01\n{pop="b", region="eu-west-1"} 0.015'


def test_one_series_not_meeting_it_is_not_yet_and_the_worst_is_named(prometheus):
    prometheus.answers[LOSS] = vector(({"__name__": "rtc_loss_ratio", "pop": "a"}, 0.01),
                                      ({"__name__": "rtc_loss_ratio", "pop": "b"}, 0.034),
                                      ({"__name__": "rtc_loss_ratio", "pop": "c"}, 0.025))
    reading = read(prometheus)
    assert reading.outcome == NOT_YET and reading.value == 0.034
    assert reading.detail == ('0.034 (expect < 0.02) at rtc_loss_ratio{pop="b"}; 2 of 3 series do not meet it')


@pytest.mark.parametrize("expect, worst", [("> 0.5", 0.2), ("<= 0.5", 0.9), ("== 0.5", 0.9), ("!= 0.2", 0.2)])
def test_the_worst_series_depends_on_the_condition(prometheus, expect, worst):
    prometheus.answers[LOSS] = vector(({"pop": "a"}, 0.2), ({"pop": "b"}, 0.9), ({"pop": "c"}, 0.6))
    reading = read(prometheus, expect=expect)
    assert reading.outcome == NOT_YET and reading.value == worst


def test_a_scalar_is_one_value(prometheus):
    prometheus.answers["scalar(x)"] = scalar("0.5")
    assert read(prometheus, "scalar(x)", ">= 0.5")[:3] == (HOLDS, 0.5, "0.5 (expect >= 0.5)")
    assert read(prometheus, "scalar(x)", "> 0.5")[:3] == (NOT_YET, 0.5, "0.5 (expect > 0.5)")


@pytest.mark.parametrize("answer, detail", [
    (vector(), "no data for the query"),
    (query_error("bad_data", 'invalid parameter "query": 1:6: parse error: unclosed left parenthesis'),
     'query error: bad_data: invalid parameter "query": 1:6: parse error: unclosed left parenthesis'),
    (query_error("execution", "query timed out in expression evaluation", 503),
     "query error: execution: query timed out in expression evaluation"),
    ((502, b"<html>bad gateway</html>"), "answered HTTP 502 Bad Gateway"),
    ((200, b"not json"), "answered something that is not JSON"),
    (vector(({"pop": "a"}, "NaN")), 'the value is NaN at {pop="a"} (no samples to compute it from?)'),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "the query returned a range vector"),
    ({"status": "success", "data": {"resultType": "string", "result": [0, "x"]}}, "returned a string, not a number"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "vector result is malformed"),
])
def test_a_check_that_cannot_say_is_broken_with_the_reason(prometheus, answer, detail):
    prometheus.answers[LOSS] = answer
    reading = read(prometheus)
    assert reading.outcome == BROKEN and reading.value is None
    assert detail in reading.detail


def test_an_unreachable_prometheus_is_broken_saying_where():
    port = closed_port()
    reading = evaluate(MetricCheck("up", "== 1"), PrometheusSource(f"http://user:secret@127.0.0.1:{port}/"))
    assert reading.outcome == BROKEN
    assert reading.detail == f"Prometheus at http://127.0.0.1:{port} unreachable: connection refused"


def test_a_prometheus_that_never_answers_is_broken_after_the_timeout():
    with socket.socket() as listening:  # accepts connections (the backlog) but never answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        reading = evaluate(MetricCheck("up", "== 1"), PrometheusSource(url), timeout=0.2)
    assert reading.outcome == BROKEN and reading.detail == f"Prometheus at {url} did not answer within 0.2s"


def test_texts_from_prometheus_are_one_line_and_inert(prometheus):
    prometheus.answers[LOSS] = query_error("bad_data", "evil\x1b]0;owned\x07\nsecond line\u202e")
    reading = read(prometheus)
    assert reading.detail == "query error: bad_data: evil\\x1b]0;owned\\x07⏎second line\\u202e"
    prometheus.answers[LOSS] = vector(({"pop": "a\x1b[31m\nb"}, 0.5))
    reading = read(prometheus)
    assert "\x1b" not in reading.detail + reading.output and "\n" not in reading.detail
    assert '{pop="a\\x1b[31m⏎b"}' in reading.detail


def test_the_query_the_time_and_the_token_are_sent(prometheus, monkeypatch):
    from datetime import datetime

    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    evaluate(MetricCheck(LOSS, "< 1"), PrometheusSource(prometheus.url, token="t0ken"), at=at)
    monkeypatch.setenv("RUNBOOK_PROMETHEUS_TOKEN", "from-env")
    evaluate(MetricCheck(LOSS, "< 1"), source_for(prometheus.url))
    monkeypatch.delenv("RUNBOOK_PROMETHEUS_TOKEN")
    evaluate(MetricCheck(LOSS, "< 1"), source_for(prometheus.url + "/"))
    first, second, third = prometheus.requests
    assert (first["path"], first["query"], first["time"]) == ("/api/v1/query", LOSS, f"{at.timestamp():.3f}")
    assert [r["authorization"] for r in (first, second, third)] == ["Bearer t0ken", "Bearer from-env", None]
    evaluate(MetricCheck(LOSS, "< 1"), PrometheusSource(prometheus.url.replace("//", "//ana:s%40cret@")))
    assert prometheus.requests[-1]["authorization"] == "Basic YW5hOnNAY3JldA=="  # ana:s@cret


def test_without_an_address_every_check_is_broken_saying_how_to_set_one():
    assert isinstance(source_for(None), NoPrometheus)
    reading = evaluate(MetricCheck("up", "== 1"), source_for(""))
    assert reading.outcome == BROKEN and "set RUNBOOK_PROMETHEUS_URL" in reading.detail


def test_any_source_will_do():
    class Static:
        def query(self, promql, at=None, timeout=None):
            if promql == "boom":
                raise CheckBroken("the fake broke")
            return [Series({}, 3.0)]

    assert evaluate(MetricCheck("x", "<= 5"), Static()).outcome == HOLDS
    assert evaluate(MetricCheck("boom", "<= 5"), Static())[:3] == (BROKEN, None, "the fake broke")
    assert evaluate(MetricCheck("x", "=< 5"), Static()).outcome == BROKEN  # an old snapshot's bad expect


def test_settings_read_the_address_from_the_environment(monkeypatch):
    monkeypatch.setenv("RUNBOOK_PROMETHEUS_URL", "http://prometheus:9090")
    assert Settings.from_environment().prometheus_url == "http://prometheus:9090"
    monkeypatch.delenv("RUNBOOK_PROMETHEUS_URL")
    assert Settings.from_environment().prometheus_url is None


# wait and verify steps in the engine ----------------------------------------------------------

@pytest.fixture
def world(tmp_path, prometheus):
    catalog = load([str(HERE / "metrics_catalog")])
    assert not catalog.errors, catalog.errors

    class World:
        clock = VirtualClock()
        fake = prometheus
        stores = []

        def engine(self, url=prometheus.url):
            store = Store(str(tmp_path / "db.sqlite"))
            self.stores.append(store)
            host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None,
                                       prometheus_url=url), entry_points=False)
            return Engine(store, self.clock, host, catalog)

    w = World()
    yield w
    for store in w.stores:
        store.close()


def at_wait(world, **kwargs):
    engine = world.engine(**kwargs)
    iid = engine.open("video-loss", "ana").id
    engine.acknowledge(iid, "ana")
    engine.complete(iid, "ana", "look")
    return engine, iid


def polls(events):
    return [(e.data["poll"], e.data["outcome"], e.data["summary"]) for e in events if e.type == "check_polled"]


def test_a_wait_polls_the_query_until_it_holds(world):
    engine, iid = at_wait(world)
    world.fake.answers[LOSS] = vector(({"region": "eu-west-1"}, 0.034))
    world.clock.advance(seconds=30)
    fired = engine.tick(iid)
    assert polls(fired) == [(1, "not-yet", '0.034 (expect < 0.02) at {region="eu-west-1"}')]
    assert fired[0].record.describe() == 'poll 1 of loss-low: 0.034 (expect < 0.02) at {region="eu-west-1"}, not yet'
    assert fired[0].data["value"] == "0.034"  # the value the wait saw, as read
    assert world.fake.requests[-1]["query"] == LOSS  # the template filled with the region
    world.fake.answers[LOSS] = vector(({"region": "eu-west-1"}, 0.012))
    world.clock.advance(seconds=30)
    fired = engine.tick(iid)
    assert polls(fired) == [(2, "holds", '0.012 (expect < 0.02) at {region="eu-west-1"}')]
    assert engine.state(iid).current["main"] == "calls-ok"
    assert engine.state(iid).steps["loss-low"].output == '{region="eu-west-1"} 0.012'


def test_a_broken_check_goes_to_on_broken(world):
    engine, iid = at_wait(world)
    world.fake.answers[LOSS] = vector()
    world.clock.advance(seconds=30)
    fired = engine.tick(iid)
    assert polls(fired) == [(1, "broken", "no data for the query")]
    assert "check broken — no data for the query" in fired[0].record.describe()
    failed = next(e for e in fired if e.type == "step_failed")
    assert failed.data["reason"] == "the check broke: no data for the query"
    assert engine.state(iid).current["main"] == "look-by-hand"


def test_an_unreachable_prometheus_breaks_the_check_and_a_wait_that_never_holds_times_out(world):
    engine, iid = at_wait(world, url=f"http://127.0.0.1:{closed_port()}")
    world.clock.advance(seconds=30)
    (poll,) = polls(engine.tick(iid))
    assert poll[1] == "broken" and poll[2].endswith("unreachable: connection refused")
    assert engine.state(iid).current["main"] == "look-by-hand"

    engine, iid = at_wait(world)  # a second incident: the loss stays high until timeout:
    world.fake.answers[LOSS] = vector(({"region": "eu-west-1"}, 0.05))
    world.clock.advance(minutes=11)
    fired = engine.tick(iid)
    assert [p[1] for p in polls(fired)] == ["not-yet"]
    assert any(e.type == "step_failed" and e.data.get("timeout") for e in fired)
    assert engine.state(iid).current["main"] == "page"


def test_checking_a_wait_by_hand_is_one_more_poll(world):
    engine, iid = at_wait(world)
    world.fake.answers[LOSS] = vector(({"region": "eu-west-1"}, 0.001))
    assert [p[1] for p in polls(engine.run(iid, "ana", "loss-low"))] == ["holds"]


def test_a_verify_passes_when_the_check_holds_and_fails_otherwise_saying_why(world):
    engine, iid = at_wait(world)
    world.fake.answers[LOSS] = vector(({"region": "eu-west-1"}, 0.001))
    engine.run(iid, "ana", "loss-low")

    world.fake.answers[FAILED_CALLS] = vector(({}, 3))
    events = engine.run(iid, "ana", "calls-ok")
    started, finished = (e for e in events if e.type.startswith("action_"))
    assert started.data["check"] == {"query": FAILED_CALLS, "expect": "== 0"}
    assert started.record.describe() == "checking prometheus: sum(rtc_calls_failed) expect == 0"
    assert (finished.data["ok"], finished.data["outcome"], finished.data["handler"]) == (False, "not-yet", "prometheus")
    assert finished.record.describe() == "prometheus check NOT MET: 3 (expect == 0)"
    assert next(e for e in events if e.type == "step_failed").data["reason"] == "3 (expect == 0)"
    assert engine.state(iid).current["main"] == "page"

    engine.restart(iid, "ana", "calls-ok", "the fix is out")
    world.fake.answers[FAILED_CALLS] = query_error("bad_data", "unknown function sum2")
    events = engine.run(iid, "ana", "calls-ok")
    finished = next(e for e in events if e.type == "action_finished")
    assert finished.data["outcome"] == "broken"
    assert finished.record.describe() == ("prometheus check CHECK BROKEN: the check broke: query error: bad_data: "
                                          "unknown function sum2")

    engine.restart(iid, "ana", "calls-ok", "fixed the query server")
    world.fake.answers[FAILED_CALLS] = vector(({}, 0))
    events = engine.run(iid, "ana", "calls-ok")
    assert next(e for e in events if e.type == "action_finished").data["outcome"] == "holds"
    assert engine.state(iid).mitigated_at is not None


def test_a_value_that_cannot_be_filled_breaks_the_check_saying_which(world):
    engine, iid = at_wait(world)
    state = engine.state(iid)  # lint refuses an unknown field; an old snapshot may still hold one
    step = state.playbook.step("loss-low")._replace(prometheus=MetricCheck('x{{r="{nothing}"}}', "< 1"))
    reading = engine.effects.read_metrics(state, step, 1.0)
    assert reading.outcome == BROKEN and reading.detail.startswith("step 'loss-low' not run: prometheus: query")
    assert world.fake.requests == []


def test_the_engine_reads_from_an_injected_source(world):
    class Fixed:
        def query(self, promql, at=None, timeout=None):
            self.asked = (promql, at)
            return [Series({}, 0.0)]

    engine, iid = at_wait(world, url=None)
    engine.metrics_source = source = Fixed()
    world.clock.advance(seconds=30)
    assert [p[1] for p in polls(engine.tick(iid))] == ["holds"]
    assert source.asked == (LOSS, world.clock.now())  # read at the engine's time


def test_the_current_step_shows_the_query_and_the_condition(world):
    engine, iid = at_wait(world)
    view = build_view(engine.state(iid), world.clock.now())
    step = next(s for s in view.current if s.id == "loss-low")
    assert step.command == 'prometheus: rtc_loss_ratio{region="eu-west-1"} expect < 0.02'


def test_show_outlines_the_check(fixture_env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "runbook", "show", "video-loss"], cwd=HERE / "metrics_catalog",
                         env={**fixture_env, "RUNBOOK_CATALOG": "."}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # as it will be read: the region's default filled, the doubled braces one brace each
    assert 'checks prometheus: rtc_loss_ratio{region="eu-west-1"} expect < 0.02' in out.stdout


def test_a_simulation_never_queries_prometheus(world):
    from runbook.drills.simulated import SimulatedPlugins

    reading = SimulatedPlugins().read_metrics(MetricCheck("up", "== 1"))
    assert reading.outcome == HOLDS
    assert json.dumps(world.fake.requests) == "[]"
