"""A capture that found nothing: the miss says what to do (suggest:), and a value an earlier run
took is stale from then on, so no later command acts on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


def catalog_in(folder: Path, repo: Path) -> Path:
    folder.mkdir()
    (folder / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (folder / "stale.yaml").write_text((CATALOG / "stale.yaml").read_text().replace("PYTHON", sys.executable)
                                       .replace("REPO", str(repo)))
    return folder


@pytest.fixture
def world(tmp_path):
    repo = tmp_path / "fsck.txt"
    repo.write_text("broken link from tree 1234 to blob 99aa\n")
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(catalog_in(tmp_path / "catalog", repo))]))
    yield engine, repo
    store.close()


def test_a_miss_says_what_to_do_and_the_old_value_is_not_used(world):
    engine, repo = world
    iid = engine.open("gitaly-fsck", "ana").id
    engine.run(iid, "ana", "fsck")
    assert engine.state(iid).parameters["bad_ref"] == "99aa"
    repo.write_text("Checking objects: 100% done.\n")  # repaired: the second look finds nothing
    missed = [e for e in engine.run(iid, "ana", "recheck") if e.type == "capture_missed"]
    assert [e.record.describe() for e in missed] == [
        "recheck: nothing captured for bad_ref: no match for to blob ([0-9a-f]+); suggested: nothing left to prune: "
        "skip the prune"]
    state = engine.state(iid)
    assert state.stale == {"bad_ref": "the last run of recheck captured nothing (no match for to blob ([0-9a-f]+))"}
    with pytest.raises(CommandError, match=r"step 'prune' not run: \{bad_ref\} is stale: the last run of recheck "
                                           r"captured nothing"):
        engine.run(iid, "ana", "prune")


def test_a_value_set_again_is_fresh(world):
    engine, repo = world
    iid = engine.open("gitaly-fsck", "ana").id
    engine.run(iid, "ana", "fsck")
    repo.write_text("clean\n")
    engine.run(iid, "ana", "recheck")
    engine.set_parameter(iid, "ana", "bad_ref", "77bb")  # a responder who knows better
    assert engine.state(iid).stale == {}
    ran = [e for e in engine.run(iid, "ana", "prune") if e.type == "action_finished"]
    assert "pruned 77bb" in ran[0].data["output"]


def test_an_older_capture_missed_event_reads_without_a_suggestion():
    from runbook.engine.events import decode

    record = decode("capture_missed", {"step": "s", "name": "n", "reason": "no match"})
    assert record.describe() == "s: nothing captured for n: no match" and "suggestion" not in record.to_data()


def test_cli_show_marks_the_stale_value_and_names_the_fix(rb, tmp_path):
    repo = tmp_path / "fsck.txt"
    repo.write_text("broken link from tree 1234 to blob 99aa\n")
    rb.catalogs = [catalog_in(tmp_path / "catalog", repo)]
    iid = rb("incident", "open", "gitaly-fsck").strip()
    rb("incident", "step", iid, "--run")
    repo.write_text("clean\n")
    out = rb("incident", "step", iid, "--run")
    assert "suggested: nothing left to prune: skip the prune" in out
    shown = rb("incident", "show", iid)
    assert "bad_ref=99aa (capture:fsck, stale)" in shown
    refused = rb("incident", "step", iid, "--run", expect=5)
    assert refused.count("\n") == 1 and "{bad_ref} is stale" in refused
