"""The built-in shell action: argv lists, whole-argument parameters, timeouts, captured output."""

from __future__ import annotations

import json
import os
import select
import sys

import pytest

from runbook.default_plugins.shell_action import ArgumentError, substitute
from runbook.pluginapi import ActionRequest
from runbook.plugins import PluginHost
from runbook.settings import Settings

PY = sys.executable


@pytest.fixture
def host(tmp_path):
    return PluginHost(Settings(flags_file=str(tmp_path / "f.json"), plugins_dir=None), entry_points=False)


def test_parameters_stay_one_argument_and_never_reach_a_shell(host, tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"eu-west-1; touch {marker} $(touch {marker})"
    result, _ = host.run_action(ActionRequest(
        argv=(PY, "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", "{region}", "--flag"),
        params={"region": hostile}))
    assert result.ok and result.exit_code == 0
    assert result.output.strip() == f'["{hostile}", "--flag"]'.replace("$(", "$(")
    assert not marker.exists()


def test_a_parameter_fills_part_of_one_argument_and_other_braces_are_text():
    assert substitute(["--region={region}", "pvc/{pvc}"], {"region": "eu west", "pvc": "a;b"}) == \
        ["--region=eu west", "pvc/a;b"]
    assert substitute(["awk", "{print $1}", "{n}", "{b}"], {"n": 3, "b": True}) == ["awk", "{print $1}", "3", "true"]
    with pytest.raises(ArgumentError, match=r"parameter \{node\} has no value"):
        substitute(["x/{node}"], {})


def test_rendered_argv_runs_as_given_with_cwd_and_env(host, tmp_path):
    code = "import os, sys, json; print(json.dumps([os.getcwd(), os.environ['RB_X'], sys.argv[1:]]))"
    result, _ = host.run_action(ActionRequest(argv=(PY, "-c", code, "{not-a-field}"), rendered=True,
                                              cwd=str(tmp_path), env={"RB_X": "a b"}))
    assert result.ok, result
    assert result.output.strip() == json.dumps([str(tmp_path), "a b", ["{not-a-field}"]])


def test_missing_working_directory_fails_the_step_without_running(host, tmp_path):
    result, _ = host.run_action(ActionRequest(argv=("echo", "hi"), rendered=True, cwd=str(tmp_path / "gone")))
    assert (result.ok, result.summary) == (False, f"not run: working directory {tmp_path / 'gone'} does not exist")


def test_exit_status_is_the_outcome(host):
    result, _ = host.run_action(ActionRequest(argv=(PY, "-c", "import sys; print('boom'); sys.exit(3)")))
    assert (result.ok, result.exit_code, result.output) == (False, 3, "boom\n")
    assert result.summary.startswith("failed with exit status 3: ")


def ends_within(pid: int, seconds: float) -> bool:
    """Whether process `pid` has ended (a zombie waiting to be reaped counts) or does within `seconds`."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], seconds)[0])
    finally:
        os.close(handle)


def test_timeout_kills_the_command_and_its_children(host):
    # the command starts a child of its own and prints both process ids, then both sleep
    code = ("import os, subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); print(os.getpid(), child.pid, flush=True); time.sleep(60)")
    result, _ = host.run_action(ActionRequest(argv=(PY, "-c", code), timeout=3))
    assert result.ok is False and result.exit_code is None
    assert result.summary.startswith("timed out after 3s")
    command, child = map(int, result.output.split())
    # the whole process group was killed: the command's own child too, which nobody waits for
    assert ends_within(command, 30) and ends_within(child, 30), "the command's child outlived the timeout"


def test_missing_command_is_a_failed_result(host):
    result, _ = host.run_action(ActionRequest(argv=("no-such-command-runbook",)))
    assert (result.ok, result.summary) == (False, "command not found: no-such-command-runbook")


def test_output_is_truncated_to_the_tail(host):
    result, _ = host.run_action(ActionRequest(argv=(PY, "-c", "print('x' * 100000 + 'END')")))
    assert result.ok and result.output.startswith("[... ") and result.output.endswith("END\n")
    assert len(result.output) < 17 * 1024


def test_missing_parameter_is_reported_without_running(host):
    result, _ = host.run_action(ActionRequest(argv=("echo", "{node}")))
    assert (result.ok, result.summary) == (False, "not run: parameter {node} has no value")
