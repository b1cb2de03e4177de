"""A flag changed by more than one degradation (two incidents, or two degradations of one
playbook) goes back to the value from before the first of them, and only when the last one is
restored; a restore never writes another flag file than the one the degradation changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook import flagd
from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

HERE = Path(__file__).parent

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: shared
title: Shared flags
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
degradations:
  audio-only:
    summary: Video off
    set: {rtc.video.enabled: false}
  cap-300:
    summary: Bitrate 300
    set: {rtc.bitrate: 300}
  cap-100:
    summary: Bitrate 100
    set: {rtc.bitrate: 100}
steps:
  - {id: a, kind: degrade, degradation: cap-300}
  - {id: b, kind: degrade, degradation: cap-100}
  - {id: fix, title: Fix it}
"""


class World:
    def __init__(self, tmp: Path):
        (tmp / "catalog").mkdir()
        (tmp / "catalog" / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
        (tmp / "catalog" / "pb.yaml").write_text(PLAYBOOK)
        self.catalog = load([str(tmp / "catalog")])
        self.db, self.flags = str(tmp / "db.sqlite"), str(tmp / "flags.json")
        self.stores = []

    def engine(self, flags: str | None = None) -> Engine:
        store = Store(self.db, key=None)
        self.stores.append(store)
        host = PluginHost(Settings(flags_file=flags or self.flags, plugins_dir=None), entry_points=False)
        return Engine(store, VirtualClock(), host, self.catalog)

    def value(self, flag: str, path: str | None = None):
        state = flagd.state(flagd.read(path or self.flags), flag)
        return state.value if state.exists else "absent"


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.engine().plugins.set_flag("rtc.video.enabled", True)
    yield w
    for store in w.stores:
        store.close()


def test_two_incidents_degrading_the_same_flag_restore_it_only_when_both_are_resolved(world):
    engine = world.engine()
    a = engine.open("shared", "ana").id
    b = engine.open("shared", "bo").id
    engine.degrade(a, "ana", "audio-only")
    engine.degrade(b, "bo", "audio-only")
    [flip] = [e for e in engine.state(b).events if e.type == "flag_changed"]
    assert flip.data["old"]["value"] is True, "B took A's degraded value for the one to go back to"
    engine.resolve(a, "ana")
    assert world.value("rtc.video.enabled") is False  # B still needs video off
    held = [e for e in engine.state(a).events if e.type == "flag_changed" and e.data["op"] == "restore"]
    assert held[0].data["held_by"] == f"audio-only of {b}"
    assert "still holds it" in held[0].record.describe()
    engine.resolve(b, "bo")
    assert world.value("rtc.video.enabled") is True


def test_the_other_order_and_a_second_responder_process_agree(world):
    a = world.engine().open("shared", "ana").id
    b = world.engine().open("shared", "bo").id
    world.engine().degrade(a, "ana", "audio-only")
    world.engine().degrade(b, "bo", "audio-only")
    world.engine().resolve(b, "bo")
    assert world.value("rtc.video.enabled") is False
    world.engine().resolve(a, "ana")
    assert world.value("rtc.video.enabled") is True


def test_two_degradations_of_one_playbook_on_one_flag_go_back_to_the_value_before_both(world):
    engine = world.engine()
    iid = engine.open("shared", "ana").id
    engine.complete(iid, "ana")  # cap-300
    engine.complete(iid, "ana")  # cap-100
    assert world.value("rtc.bitrate") == 100
    engine.resolve(iid, "ana")
    assert world.value("rtc.bitrate") == "absent"
    assert not any(d.touched for d in engine.state(iid).degradations.values())


def test_a_restore_from_another_flag_file_is_refused_naming_both(world, tmp_path):
    engine = world.engine()
    iid = engine.open("shared", "ana").id
    engine.degrade(iid, "ana", "audio-only")
    elsewhere = world.engine(flags=str(tmp_path / "other" / "flags.json"))
    with pytest.raises(CommandError, match=r"changed the flags in .*flags\.json, but this runbook uses .*other"):
        elsewhere.resolve(iid, "bo")
    assert not elsewhere.state(iid).resolved
    assert not os.path.exists(tmp_path / "other" / "flags.json")
    engine.resolve(iid, "ana")
    assert world.value("rtc.video.enabled") is True
