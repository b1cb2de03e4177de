"""Every error a user can cause is one line and a documented exit code, never a traceback or exit 70:
text that is not UTF-8, a damaged, read-only or unreachable database, notes too long to show,
an incident on a playbook with errors, an action that failed."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.engine import Engine, VirtualClock
from runbook.errors import CommandError, DocumentError
from runbook.store import MemoryStore

CONTEXT = Path(__file__).parent / "bad_documents" / "_context" / "policies.yaml"
BAD_DOCUMENTS = Path(__file__).parent / "bad_documents"

SCRIPTED = """\
apiVersion: runbook/v1
kind: Playbook
id: scripted
title: Steps that run commands
service: rtc-video
severity: SEV2
escalation: test-default
steps:
  - id: fails
    kind: action
    title: A command that fails
    run: ["{python}", "-c", "import sys; sys.exit(3)"]
    with: {python: PYTHON}
  - id: slow
    kind: action
    title: A command that takes too long
    run: ["{python}", "-c", "import time; time.sleep(30)"]
    with: {python: PYTHON}
    timeout: 1s
  - id: works
    kind: action
    title: A command that works
    run: ["{python}", "-c", "pass"]
    with: {python: PYTHON}
    mitigates: true
""".replace("PYTHON", sys.executable)


def one_error_line(err: str, *expected: str) -> str:
    """The command's error output is one line holding every `expected` text."""
    assert "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: "), err
    for text in expected:
        assert text in lines[0], err
    return lines[0]


@pytest.fixture
def catalog(tmp_path) -> Path:
    directory = tmp_path / "catalog"
    directory.mkdir()
    shutil.copy(CONTEXT, directory)
    (directory / "scripted.yaml").write_text(SCRIPTED)
    return directory


@pytest.fixture
def rb(rb, catalog, tmp_path):
    """`runbook ...` on the catalog above (named by RUNBOOK_CATALOG, so the arguments are only the
    test's), a fresh database and no plugins."""
    rb.env.update(RUNBOOK_CATALOG=str(catalog), RUNBOOK_DB=str(tmp_path / "db" / "runbook.sqlite"),
                  RUNBOOK_PLUGINS_DIR=str(tmp_path / "no-plugins"))
    return rb


def opened(rb, playbook: str = "scripted") -> str:
    return rb("incident", "open", playbook).strip()


# A check made over many inputs (parameters, every command, every playbook) runs them in this
# process (rb.inproc), the same kind of check once through the child process beside it: a child
# costs a fifth of a second, and the suite has a time budget.


# text that is not UTF-8 -----------------------------------------------------------------------

def test_an_argument_that_is_not_utf8_is_refused_naming_it(rb):
    err = rb(b"incident", b"note", b"INC-1", b"\xff\xfe", expect=2)
    assert err.splitlines() == [
        "runbook: error: argument 4 (\\xff\\xfe) is not valid UTF-8; runbook takes text in UTF-8"]
    assert not rb.db.parent.exists()  # refused before anything is opened


def test_a_runbook_variable_that_is_not_utf8_is_refused_naming_it(rb):
    err = rb("incident", "list", RUNBOOK_USER=os.fsdecode(b"an\xe9"), expect=2)
    assert err.splitlines() == [
        "runbook: error: environment variable RUNBOOK_USER (an\\xe9) is not valid UTF-8; runbook takes text in UTF-8"]


def test_utf8_text_is_taken_as_it_is(rb):
    iid = opened(rb)
    assert "café — 東京 ✓" in rb("incident", "note", iid, "café — 東京 ✓")


# the database ---------------------------------------------------------------------------------

def test_a_database_directory_that_cannot_be_created_is_named(rb, tmp_path):
    (tmp_path / "file.txt").write_text("not a directory")
    one_error_line(rb("incident", "list", RUNBOOK_DB=str(tmp_path / "file.txt" / "db.sqlite"), expect=7),
                   "cannot create the directory of the incident database", f"{tmp_path / 'file.txt'} is a file")


def test_a_file_that_is_not_a_database_is_named(rb, tmp_path):
    (tmp_path / "notes.txt").write_text("these are my notes, not a database\n" * 200)
    one_error_line(rb("incident", "list", RUNBOOK_DB=str(tmp_path / "notes.txt"), expect=7),
                   f"{tmp_path / 'notes.txt'} is not an incident database")


@pytest.mark.parametrize("page", [0, 1, 2, 3])
def test_a_database_with_a_malformed_page_is_named_by_every_command(rb, tmp_path, page):
    iid = opened(rb.inproc)
    db = tmp_path / "db" / "runbook.sqlite"
    assert not Path(f"{db}-wal").exists()  # the last connection folded the log into the file
    with open(db, "r+b") as handle:
        handle.seek(page * 4096 + (100 if page == 0 else 0))  # page 0: keep SQLite's file header
        handle.write(b"\xde\xad\xbe\xef" * 900)
    for run, args in ((rb, ("incident", "show", iid)), (rb.inproc, ("incident", "note", iid, "x")),
                      (rb.inproc, ("incident", "export", iid))):
        one_error_line(run(*args, expect=7), f"the incident database {db} is damaged", "restore a backup")


def test_an_export_file_that_cannot_be_written_is_named(rb, tmp_path):
    iid = opened(rb)
    one_error_line(rb("incident", "export", iid, "-o", str(tmp_path / "missing" / "pm.md"), expect=2),
                   f"cannot write {tmp_path / 'missing' / 'pm.md'}: No such file or directory")


def test_read_commands_work_on_a_read_only_database_and_writes_say_why_not(rb, tmp_path, monkeypatch):
    iid = opened(rb)
    # what os.access says to a user without write permission (tests run as root, who has it): in this process
    monkeypatch.setattr("runbook.store.sqlite._why_readonly", lambda path: "the file is not writable by you")
    for args in (("incident", "list"), ("incident", "show", iid), ("incident", "export", iid),
                 ("incident", "verify", iid), ("incident", "metrics", iid), ("report",), ("drill", "history")):
        assert rb.inproc.run(*args).stderr == "", args
    for args in (("incident", "note", iid, "x"), ("incident", "ack", iid), ("incident", "open", "scripted")):
        one_error_line(rb.inproc(*args, expect=7), f"the incident database {rb.db} is read-only: "
                                                   "the file is not writable by you")


def test_a_read_only_database_that_needs_upgrading_says_so(rb, tmp_path, monkeypatch):
    opened(rb)
    db = tmp_path / "db" / "runbook.sqlite"
    with sqlite3.connect(db) as conn:  # as an older runbook left it
        conn.execute("DELETE FROM migrations WHERE id = (SELECT max(id) FROM migrations)")
    conn.close()
    monkeypatch.setattr("runbook.store.sqlite._why_readonly", lambda path: "the file is not writable by you")
    one_error_line(rb.inproc("incident", "list", expect=7),
                   "needs upgrading to this version of runbook, but it is read-only")


# as a user without write permission (subprocess: permissions are checked by the kernel) -------

def _unprivileged() -> list[str]:
    """A command prefix that runs without the power to ignore file permissions: nothing for a
    normal user; for root, setpriv dropping CAP_DAC_OVERRIDE (the user nobody could not run the
    interpreter of a virtualenv under /root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop the power to override file permissions")
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    probe = subprocess.run(prefix + ["true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return prefix


@pytest.fixture
def locked_out(rb, tmp_path):
    """An incident in a database whose file and directory are read-only for the caller, and
    `run(*args)` running `runbook` as a caller without the power to override that."""
    prefix = _unprivileged()
    iid = opened(rb)
    directory = tmp_path / "db"
    rb.prefix = prefix

    def run(*args, db=None):
        return rb.run(*args, expect=None, **({"RUNBOOK_DB": db} if db else {}))
    (directory / "runbook.sqlite").chmod(0o444)
    directory.chmod(0o555)
    yield iid, run
    directory.chmod(0o755)


def test_a_database_in_a_read_only_directory_can_be_shown_but_not_written(locked_out, tmp_path):
    iid, run = locked_out
    for args in (("incident", "show", iid), ("incident", "list"), ("incident", "verify", iid)):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr
        assert iid in proc.stdout and proc.stderr == ""
    proc = run("incident", "note", iid, "x")
    assert proc.returncode == 7 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"runbook: error: the incident database {tmp_path / 'db' / 'runbook.sqlite'} is read-only: the file is not "
        "writable by you; only reading commands (list, show, export, verify, metrics, report) work on it"]
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["runbook.sqlite"]


def test_a_new_database_in_a_read_only_directory_is_refused_in_one_line(locked_out, tmp_path):
    _, run = locked_out
    proc = run("incident", "list", db=str(tmp_path / "db" / "new.sqlite"))
    assert proc.returncode == 7, proc.stderr
    assert proc.stderr.splitlines() == [
        f"runbook: error: cannot create the incident database {tmp_path / 'db' / 'new.sqlite'}: its directory "
        f"{tmp_path / 'db'} is not writable by you; pass --db FILE or set RUNBOOK_DB"]
    proc = run("incident", "list", db=str(tmp_path / "db" / "sub" / "new.sqlite"))
    assert proc.returncode == 7 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "cannot create the directory of the incident database" in proc.stderr


# text size ------------------------------------------------------------------------------------

def test_a_note_over_64_kib_is_refused_and_one_at_the_limit_is_kept(rb):
    iid = opened(rb)
    at_limit = "é" * 32 * 1024  # two bytes each in UTF-8: 64 KiB exactly
    rb("incident", "note", iid, at_limit)
    one_error_line(rb("incident", "note", iid, at_limit + "a", expect=5),
                   "the note is 65,537 bytes, over the limit of 65,536 bytes (64 KiB)")
    # in this process: the kernel refuses a child one argument over 128 KiB before runbook could
    one_error_line(rb.inproc("incident", "note", iid, "x" * 10 * 1024 * 1024, expect=5), "the note is 10,485,760 bytes")
    assert len(rb("incident", "show", iid).encode()) < 66 * 1024  # the note kept, not the ten megabytes


@pytest.mark.parametrize("args", [("step", "--skip", "BIG"), ("step", "--fail", "--outcome", "BIG"),
                                  ("step", "--done", "--outcome", "BIG"), ("severity", "SEV1", "--reason", "BIG")])
def test_reasons_and_outcomes_are_capped_like_notes(rb, args):
    iid = opened(rb.inproc)
    big = "y" * (64 * 1024 + 1)
    command = [a if a != "BIG" else big for a in args]
    one_error_line(rb.inproc("incident", command[0], iid, *command[1:], expect=5),
                   "over the limit of 65,536 bytes (64 KiB)")


def test_action_items_are_capped_in_the_engine():
    from runbook.catalog.loader import load_catalog

    catalog = load_catalog([str(BAD_DOCUMENTS / "_context")])
    engine = Engine(MemoryStore(), VirtualClock(), None, catalog)
    state = engine.open("context-playbook", "ana")
    with pytest.raises(CommandError, match="the action item is 65,537 bytes"):
        engine.add_action_item(state.id, "ana", "z" * (64 * 1024 + 1))
    assert engine.add_action_item(state.id, "ana", "z" * 64 * 1024)


# opening on a playbook with errors ------------------------------------------------------------

def test_open_refuses_a_playbook_with_errors_listing_them(rb, catalog):
    shutil.copy(BAD_DOCUMENTS / "next-missing-step.yaml", catalog)
    assert rb("incident", "open", "next-missing-step", expect=1).splitlines() == [
        "runbook: error: cannot open an incident on playbook 'next-missing-step': the documents it uses have "
        "1 error (fix them; `runbook validate` checks the catalog):",
        f"{catalog / 'next-missing-step.yaml'}:23:11: steps[2].next: step 'verfy' does not exist in this track, "
        "expected a step id or 'end'; did you mean 'verify'?"]
    assert rb("incident", "list", "--all").strip() == "no incidents"


def test_open_refuses_a_playbook_whose_escalation_policy_has_errors(rb, catalog):
    policies = CONTEXT.read_text().replace("- notify: [{person: erin}]", "- notify: [{person: frank}]")
    (catalog / "policies.yaml").write_text(policies)
    err = rb("incident", "open", "scripted", expect=1)
    assert "person 'frank' does not exist" in err and "policies.yaml:" in err


def test_open_takes_a_playbook_with_warnings_only(rb, catalog):
    shutil.copy(BAD_DOCUMENTS / "unreachable-step.yaml", catalog)
    assert opened(rb, "unreachable-step").startswith("INC-")


def test_errors_elsewhere_in_the_catalog_do_not_stop_an_open(rb, catalog):
    shutil.copy(BAD_DOCUMENTS / "next-missing-step.yaml", catalog)
    assert opened(rb, "scripted").startswith("INC-")


def test_the_engine_refuses_for_every_client(catalog):
    from runbook.catalog.loader import load_catalog

    shutil.copy(BAD_DOCUMENTS / "next-missing-step.yaml", catalog)
    engine = Engine(MemoryStore(), VirtualClock(), None, load_catalog([str(catalog)]))
    with pytest.raises(DocumentError) as refused:
        engine.open("next-missing-step", "ana")
    assert [p.line for p in refused.value.problems] == [23]


def test_every_shipped_playbook_opens(rb, repo_root):
    rb.cwd = repo_root  # its catalog and plugins
    del rb.env["RUNBOOK_CATALOG"]
    rb.env["RUNBOOK_PLUGINS_DIR"] = str(repo_root / "plugins")
    for path in sorted((repo_root / "playbooks").glob("*.yaml")):
        text = path.read_text()
        if "kind: Playbook" not in text:
            continue
        playbook_id = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("id:"))
        assert rb.inproc("incident", "open", playbook_id, "--as", "ana").startswith("INC-"), playbook_id


# step --run -----------------------------------------------------------------------------------

def test_step_run_exits_4_when_the_action_fails_or_times_out_after_printing_it(rb):
    iid = opened(rb)
    failed = rb("incident", "step", iid, "--run", expect=4, stream="stdout")
    assert "action FAILED: failed with exit status 3" in failed and "step fails failed" in failed
    rb("incident", "step", iid, "fails", "--skip", "known")
    assert "timed out after 1s" in rb("incident", "step", iid, "--run", "--json", expect=4, stream="stdout")
    rb("incident", "step", iid, "slow", "--skip", "known")
    assert "action ok" in rb("incident", "step", iid, "--run")
