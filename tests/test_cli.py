"""The runbook command as a user meets it: exit codes, formats, help and errors without tracebacks."""

from __future__ import annotations

import json

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


def test_validate_shipped_catalog_exits_zero(rb, repo_root):
    rb.cwd = repo_root  # the shipped catalog itself, not the fixture copy
    assert "valid: 0 errors, 0 warnings" in rb("validate", "--strict")


def test_validate_broken_playbook_prints_file_line_col_and_exits_one(rb, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    first = rb("validate", str(bad), expect=1, stream="stdout").splitlines()[0]
    assert first == (f"{bad}:11:11: steps[0].next: step 'secnd' does not exist in this track, "
                     "expected a step id or 'end'; did you mean 'second'?")


def test_validate_single_file_resolves_references_against_the_catalog(rb, fixture_catalog):
    assert "1 file" in rb("validate", str(fixture_catalog / "playbooks" / "video-call-degraded.yaml"))


def test_validate_json_report(rb, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text(BROKEN)
    report = json.loads(rb("validate", "--format", "json", str(bad), expect=1, stream="stdout"))
    assert report["valid"] is False
    assert report["errors"][0] | {"message": ""} == {
        "file": str(bad), "line": 11, "column": 11, "path": "steps[0].next", "message": "",
        "severity": "error", "code": "reference"}


def test_strict_makes_warnings_fail(rb, tmp_path):
    doc = tmp_path / "warn.yaml"
    doc.write_text(BROKEN.replace("secnd", "second").replace("    mitigates: true\n", ""))
    rb("validate", str(doc))
    out = rb("validate", "--strict", str(doc), expect=1, stream="stdout")
    assert "warning: steps: no step has mitigates: true" in out


def test_usage_errors_exit_two(rb, tmp_path):
    for args in (("validate", str(tmp_path / "nope.yaml")), ("validate", "--format", "xml"), ("schema", "Playbok"),
                 ("match",), ("match", "--label", "novalue")):
        rb(*args, expect=2)


def test_missing_catalog_is_explained(rb, tmp_path):
    rb.cwd = tmp_path
    assert "no catalog here: ./playbooks does not exist" in rb("list", expect=2)


def test_catalog_option_and_environment(rb, fixture_catalog, tmp_path):
    rb.cwd = tmp_path
    rb("--catalog", str(fixture_catalog / "playbooks"), "list", "--kind", "roster")
    listed = rb("list", "--kind", "Roster", "--json", RUNBOOK_CATALOG=str(fixture_catalog / "playbooks"))
    assert [row["id"] for row in json.loads(listed)] == ["rtc-oncall"]


def test_list_json_names_every_document(rb):
    rows = json.loads(rb("list", "--json"))
    kinds = {row["kind"] for row in rows}
    assert kinds >= {"Playbook", "SeverityPolicy", "EscalationPolicy", "Roster"}
    assert all(row["file"].startswith(("playbooks/", "drills/")) and row["line"] >= 1 for row in rows)
    assert "Drill" in kinds


def test_show_playbook_outline(rb):
    out = rb("show", "video-call-degraded")
    for section in ("Severity", "Escalation at other severities (rtc-default)", "Escalation at SEV1 (rtc-critical)",
                    "Symptoms", "Degradations", "Steps"):
        assert f"\n{section}" in out
    assert "acknowledge within 10m" in out
    assert "from alert label severity: critical → SEV1, page → SEV1, warning → SEV3 (other values: SEV2)" in out
    assert "L2 at +5m: rotation rtc-secondary (now: " in out
    assert "L2 at +3m: Mara Okafor" in out  # the SEV1 ladder
    assert "├─" in out and "→" in out


def test_show_unknown_id_suggests(rb):
    assert "did you mean 'video-call-degraded'?" in rb("show", "video-call-degrade", expect=3)


def test_match_ranks_by_text_with_reasons(rb):
    ranked = json.loads(rb("match", "video freezing in one region", "--json"))
    assert ranked[0]["playbook"] == "video-call-degraded"
    assert any("'freezing'" in reason for reason in ranked[0]["reasons"])


def test_match_takes_several_words_without_quotes(rb):
    assert json.loads(rb("match", "video", "freezing", "--json"))[0]["playbook"] == "video-call-degraded"


def test_overview_counts_kinds_in_plain_english(rb):
    output = rb()
    assert "EscalationPolicies" in output and "EscalationPolicys" not in output


def test_schema_lists_kinds_and_prints_json(rb):
    listing = rb("schema")
    assert "Playbook" in listing and "Roster" in listing
    schema = json.loads(rb("schema", "playbook"))
    assert schema["properties"]["kind"] == {"const": "Playbook"}


def test_overview_without_command(rb):
    output = rb()
    assert "valid" in output and "video-call-degraded" in output


def test_installed_command_never_shows_a_traceback(rb, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"title: \xff garbage")
    proc = rb.run("validate", str(bad), expect=1)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{bad}:1:8: byte 0xff is not valid UTF-8" in proc.stdout


def test_validate_warns_about_actions_no_plugin_provides(rb, repo_root, fixture_catalog, tmp_path):
    rb.cwd = tmp_path  # no ./plugins here, so http-check is not loaded
    del rb.env["RUNBOOK_PLUGINS_DIR"]
    rb.catalogs = [fixture_catalog / "playbooks"]
    out = rb("validate", "--strict", expect=1, stream="stdout")
    assert "warning: steps[7].uses: no loaded plugin provides action 'http-check'" in out
    rb("--plugins-dir", str(repo_root / "plugins"), "validate", "--strict")
