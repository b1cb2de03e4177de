"""After resolve, "every step was done" only when it was: what was left undone, failed or skipped,
and how many steps were never reached, from the engine to `incident show` and the TUI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.engine.completion import completion
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.views import build_view

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks")]))
    store.close()


def with_two_failed_steps(engine) -> str:
    """video-call-degraded: reroute did not help, the bitrate cap did not either; resolved before
    audio-only, with the comms track never started on."""
    iid = engine.open("video-call-degraded", "ana", incident="INC-FAILED").id
    engine.acknowledge(iid, "ana")
    for _ in range(3):
        engine.complete(iid, "ana")
    engine.choose(iid, "ana", "One region")
    engine.complete(iid, "ana", "reroute")
    engine.fail(iid, "ana", "verify-reroute", "still freezing in eu-west-1")
    engine.complete(iid, "ana", "cap-bitrate")
    engine.fail(iid, "ana", "verify-bitrate", "freeze ratio still 4%")
    engine.skip(iid, "ana", "open-channel", "the channel was already open")
    engine.resolve(iid, "ana")
    return iid


def test_failed_skipped_and_undone_steps_are_named_after_resolve(engine):
    iid = with_two_failed_steps(engine)
    done = completion(engine.state(iid))
    assert [(i.step, i.status, i.reason) for i in done.not_done] == [
        ("verify-reroute", "failed", "still freezing in eu-west-1"),
        ("verify-bitrate", "failed", "freeze ratio still 4%"),
        ("audio-only", "not done", ""),
        ("open-channel", "skipped", "the channel was already open"),
        ("tell-support", "not done", "")]
    assert not done.every_step_done
    assert done.verdict() == "Not every step was done: 2 not done, 2 failed, 1 skipped, 10 not reached."


def test_every_step_was_done_only_when_it_was(engine):
    iid = engine.open("stickers-not-loading", "ana").id
    for _ in range(6):
        engine.complete(iid, "ana")
    engine.resolve(iid, "ana")
    assert completion(engine.state(iid)).verdict() == "Every step was done."
    gifts = engine.open("gifts-feature-failing", "ana").id  # its flags flip and are restored on the way
    for _ in range(6):
        engine.complete(gifts, "ana")
    engine.resolve(gifts, "ana")
    assert completion(engine.state(gifts)).verdict() == "Every step was done."


def test_steps_not_on_the_path_taken_are_counted_not_hidden(engine):
    iid = engine.open("stickers-not-loading", "ana").id
    engine.complete(iid, "ana")
    engine.restart(iid, "ana", "step-1", "look again")  # step-1 current again, step-2 pending again
    engine.complete(iid, "ana")
    engine.resolve(iid, "ana")
    done = completion(engine.state(iid))
    assert done.verdict() == "Not every step was done: 1 not done, 4 not reached."


def test_the_view_carries_the_verdict_and_the_steps(engine):
    iid = with_two_failed_steps(engine)
    view = build_view(engine.state(iid), engine.clock.now())
    assert view.verdict.startswith("Not every step was done")
    assert [(s.title, s.status) for s in view.left][:2] == [("Video is good again for new calls", "failed"),
                                                          ("Freezes stop with the bitrate cap", "failed")]
    assert build_view(engine.state(engine.open("stickers-not-loading", "ana").id), START).verdict == ""


def test_incident_show_says_what_was_not_done_without_empty_headings(engine):
    from runbook.cli.incident import summary

    iid = with_two_failed_steps(engine)
    text = "\n".join(summary(engine.state(iid), engine.clock.now()))
    assert "  Not every step was done: 2 not done, 2 failed, 1 skipped, 10 not reached." in text
    assert ("  failed:\n    [main] verify-reroute: Video is good again for new calls (verify) — still freezing in "
            "eu-west-1\n    [main] verify-bitrate: Freezes stop with the bitrate cap (verify) — freeze ratio still 4%"
            in text)
    assert "  left undone:\n    [main] audio-only: Fallback - switch calls to audio only (degrade) — not done" in text
    assert ("  skipped:\n    [comms] open-channel: Open the incident channel (communicate) — "
            "the channel was already open" in text)
    assert "Every step was done" not in text and "current steps" not in text

    clean = engine.open("stickers-not-loading", "ana").id
    for _ in range(6):
        engine.complete(clean, "ana")
    engine.resolve(clean, "ana")
    lines = summary(engine.state(clean), engine.clock.now())
    assert "  Every step was done." in lines
    assert not empty_headings(lines)


def empty_headings(lines: list[str]) -> list[str]:
    """Lines ending in ':' with no more deeply indented line under them."""
    def depth(line):
        return len(line) - len(line.lstrip())
    return [line for line, after in zip(lines, [*lines[1:], ""]) if line.endswith(":") and depth(after) <= depth(line)]


def test_the_resolved_screen_says_every_step_was_done_only_when_it_was(engine):
    import asyncio

    from pilot_helpers import flat, settle, widget_text

    from runbook.tui.app import build_app

    iid = with_two_failed_steps(engine)
    clean = engine.open("stickers-not-loading", "ana", incident="INC-CLEAN1").id
    for _ in range(6):
        engine.complete(clean, "ana")
    engine.resolve(clean, "ana")

    async def shown(incident):
        app = build_app(EngineService(engine), engine.catalog, "ana", incident, live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            return flat(widget_text(app.screen.query_one("#current-instructions")))
    failed, done = asyncio.run(shown(iid)), asyncio.run(shown(clean))
    assert "Every step was done" not in failed
    assert "Not every step was done: 2 not done, 2 failed, 1 skipped, 10 not reached." in failed
    assert "Failed: – Video is good again for new calls: still freezing in eu-west-1" in failed
    assert "– Freezes stop with the bitrate cap: freeze ratio still 4%" in failed
    assert "Left undone: – Fallback - switch calls to audio only" in failed
    assert "Skipped: – Open the incident channel: the channel was already open" in failed
    assert "Every step was done." in done and "Left undone" not in done and "Failed:" not in done


# the escalation line of `incident show` --------------------------------------------------------

def escalation(engine, iid) -> list[str]:
    from runbook.cli.incident import summary

    return [line.strip() for line in summary(engine.state(iid), engine.clock.now())
            if line.strip().startswith(("escalation", "next escalation"))]


def test_the_escalation_line_is_true_before_and_after_an_acknowledgement(engine):
    iid = engine.open("media-upload-failures", "ana").id  # SEV3 on rtc-default, no severity rise
    engine.tick(iid)  # level 1 is paged at once
    assert escalation(engine, iid) == ["next escalation: level 2 in 5m"]
    for minutes in (5, 10, 15, 5, 10):  # the ladder (3 levels, walked twice) runs out
        engine.clock.advance(minutes=minutes)
        engine.tick(iid)
    assert escalation(engine, iid) == [("escalation: every level has been paged (up to level 3); "
                                        "nobody has acknowledged yet")]
    engine.clock.advance(minutes=2)
    engine.acknowledge(iid, "ben")
    assert escalation(engine, iid) == ["escalation stopped at level 3: acknowledged by ben at 09:47:00"]


def test_the_escalation_line_after_a_severity_that_does_not_page_and_a_resolve_without_ack(engine):
    iid = engine.open("video-call-degraded", "ana").id
    engine.tick(iid)
    engine.severity(iid, "ana", "SEV4", "one customer only")
    assert escalation(engine, iid) == [("escalation: SEV4 does not page; paged up to level 1 before; "
                                        "nobody has acknowledged")]
    engine.resolve(iid, "ana")
    assert escalation(engine, iid) == ["escalation stopped at level 1: resolved at 09:00:00, never acknowledged"]
    quiet = engine.open("gifts-feature-failing", "ana").id  # SEV4: never pages
    engine.tick(quiet)
    assert escalation(engine, quiet) == ["escalation: SEV4 does not page"]


def test_incident_show_in_the_follow_up_phase_still_says_what_was_not_done(repo_root, tmp_path):
    """The shipped video playbook has a follow-up phase: after resolve, show names the failed and
    undone response steps, then the follow-up step that is current."""
    from runbook.cli.incident import summary

    store = Store(str(tmp_path / "shipped.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, load([str(repo_root / "playbooks")]))
    try:
        iid = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
        engine.fail(iid, "ana", "scope", "dashboards down")
        engine.resolve(iid, "ana")
        state = engine.state(iid)
        assert state.in_followup
        lines = summary(state, engine.clock.now())
        text = "\n".join(lines)
        assert "Not every step was done" in text and "dashboards down" in text
        assert "  current steps:\n    [followup] postmortem:" in text
        assert not empty_headings(lines)
    finally:
        store.close()


def test_the_track_lines_say_the_follow_up_track_begins_at_resolve_then_is_current(repo_root, tmp_path):
    from runbook.tui.widgets.panels import track_lines

    store = Store(str(tmp_path / "shipped.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, load([str(repo_root / "playbooks")]))
    try:
        iid = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
        before = track_lines(build_view(engine.state(iid), engine.clock.now()), "main", "tab").plain
        assert "After the incident: not started (begins when resolved)" in before and "✓ finished" not in before
        engine.resolve(iid, "ana")
        after = track_lines(build_view(engine.state(iid), engine.clock.now()), "followup", "tab").plain
        assert "» After the incident: ▶ Write the postmortem" in after
        assert "– not done: Measure how bad and where" in after  # the response step left undone
    finally:
        store.close()
