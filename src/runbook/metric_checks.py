"""Checks on real metrics: a Prometheus query and a condition its value must meet.

`evaluate(check, source)` asks a source (Prometheus over HTTP, or a fake in tests) for the
query's value now and says what it means: the condition **holds**, it does **not yet** hold, or
the check itself is **broken** (Prometheus unreachable, an HTTP or query error, no data, NaN).
Wait and verify steps map these onto their poll outcomes; staged degradations can call it too.

Every text that came from Prometheus is made one line and safe for a terminal before it is
returned. No engine, catalog or TUI imports; urllib is imported only when a query is sent.
"""

import math
import operator
import os
import re
from datetime import datetime
from typing import NamedTuple, Protocol

from runbook.text import one_line

HOLDS, NOT_YET, BROKEN = "holds", "not-yet", "broken"  # the same words as a wait's poll outcomes
DEFAULT_TIMEOUT = 10.0
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
             "!=": operator.ne}
# Strict: an operator, optional spaces, a plain decimal number (no NaN, Inf or hex). The schema's
# pattern for expect: is this one (tests/test_metric_checks.py holds them together).
EXPECT_PATTERN = r"^ *(<=|>=|==|!=|<|>) *([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?) *$"
_EXPECT = re.compile(EXPECT_PATTERN)
NO_DATA_DETAIL = "no data for the query"
DETAIL_LIMIT = 300  # a reading's detail goes into events and onto screens: one line, this long at most


class ExpectError(ValueError):
    """An expect: text that is not a condition."""


class CheckBroken(Exception):
    """The source could not answer: unreachable, an HTTP or query error. The message says why."""


class Condition(NamedTuple):
    op: str
    threshold: float

    def met(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {_number(self.threshold)}"


def parse_expect(text) -> Condition:
    """`< 0.02`, `<= 5`, `> 0`, `>= 0.99`, `== 0`, `!= 1`; anything else is an ExpectError naming it."""
    match = _EXPECT.match(text) if isinstance(text, str) else None
    if match is None:
        raise ExpectError(f"expect: {one_line(repr(text))} is not a condition; write an operator "
                          "(<, <=, >, >=, ==, !=) and a number, like \"< 0.02\"")
    return Condition(match.group(1), float(match.group(2)))


class MetricCheck(NamedTuple):
    """A PromQL instant query and the condition every series it returns must meet (`expect`)."""
    query: str
    expect: str

    @property
    def condition(self) -> Condition:
        return parse_expect(self.expect)

    def __str__(self) -> str:
        return f"prometheus: {self.query} expect {self.expect.strip()}"


class Series(NamedTuple):
    labels: dict
    value: float

    @property
    def name(self) -> str:
        """The series as PromQL writes it: `{region="eu-west-1"}` (the metric name first if any)."""
        labels = {k: v for k, v in self.labels.items() if k != "__name__"}
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return one_line(self.labels.get("__name__", "") + (f"{{{inner}}}" if inner else ""))


class Reading(NamedTuple):
    outcome: str  # holds, not-yet or broken
    value: float | None  # the value that decided it (the worst series), None when broken
    detail: str  # one line: "0.034 (expect < 0.02) at {region="eu-west-1"}", or why it broke
    series: tuple[Series, ...] = ()

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    @property
    def no_data(self) -> bool:
        """The query answered with no series (broken to a stage check; a wait may say otherwise)."""
        return self.outcome == BROKEN and not self.series and self.detail == NO_DATA_DETAIL

    @property
    def shown_value(self) -> str | None:
        """The deciding value as the detail writes it (0.034, +Inf); None when broken."""
        return None if self.value is None else _number(self.value)

    @property
    def output(self) -> str:
        """Every series and its value, one a line: what a step shows as its output."""
        return "\n".join(f"{s.name or '(value)'} {_number(s.value)}" for s in self.series)


class MetricSource(Protocol):
    def query(self, promql: str, at: datetime | None = None, timeout: float | None = None) -> list[Series]:
        """The query's value as series (a scalar is one series without labels). Raises CheckBroken."""


def evaluate(check: MetricCheck, source: MetricSource, at: datetime | None = None,
             timeout: float | None = None) -> Reading:
    """Ask `source` for `check.query` (at `at`, now when None) and compare every series with the
    condition: all meet it, holds; any does not, not-yet (naming the worst); no answer, broken."""
    try:
        condition = check.condition
    except ExpectError as exc:
        return Reading(BROKEN, None, _clip(str(exc)))
    try:
        series = source.query(check.query, at=at, timeout=timeout)
    except CheckBroken as exc:
        return Reading(BROKEN, None, _clip(one_line(str(exc))))
    if not series:
        return Reading(BROKEN, None, NO_DATA_DETAIL)
    series = tuple(series)
    nan = [s for s in series if math.isnan(s.value)]
    if nan:
        where = f" at {nan[0].name}" if nan[0].name else ""
        return Reading(BROKEN, None, _clip(f"the value is NaN{where} (no samples to compute it from?)"), series)
    failing = [s for s in series if not condition.met(s.value)]
    worst = _worst(failing or list(series), condition)
    said = f"{_number(worst.value)} (expect {condition})"
    if worst.name:
        said += f" at {worst.name}"
    if failing and len(series) > 1:
        said += f"; {len(failing)} of {len(series)} series do not meet it"
    return Reading(NOT_YET if failing else HOLDS, worst.value, _clip(said), series)


def _worst(series: list[Series], condition: Condition) -> Series:
    """The series furthest on the wrong side of (or closest to) the threshold; ties by name."""
    ordered = sorted(series, key=lambda s: s.name)
    if condition.op in ("<", "<="):
        return max(ordered, key=lambda s: s.value)
    if condition.op in (">", ">="):
        return min(ordered, key=lambda s: s.value)
    return max(ordered, key=lambda s: abs(s.value - condition.threshold))


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_LIMIT else text[:DETAIL_LIMIT - 1] + "…"


# Prometheus over HTTP -------------------------------------------------------------------------

class PrometheusSource:
    """Instant queries against Prometheus's HTTP API (`GET /api/v1/query`), with an optional bearer
    token, or basic authentication from a user:password@ in the address."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        import base64
        import urllib.parse

        parts = urllib.parse.urlsplit(url.rstrip("/"))
        self.authorization = f"Bearer {token}" if token else None
        if parts.username is not None:
            userinfo, _, host = parts.netloc.rpartition("@")
            self.authorization = self.authorization or "Basic " + base64.b64encode(
                urllib.parse.unquote(userinfo).encode()).decode()
            parts = parts._replace(netloc=host)
        self.url = urllib.parse.urlunsplit(parts)
        self.timeout = timeout

    @property
    def shown_url(self) -> str:
        """The address as messages show it (never with credentials: they were taken out of it)."""
        return one_line(self.url)

    def query(self, promql: str, at: datetime | None = None, timeout: float | None = None) -> list[Series]:
        import json
        import socket
        import urllib.error
        import urllib.parse
        import urllib.request

        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        request = urllib.request.Request(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
                                         headers={"Accept": "application/json"})
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        limit = timeout or self.timeout
        try:
            with urllib.request.urlopen(request, timeout=limit) as response:
                body = response.read(1 << 22)
        except urllib.error.HTTPError as exc:
            raise CheckBroken(self._http_error(exc, json)) from None
        except TimeoutError:
            raise CheckBroken(f"Prometheus at {self.shown_url} did not answer within {limit:g}s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                raise CheckBroken(f"Prometheus at {self.shown_url} did not answer within {limit:g}s") from None
            raise CheckBroken(f"Prometheus at {self.shown_url} unreachable: {_reason(exc.reason)}") from None
        except (OSError, ValueError) as exc:  # a reset connection, a malformed address
            raise CheckBroken(f"Prometheus at {self.shown_url} unreachable: {_reason(exc)}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise CheckBroken(f"Prometheus at {self.shown_url} answered something that is not JSON") from None
        return parse_answer(answer)

    def _http_error(self, exc, json) -> str:
        try:
            answer = json.loads(exc.read(1 << 16))
        except (ValueError, OSError):
            answer = None
        if isinstance(answer, dict) and answer.get("status") == "error":
            return _query_error(answer)
        return f"Prometheus at {self.shown_url} answered HTTP {exc.code} {exc.reason}"


def parse_answer(answer) -> list[Series]:
    """Series from a `/api/v1/query` answer: a vector's series, or a scalar as one series. Raises
    CheckBroken for an error answer, a range vector, a string, or anything malformed."""
    if not isinstance(answer, dict):
        raise CheckBroken("Prometheus's answer is not a query result")
    if answer.get("status") != "success":
        raise CheckBroken(_query_error(answer))
    data = answer.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    try:
        if kind == "vector":
            return [Series({str(k): str(v) for k, v in (item.get("metric") or {}).items()}, float(item["value"][1]))
                    for item in result]
        if kind == "scalar":
            return [Series({}, float(result[1]))]
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        raise CheckBroken(f"Prometheus's {one_line(str(kind))} result is malformed") from None
    if kind == "matrix":
        raise CheckBroken("the query returned a range vector; a check needs an instant vector or a scalar "
                          "(wrap it, e.g. max_over_time(...[5m]))")
    if kind == "string":
        raise CheckBroken("the query returned a string, not a number")
    raise CheckBroken(f"Prometheus's answer has an unknown result type {one_line(repr(kind))}")


def _query_error(answer: dict) -> str:
    kind, error = answer.get("errorType"), answer.get("error")
    said = f"{kind}: {error}" if kind and error else str(error or kind or "no reason given")
    return one_line(f"query error: {said}")


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return one_line(str(reason)) or type(reason).__name__


class NoPrometheus:
    """The source when no address is configured: every check is broken, saying how to set one."""

    def query(self, promql: str, at: datetime | None = None, timeout: float | None = None) -> list[Series]:
        raise CheckBroken("no Prometheus address (set RUNBOOK_PROMETHEUS_URL, e.g. http://prometheus:9090)")


def source_for(url: str | None, token: str | None = None) -> MetricSource:
    """Prometheus at `url` (RUNBOOK_PROMETHEUS_URL), with the bearer token RUNBOOK_PROMETHEUS_TOKEN
    unless one is given; NoPrometheus when there is no address."""
    if not url:
        return NoPrometheus()
    return PrometheusSource(url, token if token is not None else os.environ.get("RUNBOOK_PROMETHEUS_TOKEN"))
