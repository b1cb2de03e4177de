"""The responder at 3 a.m., at 80x24 and 120x40: nothing hidden, nothing misleading after resolve.
One test per finding of the usability walk-through (issue items 1-9; item 10 is in test_cli.py),
each at both sizes, on the engine's virtual clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pilot_helpers import flat, press, screen_text, settle, widget_text

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.read_models import debrief
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.dialogs.parameters import ParameterForm
from runbook.tui.dialogs.prompt import TextPrompt
from runbook.tui.keys import explain, key_display
from runbook.tui.screens.debrief import DebriefScreen
from runbook.tui.screens.help import HelpScreen
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets.panels import StepList, Timeline

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SIZES = [(80, 24), (120, 40)]
sizes = pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])


@pytest.fixture
def make(tmp_path, repo_root, fixture_catalog):
    stores = []

    def factory(open_incident=True, playbook="video-call-degraded", **open_args):
        store = Store(str(tmp_path / "db.sqlite"))
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=str(repo_root / "plugins")),
                          entry_points=False)
        catalog = load([str(fixture_catalog / "playbooks"), str(fixture_catalog / "drills")])
        engine = Engine(store, VirtualClock(START), host, catalog)
        incident = None
        if open_incident:
            incident = engine.open(playbook, "ana", incident="INC-TEST01", **open_args).id
            engine.tick(incident)
        return build_app(EngineService(engine), catalog, "ana", incident, live=False), engine
    yield factory
    for store in stores:
        store.close()


async def tick(pilot, engine, **advance):
    """Time passes on the virtual clock; the screen ticks and redraws as it would each second."""
    engine.clock.advance(**advance)
    screen = next(s for s in pilot.app.screen_stack if isinstance(s, IncidentScreen))
    screen.tick()
    await settle(pilot)
    screen.refresh_view()
    await settle(pilot)


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def to_cap_bitrate(pilot):
    """ack, three checks, 'several regions' -> the cap-bitrate degrade step."""
    await press(pilot, "a", "d", "d", "d", "c", "2")


# 1. after resolve -------------------------------------------------------------------------

@sizes
def test_after_resolve_the_clock_stops_and_only_what_remains_is_offered(make, size):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await to_cap_bitrate(pilot)
            await press(pilot, "d", "y")                # low-bitrate applied
            engine.clock.advance(minutes=1)
            engine.resolve("INC-TEST01", "ana", keep_degradations=True)  # e.g. kept on purpose, from the CLI
            await tick(pilot, engine, minutes=1)
            first = screen_text(app)
            await tick(pilot, engine, minutes=7)
            later = screen_text(app)
            footer = app.screen.query_one("KeyBar").content.plain
            await press(pilot, "d")                     # no dialog for a step of a resolved incident
            refused = isinstance(app.screen, IncidentScreen), toasts(app)[-1]
            await press(pilot, "r")                     # leftovers can be restored: the dialog names the flags
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "1")
            assert isinstance(app.screen, ConfirmDialog)
            detail = flat(str(app.screen.query_one(".dialog-detail").render()))
            await press(pilot, "y")
            return first, later, footer, refused, detail
    first, later, footer, refused, detail = asyncio.run(scenario())
    header = first.splitlines()[0]
    assert "RESOLVED after 01:0" in header and header == later.splitlines()[0]  # the clock has stopped
    assert "timebox" not in first and "elapsed" not in first
    assert "not done" in first and "in progress" not in first
    assert "Left undone" in flat(first)
    assert flat(footer).split() == "r Restore o Assign n Note b Debrief w Export esc Home ? Help ^p Palette".split()
    assert refused[0] and "resolved" in refused[1] and "r restore" in refused[1]
    assert detail == "rtc.video.max-bitrate-kbps → 1500 (restored)"  # what the restore writes
    assert not engine.state("INC-TEST01").degradations["low-bitrate"].applied


# 2. every track's current step, and tab, on screen -----------------------------------------

@sizes
def test_every_tracks_current_step_and_the_switch_key_are_on_screen(make, size):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            before = screen_text(app)
            await press(pilot, "tab")
            return before, screen_text(app), app.screen.selected.track
    before, after, track = asyncio.run(scenario())
    assert "Open the incident channel" in before and "Measure how bad and where" in before
    assert "tab to switch" in before and "tab Track" in flat(before)
    assert track == "comms"
    assert "COMMUNICATE  Open the incident channel" in after


# 3. the footer and the help screen are never cut ------------------------------------------

@sizes
def test_footer_shows_every_key_that_works_now_and_help_never_wraps_a_description(make, size):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            text = flat(screen_text(app))
            screen = app.screen
            working = [b for b in IncidentScreen.BINDINGS if b.show and b.description
                       and screen.key_available(b.action)]
            await press(pilot, "question_mark")
            assert isinstance(app.screen, HelpScreen)
            helps = []
            for _ in range(12):  # page through the help: every description on one line of its own
                helps.append(screen_text(app))
                await press(pilot, "pagedown")
            return text, working, "\n".join(helps)
    text, working, helps = asyncio.run(scenario())
    for binding in working:
        assert f"{key_display(binding)} {binding.description}" in text, binding.description
    assert "esc Home" in text and "? Help" in text and "^p Palette" in text
    for binding in IncidentScreen.BINDINGS + HomeScreen.BINDINGS:
        if binding.description:
            assert explain(binding) in helps, f"{explain(binding)!r} is cut or wrapped in the help"


# 4. toasts go once handled ----------------------------------------------------------------

@sizes
def test_toasts_are_withdrawn_once_what_they_announced_is_handled(make, size):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await tick(pilot, engine, minutes=6)       # nobody acked: level 2 is paged
            paged = [m for m in toasts(app) if "level 2" in m]
            await press(pilot, "a")
            await tick(pilot, engine, seconds=1)
            after_ack = [m for m in toasts(app) if "level 2" in m]
            await to_cap_bitrate_from_acked(pilot)
            await press(pilot, "f")                    # verify-bitrate failed -> audio-only (gated)
            await pilot.press(*"still freezing")
            await press(pilot, "enter")
            gate = [m for m in toasts(app) if "needs approval" in m]
            await press(pilot, "p", "y")
            await tick(pilot, engine, seconds=1)
            return paged, after_ack, gate, [m for m in toasts(app) if "needs approval" in m]
    paged, after_ack, gate, after_approve = asyncio.run(scenario())
    assert paged and not after_ack
    assert gate and not after_approve


async def to_cap_bitrate_from_acked(pilot):
    await press(pilot, "d", "d", "d", "c", "2", "d", "y")   # ...and apply it: now at verify-bitrate


# 5. home --------------------------------------------------------------------------------

@sizes
def test_home_types_to_filter_opens_the_top_match_and_shows_titles_in_full(make, size):
    app, engine = make(open_incident=False)
    engine.open("calls-failing-one-region", "ana", incident="INC-TEST02")

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, HomeScreen)
            home = screen_text(app)
            await pilot.press(*"video freezing")       # no key first: the filter has the focus
            await settle(pilot)
            top = app.screen.query_one("#playbooks").get_row_at(0)[0]
            await press(pilot, "enter")                 # one Enter asks to open the top match
            asked = isinstance(app.screen, (ConfirmDialog, ParameterForm))  # it has parameters: the form asks
            await press(pilot, "enter" if isinstance(app.screen, ParameterForm) else "y")
            return home, top, asked, type(app.screen)
    home, top, asked, screen = asyncio.run(scenario())
    assert "INC-TEST02" in home and "Calls failing in one region" in home  # id and title
    assert "Enter to resume" in home and "Enter opens the top match" in home
    assert "Video calls degraded" in home
    assert top == "video-call-degraded" and asked and screen is IncidentScreen


# 6. approvals on every path; flip dialogs list their flags ---------------------------------

@sizes
def test_g_respects_the_approval_a_current_step_demands_and_lists_flags(make, size):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await press(pilot, "g")
            choices = app.screen.choices
            await press(pilot, "escape")
            await to_cap_bitrate(pilot)
            await press(pilot, "d", "y", "f")           # cap applied; verify failed -> audio-only (gated)
            await pilot.press(*"no better")
            await press(pilot, "enter")
            assert app.screen.selected.id == "audio-only"
            await press(pilot, "g", "1")                # audio-only by hand: refused until approved
            refused = isinstance(app.screen, IncidentScreen), toasts(app)[-1]
            # the step's own key: nobody holds commander, so one confirmation approves and applies it
            await press(pilot, "d")
            question = str(app.screen.query_one(".dialog-title").render())
            detail = flat(str(app.screen.query_one(".dialog-detail").render()))
            await press(pilot, "y")
            return choices, refused, question, detail
    choices, refused, question, detail = asyncio.run(scenario())
    assert choices == ["low-bitrate: Cap video at 300 kbps", "audio-only: Switch all calls to audio only"]
    assert refused[0] and "needs approval by commander" in refused[1]
    assert question == "Approve “Fallback - switch calls to audio only” as commander and apply “audio-only”?"
    # the confirmation states the plan the engine then writes, and that the approval is recorded first
    assert "Approved, it writes: rtc.video.enabled → false rtc.screen-share.enabled → false" in detail
    assert "Recorded as approved by ana (nobody holds commander), then apply “audio-only”." in detail
    state = engine.state("INC-TEST01")
    assert state.degradations["audio-only"].applied and state.steps["audio-only"].approved


# 7. empty reasons are refused, saying so ------------------------------------------------------

@sizes
@pytest.mark.parametrize("key", ["s", "f"])
def test_an_empty_skip_or_fail_reason_is_refused_out_loud(make, size, key):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await press(pilot, key, "enter")
            still = isinstance(app.screen, TextPrompt)
            said = str(app.screen.query_one("#prompt-error").render())
            await pilot.press(*"SFU fine")
            await press(pilot, "enter")
            return still, said
    still, said = asyncio.run(scenario())
    assert still and "A reason is required" in said
    step = engine.state("INC-TEST01").steps["scope"]
    assert step.status == ("skipped" if key == "s" else "failed")


# 8. nothing that matters is cut -------------------------------------------------------------

@sizes
def test_header_and_timeline_wrap_and_long_instructions_say_there_is_more(make, size):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await tick(pilot, engine, seconds=5)
            first = screen_text(app)
            more = "more below" in first
            if more:
                await press(pilot, "pagedown")
            scrolled = screen_text(app)
            await to_cap_bitrate(pilot)
            await press(pilot, "d", "y", "n")
            await pilot.press(*NOTE)
            await press(pilot, "enter")
            return first, more, scrolled, screen_text(app), str(app.screen.query_one("#timeline").render())
    first, more, scrolled, degraded, timeline = asyncio.run(scenario())
    assert "page L2 in 04:55" in first
    assert "elapsed 00:05" in first
    assert "runbook: step “" in first  # steps by their titles
    if size == (80, 24):
        assert more and "↓ more below: PgDn" in first
        assert "degraded: low-bitrate" in degraded
    assert "Measure how bad and where" in scrolled.split("Timeline")[0]  # the title stays put
    assert f"note: {NOTE}" in flat(timeline) and "…" not in timeline  # wrapped, not cut


NOTE = "SFU eu-central-1 at 95% CPU since the 02:10 deploy; rolling back to 4.18.2"


# 9. drills end when their conditions hold; home shows their history --------------------------

@sizes
def test_a_drill_ends_on_its_conditions_and_home_shows_it_ran(make, size):
    app, engine = make(playbook="calls-failing-one-region", drill=True, rehearse="surprise-ack")

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            header = screen_text(app).splitlines()[0]
            await press(pilot, "a", "d")                # the acknowledgement and the first step
            await tick(pilot, engine, seconds=1)
            ended = type(app.screen)
            await press(pilot, "escape", "escape")
            await settle(pilot)
            return header, ended, flat(screen_text(app))
    header, ended, home = asyncio.run(scenario())
    assert "DRILL" in header and "elapsed 00:00" in header
    assert ended is DebriefScreen
    state = engine.state("INC-TEST01")
    assert state.resolved and "drill over: acknowledged and first-step" in [n.data["text"] for n in state.notes]
    assert "surprise-ack last resolved (INC-TEST01)" in home and "never run" not in home.split("surprise-ack")[1][:20]


@sizes
def test_a_mitigation_option_that_flips_flags_lists_them_before_asking(make, size):
    app, engine = make(playbook="message-delivery-delayed")
    spec = engine.catalog.models("Playbook")["message-delivery-delayed"].degradations["no-typing"]

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            while app.screen.selected.id != "mitigate":
                await press(pilot, "d")
            await press(pilot, "c", "1")
            assert isinstance(app.screen, ConfirmDialog)
            return flat(str(app.screen.query_one(".dialog-detail").render()))
    detail = asyncio.run(scenario())
    assert "Applies “no-typing”" in detail
    for flag in spec.set:
        assert f"{flag} → " in detail


def test_back_home_typing_goes_to_the_filter_again(make):
    app, _engine = make(open_incident=False)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "tab")                       # focus leaves the filter
            await pilot.press(*"calls failing")            # typing still lands in the filter
            await settle(pilot)
            return app.screen.query_one("#filter").value, app.screen.query_one("#playbooks").get_row_at(0)[0]
    value, top = asyncio.run(scenario())
    assert value == "calls failing" and top == "calls-failing-one-region"


# 10. long instructions: the line over the timeline says what PgDn / PgUp do, and they do it --

def more_line(app) -> str:
    """What the line over the timeline says about the instructions ("" when they fit)."""
    from runbook.tui.widgets.current import CurrentStepPanel

    return app.screen.query_one(CurrentStepPanel).more


def instructions_scroll(app) -> tuple[float, float]:
    body = app.screen.query_one("#current-body")
    return body.scroll_y, body.max_scroll_y


def test_pgdn_scrolls_the_instructions_and_the_line_over_the_timeline_follows_them(make):
    """At 80x24 the first step's instructions overflow: the line says so, PgDn scrolls them
    (not the step list, which has the focus), PgUp back; a step whose instructions fit says
    nothing; a terminal made taller says nothing, made small again says it again."""
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            seen = [(more_line(app), instructions_scroll(app))]
            await press(pilot, "pagedown")
            seen.append((more_line(app), instructions_scroll(app)))
            steps = app.screen.query_one("#steps-scroll").scroll_y
            await press(pilot, "pageup")
            seen.append((more_line(app), instructions_scroll(app)))
            await pilot.resize_terminal(80, 60)
            await settle(pilot)
            seen.append((more_line(app), instructions_scroll(app)))
            await pilot.resize_terminal(80, 24)
            await settle(pilot)
            seen.append((more_line(app), instructions_scroll(app)))
            await to_cap_bitrate(pilot)
            await press(pilot, "d", "y")  # applied: now at verify-bitrate, whose instructions fit
            seen.append((more_line(app), instructions_scroll(app)))
            return seen, steps
    seen, steps = asyncio.run(scenario())
    ((first, (y0, most)), (paged, (y1, _)), (back, (y2, _)), (tall, (_, tall_most)), (again, _),
     (short, (_, fits))) = seen
    assert most > 0 and y0 == 0 and first == "↓ more below: PgDn"
    assert y1 > 0 and "↑ PgUp back up" in paged and steps == 0  # the instructions moved, the step list did not
    assert y2 == 0 and back == "↓ more below: PgDn"
    assert tall_most == 0 and tall == ""
    assert again == "↓ more below: PgDn"
    assert fits == 0 and short == ""


# issue 28: the 3 a.m. path, fewer keys ---------------------------------------------------------

@sizes
def test_the_open_form_offers_the_region_typed_and_its_error_gives_an_example(make, size, snap_compare):
    app, _engine = make(open_incident=False)

    async def typed(pilot):
        await settle(pilot)
        await pilot.press(*"video freezing in eu-west")
        await press(pilot, "enter")                 # the top match: its form, the region offered
        assert isinstance(app.screen, ParameterForm) and app.screen.query_one("#param-region").value == "eu-west"
        await press(pilot, "enter")                 # eu-west does not fit: said, with the summary's example
        errors.append(flat(str(app.screen.query_one("#param-error").render())))
    errors = []
    assert snap_compare(app, terminal_size=size, run_before=typed)
    assert errors[0] == ("region: 'eu-west' does not match ^[a-z]+-[a-z]+-[0-9]+$. The region the alert fired in, "
                     "like eu-central-1. Optional: clear it to open without it.")


@sizes
def test_one_dialog_approves_and_applies_and_enter_and_digits_do_the_obvious(make, size, snap_compare):
    app, _engine = make()

    async def to_the_gate(pilot):
        await settle(pilot)
        await _to_audio_only(pilot)   # Enter acks and does three checks, 2 answers, Enter applies the cap
        assert app.screen.selected.id == "audio-only"
        await press(pilot, "enter")   # approve (nobody holds commander) and apply, in one dialog
        assert isinstance(app.screen, ConfirmDialog)
    assert snap_compare(app, terminal_size=size, run_before=to_the_gate)


def test_the_one_dialog_records_the_approval_then_the_flip(make):
    app, engine = make()

    async def confirm():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await _to_audio_only(pilot)
            await press(pilot, "enter")
            question = str(app.screen.query_one(".dialog-title").render())
            await press(pilot, "y")
            return question
    assert asyncio.run(confirm()) == ("Approve “Fallback - switch calls to audio only” as commander and apply "
                                      "“audio-only”?")
    state = engine.state("INC-TEST01")
    kinds = [e.type for e in state.events]
    # the approval is recorded first, bound to what it covered; then the flip it approved
    assert kinds.index("approval_granted") < max(i for i, k in enumerate(kinds) if k == "flag_changed")
    assert state.steps["audio-only"].approved and state.degradations["audio-only"].applied


@sizes
def test_step_titles_are_whole_and_the_timeline_names_steps_by_title(make, size):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await press(pilot, "a", "d")
            return widget_text(app.screen.query_one(StepList)), app.screen.query_one(Timeline).render().plain
    steps, timeline = asyncio.run(scenario())
    assert "“Measure how bad and where” done" in flat(timeline) and "step scope" not in timeline
    for title in ("Fallback - switch calls to audio only", "Freezes stop with the bitrate cap"):
        assert title in flat(steps)  # wrapped under itself, never cut
    assert "…" not in steps


def _to_audio_only(pilot):
    return press(pilot, "enter", "enter", "enter", "enter", "2", "enter", "y", "f", *"no better", "enter")


def test_scroll_position_holds_while_a_message_ticks(make):
    """A communicate step's message shows the time since it started: it is rendered again each
    second, and the pane stays where the responder scrolled it."""
    app, engine = make()

    async def scenario():
        async with app.run_test(size=(80, 20)) as pilot:
            await settle(pilot)
            await _to_audio_only(pilot)
            await press(pilot, "enter", "y")                   # approve and apply audio-only
            assert app.screen.selected.id == "announce-audio-only", app.screen.selected.id
            body = app.screen.query_one("#current-body")
            await press(pilot, "pagedown")
            scrolled = body.scroll_y
            await tick(pilot, engine, seconds=61)              # "started 1m1s ago" and so on
            await tick(pilot, engine, seconds=5)
            return scrolled, body.scroll_y
    scrolled, after = asyncio.run(scenario())
    assert scrolled > 0 and after == scrolled


def test_toasts_never_cover_a_dialog_or_the_keys(make):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(pilot)
            await press(pilot, "n")                            # a dialog is open...
            app.notify("a page arrived", timeout=30)           # ...when a toast is raised
            await settle(pilot)
            on_dialog = len(app.screen.query("Toast"))
            await press(pilot, "escape")
            under = len(app.screen.query("Toast"))
            rack = app.screen.query_one("ToastRack")
            bar = app.screen.query_one("KeyBar")
            return on_dialog, under, rack.styles.margin.bottom, bar.size.height
    on_dialog, under, margin, keys = asyncio.run(scenario())
    assert on_dialog == 0 and under == 1   # it waited under the dialog, and shows once it is closed
    assert margin == keys                  # stacked above the keys, never over them


def test_copy_key_copies_the_command_whole(make):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "a", "d")                       # "Check SFU and TURN health": shell snippets
            await press(pilot, "y")
            return app.clipboard
    copied = asyncio.run(scenario())
    assert copied.splitlines()[0].startswith("kubectl --context prod-") and "\n" in copied


def test_the_postmortem_asks_where_offering_a_folder_outside_the_working_tree(make, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_POSTMORTEMS", str(tmp_path / "pm"))
    app, engine = make()
    engine.resolve("INC-TEST01", "ana")

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "w")
            prompt = app.screen
            offered = prompt.query_one("#prompt-input").value
            await press(pilot, "enter")
            return type(prompt), offered
    kind, offered = asyncio.run(scenario())
    assert kind is TextPrompt and offered == str(tmp_path / "pm" / "INC-TEST01-postmortem.md")
    written = (tmp_path / "pm" / "INC-TEST01-postmortem.md").read_text()
    assert written.startswith("# Postmortem: Video calls degraded")
    # steps by title, in the steps table and the timeline; the debrief likewise
    assert "| Measure how bad and where | main |" in written and "step “Measure how bad and where” started" in written
    assert debrief(engine, "INC-TEST01")["steps"][0]["step"] == "Measure how bad and where"


@sizes
def test_help_opens_from_the_symptom_filter(make, size, snap_compare):
    app, _engine = make(open_incident=False)

    async def question(pilot):
        await settle(pilot)
        await pilot.press(*"video")
        await press(pilot, "question_mark")  # the filter has the focus: ? is help, not a character
        assert isinstance(app.screen, HelpScreen)
        assert app.screen_stack[-2].query_one("#filter").value == "video"
    assert snap_compare(app, terminal_size=size, run_before=question)


@sizes
def test_a_drill_starts_from_home(make, size, snap_compare):
    app, engine = make(open_incident=False)

    async def pick(pilot):
        await settle(pilot)
        await press(pilot, "tab", "D")        # from the lists (in the filter, D is a letter)
        assert isinstance(app.screen, ChoiceDialog)
    assert snap_compare(app, terminal_size=size, run_before=pick)

    app, engine = make(open_incident=False)

    async def start():
        async with app.run_test(size=size) as pilot:
            await pick(pilot)
            await press(pilot, "3", "y")      # weekly-audio-fallback, tabletop
            return app.screen.incident
    state = engine.state(asyncio.run(start()))
    assert state.drill and state.playbook.id == "video-call-degraded"


def test_an_untitled_flip_step_is_named_by_what_it_flips(tmp_path, fixture_catalog):
    import shutil

    import yaml

    for name in ("severity.yaml", "roster.yaml", "escalation-rtc-default.yaml", "escalation-rtc-critical.yaml"):
        shutil.copy(fixture_catalog / "playbooks" / name, tmp_path / name)
    doc = yaml.safe_load((fixture_catalog / "playbooks" / "video-call-degraded.yaml").read_text())
    for step in doc["steps"]:
        if step["id"] in ("cap-bitrate", "restore-video"):
            del step["title"]
    (tmp_path / "video-call-degraded.yaml").write_text(yaml.safe_dump(doc))
    pb = load([str(tmp_path)]).models("Playbook")["video-call-degraded"]
    assert pb.step("cap-bitrate").title == "Apply low-bitrate"
    assert pb.step("restore-video").title == "Restore audio-only"
