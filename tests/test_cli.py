"""The runbook command as a user meets it: exit codes, formats, help and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from runbook.cli import cli

BROKEN = """\
apiVersion: runbook/v1
kind: Playbook
id: broken
title: Broken
service: rtc-video
severity: SEV2
escalation: rtc-default
steps:
  - id: first
    title: Look
    next: secnd
  - id: second
    title: Fix
    mitigates: true
"""


@pytest.fixture
def run(in_fixture_catalog):
    def invoke(*args):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_validate_shipped_catalog_exits_zero(run, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)  # the shipped catalog itself, not the fixture copy
    result = run("validate", "--strict")
    assert result.exit_code == 0, result.output
    assert "valid: 0 errors, 0 warnings" in result.output


def test_validate_broken_playbook_prints_file_line_col_and_exits_one(run, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    result = run("validate", str(bad))
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first == (f"{bad}:11:11: steps[0].next: step 'secnd' does not exist in this track, "
                     "expected a step id or 'end'; did you mean 'second'?")
    assert "Traceback" not in result.output


def test_validate_single_file_resolves_references_against_the_catalog(run, fixture_catalog):
    result = run("validate", str(fixture_catalog / "playbooks" / "video-call-degraded.yaml"))
    assert result.exit_code == 0, result.output
    assert "1 file" in result.output


def test_validate_json_report(run, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    result = run("validate", "--format", "json", str(bad))
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False
    assert report["errors"][0] | {"message": ""} == {
        "file": str(bad), "line": 11, "column": 11, "path": "steps[0].next", "message": "",
        "severity": "error", "code": "reference"}


def test_strict_makes_warnings_fail(run, tmp_path):
    doc = tmp_path / "warn.yaml"
    doc.write_text(BROKEN.replace("secnd", "second").replace("    mitigates: true\n", ""))
    assert run("validate", str(doc)).exit_code == 0
    result = run("validate", "--strict", str(doc))
    assert result.exit_code == 1
    assert "warning: steps: no step has mitigates: true" in result.output


def test_usage_errors_exit_two(run, tmp_path):
    assert run("validate", str(tmp_path / "nope.yaml")).exit_code == 2
    assert run("validate", "--format", "xml").exit_code == 2
    assert run("schema", "Playbok").exit_code == 2
    assert run("match").exit_code == 2
    assert run("match", "--label", "novalue").exit_code == 2


def test_missing_catalog_is_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_CATALOG", raising=False)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 2
    assert "no catalog here: ./playbooks does not exist" in result.output


def test_catalog_option_and_environment(run, fixture_catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("--catalog", str(fixture_catalog / "playbooks"), "list", "--kind", "roster").exit_code == 0
    monkeypatch.setenv("RUNBOOK_CATALOG", str(fixture_catalog / "playbooks"))
    result = run("list", "--kind", "Roster", "--json")
    assert [row["id"] for row in json.loads(result.output)] == ["rtc-oncall"]


def test_list_json_names_every_document(run):
    rows = json.loads(run("list", "--json").output)
    kinds = {row["kind"] for row in rows}
    assert kinds >= {"Playbook", "SeverityPolicy", "EscalationPolicy", "Roster"}
    assert all(row["file"].startswith(("playbooks/", "drills/")) and row["line"] >= 1 for row in rows)
    assert "Drill" in kinds


def test_show_playbook_outline(run):
    result = run("show", "video-call-degraded")
    assert result.exit_code == 0
    out = result.output
    for section in ("Severity", "Escalation at other severities (rtc-default)", "Escalation at SEV1 (rtc-critical)",
                    "Symptoms", "Degradations", "Steps"):
        assert f"\n{section}" in out
    assert "acknowledge within 10m" in out
    assert "from alert label severity: critical → SEV1, page → SEV1, warning → SEV3 (other values: SEV2)" in out
    assert "L2 at +5m: rotation rtc-secondary (now: " in out
    assert "L2 at +3m: Mara Okafor" in out  # the SEV1 ladder
    assert "├─" in out and "→" in out


def test_show_unknown_id_suggests(run):
    result = run("show", "video-call-degrade")
    assert result.exit_code == 3
    assert "did you mean 'video-call-degraded'?" in result.output


def test_match_ranks_by_text_with_reasons(run):
    result = run("match", "video freezing in one region", "--json")
    ranked = json.loads(result.output)
    assert ranked[0]["playbook"] == "video-call-degraded"
    assert any("'freezing'" in reason for reason in ranked[0]["reasons"])


def test_match_takes_several_words_without_quotes(run):
    result = run("match", "video", "freezing", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["playbook"] == "video-call-degraded"


def test_overview_counts_kinds_in_plain_english(run):
    output = run().output
    assert "EscalationPolicies" in output and "EscalationPolicys" not in output


def test_schema_lists_kinds_and_prints_json(run):
    listing = run("schema").output
    assert "Playbook" in listing and "Roster" in listing
    schema = json.loads(run("schema", "playbook").output)
    assert schema["properties"]["kind"] == {"const": "Playbook"}


def test_overview_without_command(run):
    result = run()
    assert result.exit_code == 0
    assert "valid" in result.output and "video-call-degraded" in result.output


def test_installed_command_never_shows_a_traceback(fixture_catalog, fixture_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"title: \xff garbage")
    proc = subprocess.run([sys.executable, "-m", "runbook", "validate", str(bad)], cwd=fixture_catalog,
                          env=fixture_env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{bad}:1:8: byte 0xff is not valid UTF-8" in proc.stdout


def test_validate_warns_about_actions_no_plugin_provides(repo_root, fixture_catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./plugins here, so http-check is not loaded
    monkeypatch.delenv("RUNBOOK_PLUGINS_DIR", raising=False)
    result = CliRunner().invoke(cli, ["--catalog", str(fixture_catalog / "playbooks"), "validate", "--strict"])
    assert result.exit_code == 1
    assert "warning: steps[7].uses: no loaded plugin provides action 'http-check'" in result.output
    with_plugins = CliRunner().invoke(cli, ["--catalog", str(fixture_catalog / "playbooks"), "--plugins-dir",
                                            str(repo_root / "plugins"), "validate", "--strict"])
    assert with_plugins.exit_code == 0
