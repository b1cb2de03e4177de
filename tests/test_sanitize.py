"""Text from the log or a playbook never reaches the terminal or a Markdown export raw: control
and bidi characters are shown as escapes in the CLI, the export and the TUI, while the log keeps
what was said (its hash chain still verifies). Actor names are checked before anything is recorded."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.engine.metrics import export_markdown, verify
from runbook.errors import CommandError
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.text import InvalidActor, json_shown, markdown, one_line, shown
from runbook.tui.app import build_app

TITLE_SEQ = "\x1b]0;pwned\x07"  # OSC 0: retitles the terminal
CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x07"  # OSC 52: writes the clipboard
C1_CSI = "\x9b31m"  # an 8-bit CSI: recolours the terminal
RLO = "\u202e"  # right-to-left override
NOTE = f"look{TITLE_SEQ} here{CLIPBOARD} red{C1_CSI} flip{RLO}gnp.exe"
# what the note looks like once shown: every one of them escaped, the same way everywhere
SHOWN = r"look\x1b]0;pwned\x07 here\x1b]52;c;ZWNobyBoaQ==\x07 red\x9b31m flip\u202egnp.exe"
TITLE = f"Gifts failing{TITLE_SEQ}{C1_CSI}{RLO}"
TITLE_SHOWN = r"Gifts failing\x1b]0;pwned\x07\x9b31m\u202e"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def raw_controls(text: str) -> list[str]:
    return RAW.findall(text)


@pytest.fixture
def hostile_catalog(fixture_catalog, tmp_path) -> Path:
    """The fixture catalog with a playbook whose title carries terminal escapes (YAML writes them
    as \\e, \\a, \\x9b and \\u202e in a double-quoted string)."""
    root = tmp_path / "catalog"
    shutil.copytree(fixture_catalog, root)
    path = root / "playbooks" / "gifts-feature-failing.yaml"
    text = path.read_text()
    path.write_text(text.replace("title: Gifts failing\n", 'title: "Gifts failing\\e]0;pwned\\a\\x9b31m\\u202e"\n', 1))
    return root


@pytest.fixture
def rb(rb, hostile_catalog):
    """The shared runner in the hostile catalog, which also checks that nothing printed a raw control."""
    rb.cwd = hostile_catalog

    def run(*args, expect=0, stream="stdout", **extra):
        proc = rb.run(*args, expect=expect, **extra)
        assert not raw_controls(proc.stdout) and not raw_controls(proc.stderr), (proc.stdout, proc.stderr)
        return getattr(proc, stream)
    return run


# the sanitizer ---------------------------------------------------------------------------------

def test_controls_and_bidi_are_escaped_newline_and_tab_kept():
    assert shown(NOTE) == SHOWN
    assert shown("a\nb\tc\x7f\x00\u2066") == "a\nb\tc\\x7f\\x00\\u2066"
    assert shown("ünïcödé ✓ 日本") == "ünïcödé ✓ 日本"
    assert shown(shown(NOTE)) == shown(NOTE)  # showing twice changes nothing


def test_one_line_shows_line_breaks():
    assert one_line("first\nsecond\tthird\r") == "first⏎second⇥third\\x0d"


def test_markdown_text_cannot_open_a_cell_a_link_or_html():
    assert markdown("a | b") == r"a \| b"
    assert markdown(r"a \| b") == r"a \\\| b"  # an escaped pipe in a note stays a literal pipe
    assert markdown("[x](javascript:alert(1)) <img src=x> `code` &#x1b;") == \
        r"\[x\](javascript:alert(1)) \<img src=x\> \`code\` \&#x1b;"
    assert markdown("line\n## Causes") == "line⏎## Causes"


def test_json_output_escapes_c1_and_bidi_and_reads_back_the_same():
    encoded = json_shown(json.dumps({"note": NOTE + "\x7f"}, ensure_ascii=False))
    assert not raw_controls(encoded)
    assert "\\u009b" in encoded and "\\u202e" in encoded and "\\u001b" in encoded
    assert json.loads(encoded) == {"note": NOTE + "\x7f"}


# actor names -------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "engine.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json")), entry_points=False)
    yield Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks")]))
    store.close()


@pytest.mark.parametrize("name", ["", "   ", "\x1b[31m", "ana\x07", "ana\nben", "ana\u202e", "a" * 65, "x\x9b"])
def test_the_engine_refuses_an_actor_name_that_is_not_plain_text(engine, name, tmp_path):
    iid = engine.open("gifts-feature-failing", "ana").id
    with pytest.raises(CommandError) as refused:
        engine.note(iid, name, "hello")
    assert isinstance(refused.value, InvalidActor) and refused.value.exit_code == 2
    with pytest.raises(InvalidActor):
        engine.open("gifts-feature-failing", name)
    with pytest.raises(InvalidActor):  # commands with side effects are refused before their intent
        engine.degrade(iid, name, "gifts-off")
    assert not (tmp_path / "flags.json").exists()
    assert [e.type for e in engine.state(iid).events] == ["opened", "step_started"]
    assert not raw_controls(str(refused.value))


def test_an_actor_name_of_64_plain_characters_is_fine(engine):
    iid = engine.open("gifts-feature-failing", "Ana María O'Neill-Åkesson (SRE, on call)").id
    assert engine.note(iid, "b" * 64, "hello")[0].actor == "b" * 64


def test_cli_refuses_a_bad_as_or_runbook_user_with_one_line_and_exit_2(rb):
    iid = rb("incident", "open", "gifts-feature-failing").strip()
    err = rb("incident", "note", iid, "hi", "--as", "\x1b[31m", expect=2, stream="stderr")
    assert err.count("\n") == 1 and "actor name '\\x1b[31m' contains control" in err
    err = rb("incident", "ack", iid, expect=2, stream="stderr", RUNBOOK_USER="\u202eana")
    assert err.count("\n") == 1 and "\\u202e" in err
    err = rb("incident", "open", "gifts-feature-failing", "--as", "x" * 65, expect=2, stream="stderr")
    assert "at most 64" in err
    assert "note" not in rb("incident", "show", iid)


# the CLI ------------------------------------------------------------------------------------------

def test_cli_shows_hostile_notes_and_titles_escaped_and_the_log_keeps_them(rb, tmp_path):
    iid = rb("incident", "open", "gifts-feature-failing").strip()
    echo = rb("incident", "note", iid, NOTE)
    assert f"note: {SHOWN}" in echo
    show = rb("incident", "show", iid)
    assert TITLE_SHOWN in show and SHOWN in show
    listed = rb("incident", "list")
    assert TITLE_SHOWN in listed
    md = rb("incident", "export", iid, "--format", "md")
    assert md.startswith(f"# Postmortem: {markdown(TITLE)}")
    assert markdown(NOTE) in md
    data = json.loads(rb("incident", "show", iid, "--json"))  # JSON escapes them, and means the same
    assert data["title"] == TITLE
    assert json.loads(rb("incident", "export", iid, "--format", "json"))["events"][-1]["data"]["text"] == NOTE
    assert "hash chain intact" in rb("incident", "verify", iid)
    store = Store(str(tmp_path / "db.sqlite"))
    try:  # stored as said, byte for byte
        events = store.events(iid)
        assert events[-1].data["text"] == NOTE
        assert verify(events)[0]
    finally:
        store.close()


def test_markdown_export_keeps_its_tables_intact_with_pipes_and_newlines(engine):
    iid = engine.open("gifts-feature-failing", "ana").id
    engine.note(iid, "ana", "a | b\n| --- |\n## Root cause\nthird line")
    engine.add_action_item(iid, "ana", "fix | it\nnow")
    md = export_markdown(engine.state(iid))
    timeline = md.split("## Timeline\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(timeline) == 6 and all(row.startswith("|") and row.endswith("|") for row in timeline)
    # every row has as many unescaped pipes as the header: no cell was added or split
    cells = {len(re.findall(r"(?<!\\)\|", row)) for row in timeline}
    assert cells == {5}, timeline
    assert r"note: a \| b⏎\| --- \|⏎## Root cause⏎third line" in md
    assert r"| fix \| it⏎now |  |  | ana |  |  | open |" in md  # id, action, kind, priority, owner...
    assert md.count("\n## Root cause\n") == 1  # the note's heading stays inside its line
    assert "- 09:00:00 ana: a \\| b⏎" in md


# the TUI ------------------------------------------------------------------------------------------

def _screen_text(app) -> str:
    import html

    svg = app.export_screenshot()
    return html.unescape(" ".join(re.findall(r">([^<>]*)</text>", svg))).replace("\xa0", " ")


def test_tui_shows_hostile_titles_notes_and_toasts_escaped(hostile_catalog, tmp_path):
    store = Store(str(tmp_path / "tui.sqlite"))
    engine = Engine(store, VirtualClock(START), None, load([str(hostile_catalog / "playbooks")]))
    iid = engine.open("gifts-feature-failing", "ana", incident="INC-TEST01").id
    engine.note(iid, "ben", NOTE)  # another responder's note arrives after the screen is up
    app = build_app(EngineService(engine), engine.catalog, "ana", iid, live=False)

    async def scenario():
        async with app.run_test(size=(160, 40)) as pilot:
            for _ in range(5):
                await pilot.pause()
                await app.workers.wait_for_complete()
            screen = app.screen
            view = app.gateway.view(iid)
            engine.note(iid, "ben", f"again{CLIPBOARD}[b]bold?[/b]")
            screen.refresh_view()
            for _ in range(5):
                await pilot.pause()
                await app.workers.wait_for_complete()
            return view, _screen_text(app), [(n.title, n.message, n.markup) for n in app._notifications]

    try:
        view, text, toasts = asyncio.run(scenario())
    finally:
        store.close()
    assert view.title == TITLE_SHOWN
    assert any(line.text == f"note: {SHOWN}" for line in view.timeline)
    strings = [s for s in _strings(view)]
    assert not [s for s in strings if raw_controls(s)]
    assert not raw_controls(text)
    assert r"Gifts failing\x1b]0;pwned\x07" in text
    assert r"look\x1b]0;pwned\x07" in text
    toast = next(message for _, message, _ in toasts if "again" in message)
    assert toast == r"note: again\x1b]52;c;ZWNobyBoaQ==\x07[b]bold?[/b]"
    assert all(markup is False for _, _, markup in toasts)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _strings(item)


def test_commands_print_only_through_the_sanitizing_output(repo_root):
    """click.echo and friends are called in cli/output.py alone: every other command module
    prints through it, so no line skips the sanitizer."""
    direct = re.compile(r"\bclick\.(echo|secho)\(|\bprint\(|sys\.stdout\.write|sys\.stderr\.write")
    offenders = [f"{path.name}:{number}: {line.strip()}"
                 for path in sorted((repo_root / "src" / "runbook" / "cli").glob("*.py")) if path.name != "output.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if direct.search(line)]
    assert offenders == []


def test_the_tui_refuses_a_bad_runbook_user_before_it_starts(hostile_catalog, fixture_env, tmp_path):
    import os
    import pty

    controller, terminal = pty.openpty()  # `runbook` starts the TUI only in a terminal
    try:
        proc = subprocess.run([sys.executable, "-m", "runbook"], cwd=hostile_catalog, stdin=terminal, stdout=terminal,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**fixture_env, "RUNBOOK_DB": str(tmp_path / "db.sqlite"),
                                   "RUNBOOK_USER": "\x1b]0;pwned\x07"})
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2
    assert proc.stderr.startswith("runbook: error: the actor name '\\x1b]0;pwned\\x07'")
    assert proc.stderr.count("\n") == 1
