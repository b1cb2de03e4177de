"""The plugin host: loading from built-ins, a directory and entry points; isolation of failures;
and one test per hook (a meta-test fails when a hook has none)."""

from __future__ import annotations

import ast
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook import hookspecs
from runbook.engine.events import Event, decode
from runbook.errors import PluginError
from runbook.pluginapi import ActionRequest, EscalationNotice, FlagState, Recipient
from runbook.plugins import PluginHost
from runbook.settings import Settings

HERE = Path(__file__).parent
MISBEHAVING = HERE / "plugins" / "misbehaving"
OBSERVERS = HERE / "plugins" / "observers"
WRAPPERS = HERE / "plugins" / "wrappers"
NOTICE = EscalationNotice("inc-1", "Video degraded", "SEV2", 1, (Recipient("ana", "Ana", via="rotation rtc-primary"),))


def host(tmp_path, plugins_dir=None, **settings):
    return PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=str(plugins_dir) if plugins_dir
                               else None, **settings), entry_points=False)


def by_name(h):
    return {p.name: p for p in h.plugins}


def test_meta_every_hook_has_its_own_test():
    hooks = {name for name, value in vars(hookspecs).items()
             if callable(value) and hasattr(value, "runbook_spec")}
    tests = set()
    for module in HERE.glob("test_*.py"):
        tree = ast.parse(module.read_text())
        tests |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    missing = sorted(h for h in hooks if not any(t.startswith(f"test_hook_{h}") for t in tests))
    assert hooks and missing == [], f"hooks without a test_hook_<name> test: {missing}"


def test_builtins_load_as_ordinary_plugins(tmp_path):
    plugins = by_name(host(tmp_path))
    assert plugins["flag_file"].hooks == ["get_flag", "restore_flag", "set_flag", "set_flag_share"]
    assert plugins["shell_action"].hooks == ["run_action"]
    assert plugins["terminal_notifier"].hooks == ["notify"]
    assert plugins["pagerduty"].hooks == ["notify", "notify_update"]
    assert plugins["subscriber_mail"].hooks == ["notify_subscriber"]
    assert all(p.source == "built-in" for p in plugins.values())


def test_directory_plugins_load_and_broken_files_are_reported_not_raised(tmp_path):
    plugins = by_name(host(tmp_path, MISBEHAVING))
    assert plugins["raising"].hooks == ["event_appended", "notify", "set_flag"]
    assert plugins["exits_on_import"].error == "cannot load: SystemExit: 3"
    assert plugins["syntax_error"].error.startswith("cannot load: SyntaxError")
    assert "_private_helper" not in by_name(host(tmp_path, OBSERVERS))


def test_hook_wrappers_are_refused_at_load_with_the_plugin_and_hooks_named(tmp_path):
    h = host(tmp_path, WRAPPERS)
    assert by_name(h)["wrapping"].error == ("cannot register: hook wrappers are not supported (wrapper=True or "
                                            "hookwrapper=True on notify, set_flag); implement them with a plain "
                                            "@hookimpl")
    assert not h.pm.has_plugin("wrapping")
    change, failures = h.set_flag("rtc.video.enabled", False)
    assert (change.backend, failures) == ("plain", [])


def test_firstresult_comes_from_the_hookspec(tmp_path):
    from pluggy import HookspecMarker

    class Specs:
        @HookspecMarker("runbook")(firstresult=True)
        def pick(self, x):
            """first answer wins"""

        @HookspecMarker("runbook")
        def gather(self, x):
            """every answer"""

    class One:
        @hookspecs.hookimpl
        def pick(self, x):
            return "one"

        @hookspecs.hookimpl
        def gather(self, x):
            return "one"

    class Two(One):
        pass

    h = host(tmp_path)
    h.pm.add_hookspecs(Specs)
    h.pm.register(One(), name="one")
    h.pm.register(Two(), name="two")
    assert [plugin for plugin, _ in h.call("pick", 1.0, x=1).results] == ["two"]
    assert [plugin for plugin, _ in h.call("gather", 1.0, x=1).results] == ["two", "one"]


def test_allowlist_limits_loaded_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_LOAD_PLUGINS", "wrong_type")
    names = set(by_name(host(tmp_path, MISBEHAVING)))
    assert names == {"flag_file", "shell_action", "terminal_notifier", "pagerduty", "matrix", "subscriber_mail",
                     "wrong_type"}
    monkeypatch.setenv("RUNBOOK_LOAD_PLUGINS", "")
    assert set(by_name(host(tmp_path, MISBEHAVING))) == {"flag_file", "shell_action", "terminal_notifier",
                                                         "pagerduty", "matrix", "subscriber_mail"}


def test_entry_point_plugin_loads(tmp_path, monkeypatch):
    (tmp_path / "ep_demo_plugin.py").write_text(
        "from runbook.pluginapi import hookimpl\n"
        "@hookimpl\ndef register_actions(register):\n    register('ep-demo', 'from an entry point')\n")
    dist = tmp_path / "ep_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runbook]\nep_demo = ep_demo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    h = PluginHost(Settings(flags_file=str(tmp_path / "f.json"), plugins_dir=None))
    plugin = by_name(h)["ep_demo"]
    assert (plugin.source, plugin.location, plugin.actions) == ("entry point", "ep_demo_plugin", ["ep-demo"])
    sys.modules.pop("ep_demo_plugin", None)


def _install(site, module, name, action):
    (site / f"{module}.py").write_text(
        "from runbook.pluginapi import hookimpl\n"
        "class Plugin:\n    @staticmethod\n    @hookimpl\n"
        f"    def register_actions(register):\n        register('{action}', 'from an entry point')\n")
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[runbook]\n{name} = {module}:Plugin\n")


def test_remembered_entry_points_follow_installs_and_removals(tmp_path, monkeypatch):
    """The list of entry points is cached, but installing or removing a package is seen at once."""
    import shutil

    from runbook.entry_points import installed_entry_points
    from runbook.plugins import ENTRY_POINT_GROUP

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _install(site, "first_plugin", "first", "first-action")
    from runbook.settings import cache_dir

    assert ("first", "first_plugin:Plugin") in installed_entry_points(ENTRY_POINT_GROUP)
    assert "first_plugin:Plugin" in (cache_dir() / "entry-points.json").read_text()
    _install(site, "second_plugin", "second", "second-action")
    h = PluginHost(Settings(flags_file=str(tmp_path / "f.json"), plugins_dir=None))
    assert by_name(h)["second"].actions == ["second-action"]
    shutil.rmtree(site / "first_plugin-1.0.dist-info")
    names = {name for name, _ in installed_entry_points(ENTRY_POINT_GROUP)}
    assert "first" not in names and "second" in names
    # an entry_points.txt rewritten in place (setuptools' develop installs do that)
    points = site / "second_plugin-1.0.dist-info" / "entry_points.txt"
    points.write_text(points.read_text() + "third = second_plugin:Plugin\n")
    os.utime(points, ns=(points.stat().st_atime_ns, points.stat().st_mtime_ns + 1_000_000))
    assert "third" in {name for name, _ in installed_entry_points(ENTRY_POINT_GROUP)}
    # path entries that are not text (a plugin may append a Path) never break the lookup
    monkeypatch.setattr(sys, "path", [site, *sys.path])
    assert "second" in {name for name, _ in installed_entry_points(ENTRY_POINT_GROUP)}
    for module in ("first_plugin", "second_plugin"):
        sys.modules.pop(module, None)


def test_trace_prints_every_hook_call(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUNBOOK_TRACE_PLUGINS", "1")
    host(tmp_path).get_flag("x")
    assert "runbook plugin trace: get_flag -> flag_file: FlagState(exists=False" in capsys.readouterr().err


def test_hook_set_flag_raising_plugin_becomes_a_failure_and_the_next_backend_answers(tmp_path):
    change, failures = host(tmp_path, MISBEHAVING).set_flag("rtc.video.enabled", False)
    assert change.current == FlagState(True, False, "off", True)
    assert [f.format() for f in failures] == [
        "plugin raising failed in set_flag: RuntimeError: flag service is down"]


def test_hook_set_flag_share_writes_a_fractional_rule_and_another_backend_can_answer_first(tmp_path):
    import json

    h = host(tmp_path)
    h.set_flag("rtc.video.enabled", True)
    change, failures = h.set_flag_share("rtc.video.enabled", False, 25, "callId")
    assert (change.current, failures) == (FlagState(True, False, "off", True, 25), [])
    flag = json.loads((tmp_path / "flags.json").read_text())["flags"]["rtc.video.enabled"]
    assert flag["targeting"] == {"fractional": [{"var": "callId"}, ["off", 25], ["on", 75]]}
    assert flag["defaultVariant"] == "on"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "staged_elsewhere.py").write_text(
        "from runbook.pluginapi import FlagChange, FlagState, hookimpl\n"
        "@hookimpl\n"
        "def set_flag_share(settings, name, value, share, by, normal, drill):\n"
        "    return FlagChange(name, FlagState(True, True), FlagState(True, value, None, True, share), 'elsewhere')\n")
    change, _ = host(tmp_path, plugins).set_flag_share("rtc.video.enabled", False, 50, "callId")
    assert (change.backend, change.current.share) == ("elsewhere", 50)


def test_hook_get_flag_wrong_type_is_a_failure(tmp_path):
    state, failures = host(tmp_path, MISBEHAVING).get_flag("rtc.video.enabled")
    assert state == FlagState(exists=False)
    assert failures[0].message == "returned str, expected FlagState"


def test_hook_restore_flag_puts_back_the_previous_state(tmp_path):
    h = host(tmp_path)
    h.set_flag("rtc.video.enabled", True)
    change, _ = h.set_flag("rtc.video.enabled", False)
    restored, _ = h.restore_flag("rtc.video.enabled", change.previous)
    assert restored.current.value is True
    with pytest.raises(PluginError, match="nothing to restore"):
        h.restore_flag("never.touched", None)


def test_hook_register_actions_names_what_plugins_provide(tmp_path, repo_root):
    actions = host(tmp_path, repo_root / "plugins").actions()
    assert actions["http-check"][0] == "http_check"


def test_hook_run_action_hanging_plugin_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr("runbook.plugins.ACTION_GRACE", 0.0)
    result, failures = host(tmp_path, MISBEHAVING).run_action(ActionRequest(action="hang", timeout=0.2))
    assert result.ok is False
    assert failures[0].kind == "timeout"
    assert "plugin hanging failed in run_action: did not return within 0.2s" in result.summary


def test_hook_run_action_unknown_action_is_explained(tmp_path):
    result, _ = host(tmp_path).run_action(ActionRequest(action="nope"))
    assert (result.ok, result.summary) == (False, "no plugin provides action 'nope' (loaded actions: none)")


def test_hook_notify_collects_results_and_isolates_failures(tmp_path):
    results, failures = host(tmp_path, MISBEHAVING, notify_timeout=0.2).notify(NOTICE)
    assert [r.channel for r in results] == ["terminal"]
    assert results[0].detail == "level 1 paged: Ana (rotation rtc-primary)"
    assert {(f.plugin, f.kind) for f in failures} == {("raising", "error"), ("hanging", "timeout")}


def test_hook_notify_terminal_bell_rings_only_on_a_terminal(tmp_path, monkeypatch):
    class Tty:
        written = ""

        def isatty(self):
            return True

        def write(self, text):
            Tty.written += text

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Tty())
    host(tmp_path).notify(NOTICE)
    assert Tty.written == "\a"


def test_hook_event_appended_reaches_every_observer_and_failures_are_data(tmp_path):
    data = {"playbook": "p", "title": "P", "severity": "SEV2"}
    opened = Event(1, datetime(2026, 11, 30, tzinfo=UTC), "ana", decode("opened", data), data)
    h = host(tmp_path, OBSERVERS)
    h.observe("INC-1", opened)
    assert h.drain(grace=30) == []
    assert sys.modules["runbook_plugins_dir.recorder"].SEEN[-1] == opened
    broken = host(tmp_path, MISBEHAVING)
    broken.observe("INC-1", opened)
    [(incident, failure)] = broken.drain(grace=30)
    assert (incident, failure.format()) == ("INC-1", "plugin raising failed in event_appended: "
                                            "ValueError: observer broke, while observing event 1 (opened)")


def test_hook_register_commands_adds_plugin_commands(rb, tmp_path):
    rb.cwd = tmp_path
    proc = rb.run("--plugins-dir", str(OBSERVERS), "hello", "world")
    assert (proc.stdout, proc.stderr) == ("hello, world\n", "")
    assert "hello" in rb("--plugins-dir", str(OBSERVERS), "--help")


def test_plugins_command_lists_hooks_and_failures(rb, tmp_path):
    rb.cwd = tmp_path
    rows = {r["name"]: r for r in json.loads(rb("--plugins-dir", str(MISBEHAVING), "plugins", "--json"))}
    assert rows["hanging"]["actions"] == ["hang"]
    assert rows["syntax_error"]["error"].startswith("cannot load: SyntaxError")
