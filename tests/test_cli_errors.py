"""Errors found by review, each through the real CLI: one line on stderr (a DocumentError: its
heading and one FILE:LINE:COL line per problem), the exit code docs/commands.md lists, never a traceback.

A playbook id shared by two documents, or held by a document left out for schema errors, is
refused at open; a missing catalog is exit 2; click's usage errors are one line; `--db` a
directory is the store's message (exit 7); a plugin's failure is one line; `runbook open` and
`resume` refuse without a terminal; actor names with invisible characters are refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

PLAYBOOKS = Path(__file__).parent / "fixtures" / "catalog" / "playbooks"

BROKEN_STEP = """\
apiVersion: runbook/v1
kind: Playbook
id: act
title: A step without a title
service: stickers
severity: SEV4
escalation: low-urgency
steps:
  - id: one
    kind: check
"""


@pytest.fixture
def catalog(tmp_path) -> Path:
    directory = tmp_path / "catalog"
    shutil.copytree(PLAYBOOKS, directory)
    return directory


@pytest.fixture
def rb(rb, tmp_path):
    """Every run here: a fresh database and flag file, no plugins, no catalog from the caller's
    environment, no caches, in a directory without a ./playbooks."""
    rb.env.update(RUNBOOK_DB=str(tmp_path / "db" / "runbook.sqlite"), RUNBOOK_FLAGS=str(tmp_path / "flags.json"),
                  RUNBOOK_PLUGINS_DIR=str(tmp_path / "no-plugins"), RUNBOOK_SCHEMA_CACHE="0")
    rb.cwd = tmp_path
    return rb


def one_error_line(stderr: str, *expected: str) -> str:
    assert "internal error" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: "), stderr
    for text in expected:
        assert text in lines[0], stderr
    return lines[0]


def incidents(rb, catalog) -> str:
    return rb("--catalog", str(catalog), "incident", "list", "--all").strip()


# A check made over many inputs runs them in this process (rb.inproc), and the same check once
# through the child process: a child costs a fifth of a second, and the suite has a time budget.


# 1. a second playbook with the same id -------------------------------------------------------

def test_open_refuses_a_playbook_id_that_two_documents_use(rb, catalog):
    real = catalog / "video-call-degraded.yaml"
    (catalog / "aaa-dup.yaml").write_text(real.read_text().replace("title: Video calls degraded", "title: IMPOSTOR"))
    validated = rb("--catalog", str(catalog), "validate", expect=1, stream="stdout")
    assert "duplicate Playbook id 'video-call-degraded'" in validated

    result = rb.run("--catalog", str(catalog), "incident", "open", "video-call-degraded", expect=1)
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "runbook: error: cannot open an incident on playbook 'video-call-degraded': the catalog has 1 error about "
        "documents with that id (fix them; `runbook validate` checks the catalog):",
        f"{real}:4:5: id: duplicate Playbook id 'video-call-degraded', already defined at "
        f"{catalog / 'aaa-dup.yaml'}:4; ids must be unique per kind"]
    assert incidents(rb, catalog) == "no incidents"

    (catalog / "aaa-dup.yaml").unlink()
    opened = rb("--catalog", str(catalog), "incident", "open", "video-call-degraded").strip()
    shown = rb("--catalog", str(catalog), "incident", "show", opened, "--json")
    assert json.loads(shown)["title"] == "Video calls degraded"


def test_a_duplicate_id_of_another_playbook_does_not_stop_an_open(rb, catalog):
    (catalog / "aaa-dup.yaml").write_text((catalog / "video-call-degraded.yaml").read_text())
    assert rb("--catalog", str(catalog), "incident", "open", "stickers-not-loading").startswith("INC-")


def test_the_engine_refuses_for_every_client(catalog):
    """The TUI's home, drills and the scheduler open through Engine.open too."""
    from runbook.catalog.loader import load_catalog
    from runbook.engine import Engine, VirtualClock
    from runbook.errors import DocumentError
    from runbook.store import MemoryStore

    (catalog / "aaa-dup.yaml").write_text((catalog / "stickers-not-loading.yaml").read_text())
    (catalog / "act.yaml").write_text(BROKEN_STEP)
    engine = Engine(MemoryStore(), VirtualClock(), None, load_catalog([str(catalog)], trust_cache=False))
    for playbook in ("stickers-not-loading", "act"):
        with pytest.raises(DocumentError) as refused:
            engine.open(playbook, "ana")
        assert refused.value.problems and refused.value.exit_code == 1
    assert engine.list() == []


# 2. a playbook failing its schema ------------------------------------------------------------

def test_open_lists_the_schema_errors_of_a_playbook_left_out(rb, catalog):
    (catalog / "act.yaml").write_text(BROKEN_STEP)
    assert rb("--catalog", str(catalog), "incident", "open", "act", expect=1).splitlines() == [
        "runbook: error: cannot open an incident on playbook 'act': the catalog has 1 error about documents "
        "with that id (fix them; `runbook validate` checks the catalog):",
        f"{catalog / 'act.yaml'}:9:5: steps[0]: missing required field 'title' in a check step, "
        "it needs: title"]
    assert incidents(rb, catalog) == "no incidents"


def test_a_left_out_document_of_the_same_id_blocks_the_valid_one(rb, catalog):
    (catalog / "aaa-broken.yaml").write_text(BROKEN_STEP.replace("id: act", "id: stickers-not-loading"))
    err = rb("--catalog", str(catalog), "incident", "open", "stickers-not-loading", expect=1)
    assert err.splitlines()[1].startswith(f"{catalog / 'aaa-broken.yaml'}:9:5: steps[0]: ")


def test_the_loader_keeps_the_id_of_a_document_left_out(catalog):
    from runbook.catalog.loader import load_catalog

    (catalog / "act.yaml").write_text(BROKEN_STEP + "---\n- not a mapping\n")
    loaded = load_catalog([str(catalog)], trust_cache=False)
    assert loaded.find("act") is None
    assert [(item.kind, item.id, item.line) for item in loaded.left_out] == [("Playbook", "act", 1)]
    assert [p.line for p in loaded.problems_with("act", "Playbook")] == [9]
    assert loaded.problems_with("act", "Drill") == []
    assert loaded.problems_with("stickers-not-loading", "Playbook") == []


def test_an_unknown_playbook_is_still_not_found(rb, catalog):
    one_error_line(rb("--catalog", str(catalog), "incident", "open", "nosuch", expect=3), "no playbook 'nosuch'")


# 3. a missing catalog ------------------------------------------------------------------------

MISSING = "no catalog at /nonexist: no such file or directory"


@pytest.mark.parametrize("args", [
    ["incident", "open", "stickers-not-loading"], ["list"], ["validate"], ["show", "x"], ["match", "video"],
    ["drill", "run", "surprise-ack", "--auto"], [],
])
def test_a_missing_catalog_is_a_usage_error(rb, args):
    one_error_line(rb.inproc("--catalog", "/nonexist", *args, expect=2), MISSING)
    one_error_line(rb.inproc(*args, RUNBOOK_CATALOG="/nonexist", expect=2), MISSING)


def test_validate_paths_with_a_missing_catalog(rb, catalog):
    one_error_line(rb("--catalog", "/nonexist", "validate", str(catalog / "roster.yaml"), expect=2), MISSING)


def test_one_missing_path_among_several_is_named(rb, catalog):
    one_error_line(rb("--catalog", str(catalog), "--catalog", "/nonexist", "list", expect=2), MISSING)


def test_no_catalog_here_is_still_exit_2(rb):
    one_error_line(rb("list", expect=2), "no catalog here: ./playbooks does not exist")


def test_a_missing_catalog_through_the_real_program(rb):
    proc = rb.run("incident", "open", "x", RUNBOOK_CATALOG="/nonexist", expect=2)
    assert proc.stdout == ""
    one_error_line(proc.stderr, MISSING)


# 4. click's usage errors, --db a directory ---------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["incident", "choose", "ID", "-1"], "runbook: error: No such option '-1'; see `runbook incident choose --help`"),
    (["incident", "export", "INC-1", "--format", "pdf"],
     "runbook: error: Invalid value for '--format': 'pdf' is not one of 'md', 'json'; "
     "see `runbook incident export --help`"),
    (["incident", "metrics", "--json"],
     "runbook: error: No such option '--json'; see `runbook incident metrics --help`"),
    (["--bogus"], "runbook: error: No such option '--bogus'; see `runbook --help`"),
    (["nosuch"], "runbook: error: No such command 'nosuch'; see `runbook --help`"),
    (["incident", "open"], "runbook: error: Missing argument 'PLAYBOOK'; see `runbook incident open --help`"),
])
def test_click_usage_errors_are_one_line(rb, catalog, args, expected):
    assert one_error_line(rb.inproc("--catalog", str(catalog), *args, expect=2)) == expected


def test_a_usage_error_through_the_real_program(rb):
    assert rb("incident", "choose", "ID", "-1", expect=2).splitlines() == [
        "runbook: error: No such option '-1'; see `runbook incident choose --help`"]


def test_help_still_works(rb):
    assert "Usage: runbook incident" in rb("incident", "--help")


def test_a_directory_as_the_database_is_the_store_error(rb, catalog, tmp_path):
    directory = tmp_path / "a-directory"
    directory.mkdir()
    expected = f"the incident database {directory} is a directory; pass --db FILE or set RUNBOOK_DB"
    one_error_line(rb("--catalog", str(catalog), "incident", "list", RUNBOOK_DB=str(directory), expect=7), expected)
    one_error_line(rb("--db", str(directory), "--catalog", str(catalog), "incident", "open", "stickers-not-loading",
                      expect=7), expected)


# 5. plugin errors, an invalid flag file ------------------------------------------------------

def test_a_plugin_failure_is_one_line(rb):
    line = one_error_line(rb("flags", "restore", "nosuch", expect=4))
    assert line == ("runbook: error: could not restore flag nosuch: plugin flag_file failed in restore_flag: "
                    "FlagFileError: flag nosuch was not changed by runbook, so there is nothing to restore")


def test_a_flag_file_that_is_not_json_is_exit_1_in_one_line(rb):
    flags = Path(rb.env["RUNBOOK_FLAGS"])
    flags.write_text("{bad")
    one_error_line(rb("flags", "list", expect=1), f"{flags}:1:2: not valid JSON")
    flags.write_text('{"flags": 3}')
    one_error_line(rb("flags", "list", expect=1), "not a valid flagd flag file: 'flags' must be an object")


# 6. the TUI without a terminal ---------------------------------------------------------------

def test_open_without_a_terminal_refuses_before_opening(rb, catalog):
    proc = rb.run("--catalog", str(catalog), "open", "stickers-not-loading", expect=2)
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "runbook: error: runbook open needs a terminal; use `runbook incident open` for scripts"]
    assert incidents(rb, catalog) == "no incidents"


def test_resume_without_a_terminal_refuses(rb, catalog):
    rb("--catalog", str(catalog), "incident", "open", "stickers-not-loading")
    proc = rb.run("--catalog", str(catalog), "resume", expect=2)
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "runbook: error: runbook resume needs a terminal; use `runbook incident resume` for scripts"]


def test_runbook_alone_without_a_terminal_still_prints_the_overview(rb, catalog):
    proc = rb.run("--catalog", str(catalog))
    assert proc.stderr == ""
    assert proc.stdout.startswith("runbook ") and "stickers-not-loading" in proc.stdout


# 7. invisible characters in actor names ------------------------------------------------------

@pytest.mark.parametrize("char", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])
def test_an_actor_name_with_an_invisible_character_is_refused(rb, catalog, char):
    err = rb.inproc("--catalog", str(catalog), "incident", "open", "stickers-not-loading", "--as", f"bo{char}b",
                    expect=2)
    line = one_error_line(err, f"'bo\\u{ord(char):04x}b' contains an invisible character (U+{ord(char):04X})")
    assert char not in line
    assert incidents(rb.inproc, catalog) == "no incidents"


def test_an_invisible_character_in_runbook_user_is_refused_too(rb, catalog):
    one_error_line(rb("--catalog", str(catalog), "incident", "open", "stickers-not-loading", RUNBOOK_USER="bob\u200b",
                      expect=2), "invisible character (U+200B)")


def test_names_in_any_script_are_still_accepted(rb, catalog):
    from runbook.text import check_actor

    for name in ("José Ñúñez", "李小龙", "Zoë O'Brien-Smith", "Ana (SRE)"):
        assert check_actor(name) == name
    assert rb("--catalog", str(catalog), "incident", "open", "stickers-not-loading", "--as", "José").startswith("INC-")


# the one line never carries a terminal's escape sequences --------------------------------------

def test_an_escape_sequence_in_an_argument_is_shown_escaped(rb, catalog):
    line = one_error_line(rb("--catalog", str(catalog), "incident", "open", "x\x1b]0;pwn\x07\nnext", expect=3))
    assert line.startswith("runbook: error: no playbook 'x\\x1b]0;pwn\\x07")
    assert "\x1b" not in line and "\x07" not in line
