"""Captures and decisions answered from them: values read from a step's output become
parameters for later steps, a decision suggests the option its captured value or exit code
points at, and the responder may take it or override it. The test playbook using every feature
of the issue (tests/params_catalog/everything.yaml) is driven through the headless CLI and a TUI
Pilot test; lint and the engine's edge cases on small playbooks."""

from __future__ import annotations

import asyncio
import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pilot_helpers import widget_text

from runbook.catalog import load
from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.errors import CommandError
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app

HERE = Path(__file__).parent
PARAMS_CATALOG = HERE / "params_catalog"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LABELS = ("--label", "severity=critical", "--label", "region=eu-west-1", "--label", "instance=web-1",
          "--label", "alertname=RtcMediaDiskFull")


# the headless CLI, end to end ---------------------------------------------------------------

@pytest.fixture
def rb(rb, fixture_catalog, tmp_path):
    rb.cwd, rb.catalogs = tmp_path, [fixture_catalog / "playbooks", PARAMS_CATALOG]
    return rb


def _events(out: str, kind: str) -> list[dict]:
    return [e["data"] for e in json.loads(out) if e["type"] == kind]


def _to_decide(rb) -> str:
    iid = rb("incident", "open", "disk-filling-up", *LABELS).strip()
    rb("incident", "step", iid, "--done")
    out = rb("incident", "step", iid, "--run", "--json")  # find-writer
    cwd_region_argv = json.loads(_events(out, "action_finished")[0]["output"].splitlines()[0])
    # cwd and env, a value inside one argument, escaped braces: exactly what was shown
    assert cwd_region_argv == ["/tmp", "eu-west-1", ["--host=web-1", "--template={{.pid}}", "web-1.eu-west-1"]]
    assert _events(out, "parameters_set") == [{"values": {"pid": "4242"}, "sources": {"pid": "capture:find-writer"}}]
    out = rb("incident", "step", iid, "--run", "--json")  # get-pod: the captured pid is its argument
    assert _events(out, "action_started")[0]["argv"][-1] == "4242"
    assert _events(out, "parameters_set")[0]["values"] == {"pod": "media-4242"}  # from JSON
    rb("incident", "step", iid, "--run")  # check-disk: used=93, checked against its integer type
    return iid


def test_the_everything_playbook_validates(rb):
    assert rb("validate", "--strict").startswith("valid")


def test_cli_captures_feed_commands_and_a_decision_is_suggested_and_overridden(rb):
    iid = _to_decide(rb)
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["severity"] == "SEV1" and data["severity_source"] == "from label severity=critical"
    assert data["parameters"] == {"host": "web-1", "region": "eu-west-1", "pid": "4242", "pod": "media-4242",
                                  "used": "93"}
    assert data["parameter_sources"]["used"] == "capture:check-disk"
    assert data["suggestions"] == {"decide": {"option": 1, "label": "Clean up the pod",
                                              "from": "check-disk: used=93", "value": "93"}}
    opened = [e for e in data["events"] if e["type"] == "escalated"]
    assert opened and opened[0]["data"].get("policy") == "rtc-critical"  # the SEV1 ladder
    shown = rb("incident", "show", iid)
    assert "decide: The disk of media-4242 is 93% full. Clean up? (decision)" in shown
    assert "suggested: 1. Clean up the pod (from check-disk: used=93; take it with --suggested" in shown
    assert "| Filesystem /data used=93%" in shown  # the output of each step's last run
    # the responder overrides the suggestion; the log says so
    out = rb("incident", "choose", iid, "Leave it")
    assert "decide: chose 'Leave it' over the suggested 'Clean up the pod' → recheck" in out
    rb("incident", "step", iid, "--run")  # recheck exits 0
    assert "suggested: 1. Healthy (from recheck: exit code 0;" in rb("incident", "show", iid)
    out = rb("incident", "choose", iid, "--suggested")
    assert "healthy: chose 'Healthy' as suggested → tell" in out
    shown = rb("incident", "show", iid)
    assert "tell: Tell support (communicate)" in shown
    export = rb("incident", "export", iid)
    assert "- Parameter pid: 4242 (capture:find-writer)" in export
    assert "chose 'Leave it' over the suggested 'Clean up the pod'" in export


def test_cli_takes_the_suggestion_into_a_command_using_two_captures(rb):
    iid = _to_decide(rb)
    assert "chose 'Clean up the pod' as suggested → clean" in rb("incident", "choose", iid, "--suggested")
    assert "$ python3 -c 'import sys, json; print(json.dumps(sys.argv[1:]))' kill 4242 --pod=media-4242" \
        in rb("incident", "show", iid)
    rb("incident", "approve", iid, "clean")
    out = rb("incident", "step", iid, "--run", "--json")
    assert json.loads(_events(out, "action_finished")[0]["output"]) == ["kill", "4242", "--pod=media-4242"]
    err = rb("incident", "choose", iid, "--suggested", expect=5)
    assert err == "runbook: error: step 'recheck' is a action step, not a decision\n"


def test_cli_choose_needs_an_option_or_suggested(rb):
    iid = _to_decide(rb)
    assert rb("incident", "choose", iid, expect=2).startswith("runbook: error: missing OPTION")
    assert "not both" in rb("incident", "choose", iid, "1", "--suggested", expect=2)


# the TUI --------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks"), str(PARAMS_CATALOG)]))
    store.close()


async def _settle(pilot):
    for _ in range(5):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_tui_shows_the_output_the_suggestion_and_c_preselects_it(engine):
    from textual.widgets import OptionList

    from runbook.tui.dialogs.choice import ChoiceDialog
    from runbook.tui.screens.incident import IncidentScreen

    state = engine.open("disk-filling-up", "ana", labels={"region": "eu-west-1", "instance": "web-1",
                                                          "severity": "critical"})
    iid = state.id
    engine.complete(iid, "ana")
    for _ in range(3):
        engine.run(iid, "ana")
    app = build_app(EngineService(engine), engine.catalog, "ana", live=False, incident=iid)

    async def walk():
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            title = str(app.screen.query_one("#current-title").render())
            assert "suggested: 1. Clean up the pod (from check-disk: used=93)" in title
            output = widget_text(app.screen.query_one("#current-instructions"))
            assert "last run of check-disk: exit 0" in output and "Filesystem /data used=93%" in output
            header = str(app.screen.query_one("#incident-header").render())
            assert "pod=media-4242" in header and "used=93" in header
            await pilot.press("c")
            await _settle(pilot)
            assert isinstance(app.screen, ChoiceDialog)
            assert app.screen.query_one("#choices", OptionList).highlighted == 0  # the suggestion
            await pilot.press("down", "enter")  # the responder overrides it
            await _settle(pilot)
            assert engine.state(iid).current["main"] == "recheck"
            # round the loop: check-disk is current again and shows its own last run
            engine.complete(iid, "ana", "recheck")
            engine.choose(iid, "ana", "Still failing")
            app.screen.refresh_view()
            await _settle(pilot)
            output = widget_text(app.screen.query_one("#current-instructions"))
            assert output.startswith("last run: exit 0") and "used=93%" in output

    asyncio.run(walk())
    decided = [e.record for e in engine.state(iid).events if e.type == "decision_made"]
    assert decided[0].label == "Leave it" and decided[0].suggested == "Clean up the pod"


def test_tui_shows_a_failed_run_escaped(tmp_path, fixture_catalog):
    catalog = _catalog(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [python3, -c, "import sys; print('pid 4242'); print('\\\\x1b]0;pwned\\\\x07'); sys.exit(3)"]
        capture: {pid: {regex: "pid=(\\\\d+)"}}
      - Fix it
    """)
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, catalog)
    iid = engine.open("cap", "ana").id
    events = engine.run(iid, "ana")
    missed = [e for e in events if e.type == "capture_missed"]
    assert [e.record.reason for e in missed] == ["no match for pid=(\\d+)"]
    assert "look: nothing captured for pid: no match for pid=(\\d+)" in [e.record.describe() for e in missed]
    app = build_app(EngineService(engine), engine.catalog, "ana", live=False, incident=iid)

    async def walk():
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot)
            output = widget_text(app.screen.query_one("#current-instructions"))
            assert "last run: exit 3" in output and "pid 4242" in output
            assert "\x1b" not in output and "\\x1b]0;pwned\\x07" in output

    asyncio.run(walk())
    store.close()


# the engine's edge cases --------------------------------------------------------------------

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: cap
title: Captures
service: rtc
severity: SEV2
escalation: rtc-default
symptoms: [{id: s, summary: Something}]
PARAMS
steps:
"""


def _catalog(tmp_path, fixture_catalog, steps: str, params: str = "", check: bool = True):
    folder = tmp_path / "catalog"
    folder.mkdir(exist_ok=True)
    (folder / "cap.yaml").write_text(PLAYBOOK.replace("PARAMS", params) + textwrap.indent(textwrap.dedent(steps), "  "))
    return (load if check else load_catalog)([str(fixture_catalog / "playbooks" / "severity.yaml"),
                 str(fixture_catalog / "playbooks" / "escalation-rtc-default.yaml"),
                 str(fixture_catalog / "playbooks" / "roster.yaml"), str(folder)])


def _engine(tmp_path, fixture_catalog, steps, params=""):
    catalog = _catalog(tmp_path, fixture_catalog, steps, params)
    assert not catalog.errors, catalog.errors
    store = Store(":memory:")
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    return Engine(store, VirtualClock(START), host, catalog)


def test_a_value_failing_its_declared_pattern_is_refused_and_said(tmp_path, fixture_catalog):
    engine = _engine(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [python3, -c, "print('pod: bad pod!'); print('{{\\"n\\": [1, {{\\"x\\": true}}]}}')"]
        capture:
          pod: {regex: "pod: (.*)"}
          flag: {json: n.1.x}
      - {id: use, kind: action, title: "Use {pod}", run: [echo, "{pod}"]}
    """, params="parameters:\n  pod: {pattern: '^[a-z0-9-]+$'}\n")
    iid = engine.open("cap", "ana").id  # a captured parameter is not asked for at open
    events = engine.run(iid, "ana")
    missed = {e.record.name: e.record.reason for e in events if e.type == "capture_missed"}
    assert missed == {"pod": "'bad pod!' refused: it does not match ^[a-z0-9-]+$",
                      "flag": "the output is not JSON (Expecting value: line 1 column 1 (char 0))"}
    state = engine.state(iid)
    assert "pod" not in state.parameters
    with pytest.raises(CommandError, match=r"step .use. not run: {pod} has no value yet: step .look. captures it"):
        engine.run(iid, "ana")
    engine.set_parameter(iid, "ana", "pod", "media-1")  # the responder fills it by hand
    assert engine.run(iid, "ana")[-1].type == "track_finished"


def test_json_paths_numbers_and_booleans(tmp_path, fixture_catalog):
    engine = _engine(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [python3, -c, "import json; print(json.dumps(dict(n=[1, dict(x=True, y=2.5, z=None)])))"]
        capture:
          x: {json: n.1.x}
          y: {json: n.1.y}
          z: {json: n.1.z}
          w: {json: n.2.x}
      - {id: use, title: "x={x} y={y}"}
    """)
    iid = engine.open("cap", "ana").id
    events = engine.run(iid, "ana")
    assert engine.state(iid).parameters == {"x": "true", "y": "2.5"}
    missed = {e.record.name: e.record.reason for e in events if e.type == "capture_missed"}
    assert missed == {"z": "n.1.z is null, not a text or a number", "w": "n.2.x: no '2' under n"}


def test_an_undeclared_capture_in_a_command_not_yet_captured_says_which_step_captures_it(tmp_path, fixture_catalog):
    engine = _engine(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [python3, -c, "print('nothing here')"]
        capture: {pid: {regex: "pid=(\\\\d+)"}}
      - {id: kill, kind: action, title: "Kill {pid}", run: [echo, kill, "{pid}"]}
    """)
    iid = engine.open("cap", "ana").id
    engine.run(iid, "ana")
    with pytest.raises(CommandError) as caught:
        engine.run(iid, "ana")
    assert str(caught.value) == (f"step 'kill' not run: {{pid}} has no value yet: step 'look' captures it from its "
                                 f"output (not run yet, or nothing matched); or set it with "
                                 f"`runbook incident param {iid} pid=VALUE`")
    engine.set_parameter(iid, "ana", "pid", "77")  # an override, checked as one line of text
    assert engine.state(iid).parameter_sources["pid"] == "param"


def test_a_wait_captures_from_the_poll_that_held_and_no_suggestion_without_a_value(tmp_path, fixture_catalog):
    engine = _engine(tmp_path, fixture_catalog, """\
      - id: ready
        kind: wait
        title: Wait for the pod
        run: [python3, -c, "print('pod=media-7 ready')"]
        timeout: 5m
        capture: {pod: {regex: "pod=(\\\\S+)"}}
      - id: go
        kind: decision
        question: Which?
        from: {step: ready, capture: pod}
        options:
          - {label: Media, when: {matches: "^media-"}, next: end}
          - {label: Other, next: end}
    """)
    iid = engine.open("cap", "ana").id
    engine.run(iid, "ana")  # a poll by hand
    state = engine.state(iid)
    assert state.parameters == {"pod": "media-7"} and state.current["main"] == "go"
    from runbook.engine import answers

    assert answers.suggestion(state, state.playbook.step("go")).label == "Media"


def test_choose_suggested_without_a_value_says_why(tmp_path, fixture_catalog):
    engine = _engine(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [python3, -c, "print('x')"]
        capture: {used: {regex: "used=(\\\\d+)"}}
      - id: go
        kind: decision
        question: Full?
        from: {step: look, capture: used}
        options:
          - {label: Full, when: {above: 90}, next: end}
          - {label: Fine, when: {below: 91}, next: end}
    """)
    iid = engine.open("cap", "ana").id
    engine.run(iid, "ana")
    with pytest.raises(CommandError,
                       match="step 'go' has no suggestion: step 'look' has not captured a value for used yet"):
        engine.choose(iid, "ana", None, suggested=True)
    engine.choose(iid, "ana", "Fine")
    decided = next(e for e in engine.state(iid).events if e.type == "decision_made")
    assert "suggested" not in decided.data  # no suggestion: stored as decisions always were


# lint -------------------------------------------------------------------------------------

def _problems(tmp_path, fixture_catalog, steps, params=""):
    catalog = _catalog(tmp_path, fixture_catalog, steps, params, check=False)
    return [f"{p.line}:{p.column}: {p.message}" + (" (warning)" if p.severity == "warning" else "")
            for p in catalog.problems if p.file.endswith("cap.yaml")]


def test_lint_captures(tmp_path, fixture_catalog):
    problems = _problems(tmp_path, fixture_catalog, """\
      - id: early
        kind: action
        title: "Use {pid} before it is captured"
        run: [echo, "{pid}"]
      - id: look
        kind: action
        title: Look
        run: [echo, hi]
        capture:
          pid: {regex: "pid=\\\\d+"}
          two: {regex: "(a)(b)"}
          incident: {regex: "(x)"}
          bad: {regex: "(x"}
      - {id: use, kind: action, title: Use, run: [echo, "{pid}", "{pdi}"]}
    """)
    text = "\n".join(problems)
    assert "20:20: the regex 'pid=\\d+' has 0 groups; a capture takes exactly one group, the value (write (?:...) " \
           "for a group that only groups)" in text
    assert "21:20: the regex '(a)(b)' has 2 groups" in text
    assert "22:7: capture 'incident' has the name of the built-in {incident}" in text
    assert "23:20: invalid regular expression: missing ), unterminated subpattern" in text
    assert "{pdi} has no value" in text and "did you mean 'pid'?" in text
    assert "11:5: {pid} is captured by step 'look', which comes after this one: it has no value when this step " \
           "runs unless a loop goes back (warning)" in text


def test_lint_decisions_from_captures(tmp_path, fixture_catalog):
    problems = _problems(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [echo, used=3]
        capture: {used: {regex: "used=(\\\\d+)"}}
      - id: a
        kind: decision
        question: A?
        from: {step: lok, capture: used}
        options:
          - {label: X, when: {above: 1}, next: b}
          - {label: Y, next: b}
      - id: b
        kind: decision
        question: B?
        from: {step: look, capture: usd}
        options:
          - {label: X, when: {matches: "(oops"}, next: c}
          - {label: Y, next: c}
      - id: c
        kind: decision
        question: C?
        from: {step: a, exit_code: true}
        options:
          - {label: X, when: {equals: 0}, next: d}
          - {label: Y, next: d}
      - id: d
        kind: decision
        question: D?
        options:
          - {label: X, when: {equals: "0"}, next: end}
          - {label: Y, next: end}
    """)
    text = "\n".join(problems)
    assert "19:18: step 'lok' does not exist, known steps: a, b, c, d, look; did you mean 'look'?" in text
    assert "26:33: step 'look' captures no 'usd' (it captures: used); did you mean 'used'?" in text
    assert "28:36: invalid regular expression: missing ), unterminated subpattern" in text
    assert "33:18: step 'a' runs no command (run: or uses:), so it has no output or exit code" in text
    assert "41:20: when: suggests this option from a value, but the step has no from:" in text


def test_schema_errors_for_captures_have_positions(tmp_path, fixture_catalog):
    problems = _problems(tmp_path, fixture_catalog, """\
      - id: look
        kind: action
        title: Look
        run: [echo, hi]
        capture: {pid: {regex: "(x)", json: a}, pod: {jsn: a}}
    """)
    assert problems == ["15:20: has 2 entries (regex, json), expected exactly one of {regex: PATTERN} with one "
                        "group, {json: PATH} like items.0.metadata.name, or {jmespath: EXPRESSION}; optionally "
                        "suggest: TEXT",
                        "15:51: unknown field 'jsn' in a capture, expected one of: jmespath, json, regex, suggest; "
                        "did you mean 'json'?"]
    problems = _problems(tmp_path, fixture_catalog, """\
      - {id: manual, title: By hand, capture: {x: {json: a.b}}}
    """)
    assert problems[0] == ("11:5: a step with capture needs a kind, expected kind: action or kind: wait or "
                           "kind: verify (a step without kind is a check)")
