"""The one plugin manager: built-ins, entry points, a plugins directory, and isolation.

Every hook call goes through `PluginHost.call`, which calls each implementation itself (in
pluggy's order) so that one plugin raising, hanging past its timeout or returning the wrong
type becomes a `HookFailure` record instead of taking the caller down. Hook wrappers do not fit
that and are refused at load. Event observers run off the command path (`observe`, see
runbook.observers); their failures are handed back for the engine to record.

Environment:
  RUNBOOK_PLUGINS_DIR      directory of *.py plugins (default ./plugins)
  RUNBOOK_LOAD_PLUGINS     comma-separated allowlist of plugin names (entry points and files);
                           set but empty loads none. Built-ins always load.
  RUNBOOK_TRACE_PLUGINS    print every hook call, its plugin, result and time to stderr
  RUNBOOK_OBSERVER_GRACE   seconds an exiting command gives event observers (default 0.01)
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from runbook import hookspecs
from runbook.entry_points import installed_entry_points, load_entry_point
from runbook.errors import PluginError
from runbook.observers import Observers
from runbook.pluginapi import (
    ActionRequest,
    ActionResult,
    ChatCommand,
    ChatReceipt,
    FlagChange,
    FlagState,
    HookFailure,
    NotifyResult,
)
from runbook.settings import Settings

DEFAULT_PLUGINS = (
    "runbook.default_plugins.flag_file",
    "runbook.default_plugins.shell_action",
    "runbook.default_plugins.terminal_notifier",
    "runbook.default_plugins.pagerduty",
    "runbook.default_plugins.matrix",
    "runbook.default_plugins.subscriber_mail",
)
ENTRY_POINT_GROUP = "runbook"
FLAG_TIMEOUT = 10.0
ACTION_GRACE = 5.0  # extra time a plugin gets beyond the action's own timeout
OBSERVER_TIMEOUT = 5.0
# What each hook must return (None always means "not mine").
_RETURNS = {"set_flag": FlagChange, "restore_flag": FlagChange, "get_flag": FlagState,
            "run_action": ActionResult, "notify": NotifyResult, "notify_update": NotifyResult,
            "chat_announce": ChatReceipt, "chat_update": ChatReceipt, "chat_receive": list,
            "notify_subscriber": NotifyResult}


@dataclass
class LoadedPlugin:
    name: str
    source: str  # "built-in", "entry point", "plugins dir"
    location: str
    hooks: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "location": self.location, "hooks": self.hooks,
                "actions": self.actions, "error": self.error}


@dataclass
class HookCall:
    """What a hook call produced: (plugin, result) pairs in call order, and the failures."""

    hook: str
    results: list[tuple[str, object]] = field(default_factory=list)
    failures: list[HookFailure] = field(default_factory=list)

    @property
    def first(self):
        return self.results[0][1] if self.results else None


def allowlist() -> set[str] | None:
    raw = os.environ.get("RUNBOOK_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginHost:
    def __init__(self, settings: Settings | None = None, entry_points: bool = True):
        self.settings = settings or Settings.from_environment()
        self.pm = pluggy.PluginManager("runbook")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[LoadedPlugin] = []
        self.trace = bool(os.environ.get("RUNBOOK_TRACE_PLUGINS"))
        self._actions: dict[str, tuple[str, str]] = {}
        allowed = allowlist()
        for module_name in DEFAULT_PLUGINS:
            self._register(importlib.import_module(module_name), module_name.rsplit(".", 1)[1],
                           "built-in", module_name)
        if entry_points:
            self._load_entry_points(allowed)
        if self.settings.plugins_dir:
            self._load_directory(Path(self.settings.plugins_dir), allowed)
        self._collect_actions()
        self._observers = Observers(self.pm.hook.event_appended.get_hookimpls(), self.settings, OBSERVER_TIMEOUT,
                                    self._trace if self.trace else None)

    # loading -------------------------------------------------------------------------------

    def _register(self, module, name: str, source: str, location: str) -> None:
        if self.pm.has_plugin(name):
            self.plugins.append(LoadedPlugin(name, source, location, error=f"a plugin named {name} is already loaded"))
            return
        try:
            self.pm.register(module, name=name)
        except Exception as exc:  # pluggy validates hook names and signatures
            self.plugins.append(LoadedPlugin(name, source, location, error=f"cannot register: {exc}"))
            return
        callers = self.pm.get_hookcallers(module) or []
        wrappers = sorted(caller.name for caller in callers for impl in caller.get_hookimpls()
                          if impl.plugin is module and (impl.wrapper or impl.hookwrapper))
        if wrappers:
            # Each implementation is called on its own so that one plugin cannot take another
            # down; a wrapper, which runs around the others in one call, has no place in that.
            self.pm.unregister(module)
            self.plugins.append(LoadedPlugin(name, source, location, error=(
                f"cannot register: hook wrappers are not supported (wrapper=True or hookwrapper=True on "
                f"{', '.join(wrappers)}); implement {'it' if len(wrappers) == 1 else 'them'} with a plain @hookimpl")))
            return
        self.plugins.append(LoadedPlugin(name, source, location, sorted(caller.name for caller in callers)))

    def _load_entry_points(self, allowed) -> None:
        for name, value in installed_entry_points(ENTRY_POINT_GROUP):
            if allowed is not None and name not in allowed:
                continue
            try:
                module = load_entry_point(value)
            except Exception as exc:
                self.plugins.append(LoadedPlugin(name, "entry point", value, error=f"cannot load: {exc}"))
                continue
            self._register(module, name, "entry point", value)

    def _load_directory(self, directory: Path, allowed) -> None:
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.py")):
            name = path.stem
            if name.startswith("_") or (allowed is not None and name not in allowed):
                continue
            module_name = f"runbook_plugins_dir.{name}"
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            except BaseException as exc:  # a plugin file may even call sys.exit() at import
                sys.modules.pop(module_name, None)
                self.plugins.append(LoadedPlugin(name, "plugins dir", str(path),
                                                 error=f"cannot load: {type(exc).__name__}: {exc}"))
                continue
            self._register(module, name, "plugins dir", str(path))

    def _collect_actions(self) -> None:
        for plugin in self.plugins:
            if plugin.error or "register_actions" not in plugin.hooks:
                continue
            found: list[tuple[str, str]] = []
            module = self.pm.get_plugin(plugin.name)
            failure = self._invoke(plugin.name, module.register_actions, "register_actions",
                                   {"register": lambda name, summary="": found.append((name, summary))},  # noqa: B023 - called now
                                   OBSERVER_TIMEOUT)[1]
            if failure:
                plugin.error = failure.message
                continue
            for name, summary in found:
                self._actions.setdefault(name, (plugin.name, summary))
                plugin.actions.append(name)

    # calling -------------------------------------------------------------------------------

    def _invoke(self, plugin: str, function, hook: str, kwargs: dict, timeout: float):
        """Call one implementation in a worker thread; (result, failure or None)."""
        box: dict = {}

        def target():
            try:
                box["result"] = function(**kwargs)
            except BaseException as exc:  # SystemExit and KeyboardInterrupt from a plugin included
                box["error"] = exc

        start = time.monotonic()
        worker = threading.Thread(target=target, name=f"runbook-plugin-{plugin}-{hook}", daemon=True)
        worker.start()
        worker.join(timeout)
        elapsed = time.monotonic() - start
        if worker.is_alive():
            failure = HookFailure(plugin, hook, f"did not return within {timeout:g}s", "timeout")
            self._trace(hook, plugin, failure.message, elapsed)
            return None, failure
        if "error" in box:
            exc = box["error"]
            failure = HookFailure(plugin, hook, f"{type(exc).__name__}: {exc}")
            self._trace(hook, plugin, failure.message, elapsed)
            return None, failure
        result = box.get("result")
        expected = _RETURNS.get(hook)
        if result is not None and expected and not isinstance(result, expected):
            failure = HookFailure(plugin, hook, f"returned {type(result).__name__}, expected {expected.__name__}")
            self._trace(hook, plugin, failure.message, elapsed)
            return None, failure
        self._trace(hook, plugin, result, elapsed)
        return result, None

    def _trace(self, hook, plugin, outcome, elapsed) -> None:
        if self.trace:
            sys.stderr.write(f"runbook plugin trace: {hook} -> {plugin}: {outcome!r} ({elapsed * 1000:.1f} ms)\n")

    def call(self, hook: str, timeout: float, only=None, **kwargs) -> HookCall:
        """Call every implementation of `hook` in pluggy's order (or only those of the plugins
        named in `only`), isolating each one; a hook declared `firstresult` stops at the first
        answer that is not None."""
        caller = getattr(self.pm.hook, hook)
        firstresult = caller.spec.opts.get("firstresult", False)
        outcome = HookCall(hook)
        for impl in reversed(caller.get_hookimpls()):  # wrappers are refused at load (_register)
            if only is not None and impl.plugin_name not in only:
                continue
            args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
            result, failure = self._invoke(impl.plugin_name, impl.function, hook, args, timeout)
            if failure:
                outcome.failures.append(failure)
            elif result is not None:
                outcome.results.append((impl.plugin_name, result))
                if firstresult:
                    break
        return outcome

    # the hooks, as the engine and CLI use them ---------------------------------------------

    def set_flag(self, name: str, value, drill: bool = False) -> tuple[FlagChange, list[HookFailure]]:
        call = self.call("set_flag", FLAG_TIMEOUT, settings=self.settings, name=name, value=value, drill=drill)
        return self._required(call, f"could not set flag {name}")

    def set_flag_share(self, name: str, value, share: int, by: str, normal=None, drill: bool = False):
        call = self.call("set_flag_share", FLAG_TIMEOUT, settings=self.settings, name=name, value=value,
                         share=share, by=by, normal=normal, drill=drill)
        return self._required(call, f"could not set a share of flag {name} (no flag backend does staged shares)")

    def get_flag(self, name: str, drill: bool = False) -> tuple[FlagState, list[HookFailure]]:
        call = self.call("get_flag", FLAG_TIMEOUT, settings=self.settings, name=name, drill=drill)
        return self._required(call, f"could not read flag {name}")

    def restore_flag(self, name: str, previous: FlagState | None, drill: bool = False):
        call = self.call("restore_flag", FLAG_TIMEOUT, settings=self.settings, name=name,
                         previous=previous, drill=drill)
        return self._required(call, f"could not restore flag {name}")

    def read_metrics(self, check, at=None, timeout=None):
        """A prometheus: check read from the Prometheus of the settings (RUNBOOK_PROMETHEUS_URL)."""
        from runbook.metric_checks import evaluate, source_for

        return evaluate(check, source_for(self.settings.prometheus_url), at=at, timeout=timeout)

    def run_action(self, request: ActionRequest) -> tuple[ActionResult, list[HookFailure]]:
        """Never raises: a missing handler or a failing plugin is a failed ActionResult."""
        if request.action is not None and request.action not in self._actions:
            known = ", ".join(sorted(self._actions)) or "none"
            return ActionResult(False, f"no plugin provides action '{request.action}' (loaded actions: {known})"), []
        call = self.call("run_action", request.timeout + ACTION_GRACE, settings=self.settings, request=request)
        if call.first is not None:
            return call.first, call.failures
        what = " ".join(request.argv) if request.argv else request.action
        reason = "; ".join(f.format() for f in call.failures) or "no plugin handled it"
        return ActionResult(False, f"could not run {what}: {reason}"), call.failures

    def notify(self, notice, only=None) -> tuple[list[NotifyResult], list[HookFailure]]:
        """Every notifier's result (each naming its plugin), or only those of the plugins in `only`
        (a retry goes to the plugin that failed, not to everyone again)."""
        call = self.call("notify", self.settings.notify_timeout, only=only, settings=self.settings, notice=notice)
        return [result._replace(plugin=name) for name, result in call.results], call.failures

    def notify_update(self, update, only=None) -> tuple[list[NotifyResult], list[HookFailure]]:
        """Tell the pagers in `only` (the plugins that opened alerts) about an acknowledge or resolve."""
        call = self.call("notify_update", self.settings.notify_timeout, only=only, settings=self.settings,
                         update=update)
        return [result._replace(plugin=name) for name, result in call.results], call.failures

    def chat_send(self, message, announce: bool):
        """Post `message` through the first chat plugin that takes it: (ChatReceipt or None, failures)."""
        call = self.call("chat_announce" if announce else "chat_update", self.settings.notify_timeout,
                         settings=self.settings, message=message)
        return call.first, call.failures

    def chat_receive(self) -> tuple[list, list[HookFailure]]:
        """The commands every chat plugin received since it was last asked."""
        call = self.call("chat_receive", self.settings.notify_timeout, settings=self.settings)
        commands = [c for _, each in call.results for c in (each or []) if isinstance(c, ChatCommand)]
        return commands, call.failures
    def notify_subscriber(self, message) -> tuple[NotifyResult | None, list[HookFailure]]:
        """The first plugin's result for a SubscriberMessage (None: no plugin sends its kind)."""
        call = self.call("notify_subscriber", self.settings.notify_timeout, settings=self.settings, message=message)
        name, result = call.results[0] if call.results else (None, None)
        return (result._replace(plugin=name) if result is not None else None), call.failures

    def observe(self, incident: str, event) -> None:
        """Hand an event just appended to `incident` to every event_appended observer; returns at
        once (they run on their own threads, see runbook.observers)."""
        self._observers.observe(incident, event)

    def take_observer_failures(self) -> list[tuple[str, HookFailure]]:
        """(incident, failure) for each observer that raised or overran its timeout since the last
        call, for the caller to record; never waits."""
        return self._observers.take_failures()

    def drain(self, grace: float | None = None) -> list[tuple[str, HookFailure]]:
        """At exit: wait at most `grace` seconds (default: settings.observer_grace) for observers
        still working, then (incident, failure) for what failed or did not finish."""
        return self._observers.drain(self.settings.observer_grace if grace is None else grace)

    def register_commands(self, cli) -> list[HookFailure]:
        return self.call("register_commands", OBSERVER_TIMEOUT, cli=cli).failures

    def actions(self) -> dict[str, tuple[str, str]]:
        """Action name -> (plugin, summary) for every action a loaded plugin declared."""
        return dict(self._actions)

    @staticmethod
    def _required(call: HookCall, message: str):
        if call.first is None:
            raise PluginError(message, call.failures)
        return call.first, call.failures


def unknown_actions(catalog, host: PluginHost) -> list:
    """Warnings for `uses:` names in playbooks that no loaded plugin provides."""
    from runbook.catalog.problems import WARNING
    from runbook.catalog.validate import did_you_mean

    known = host.actions()
    problems = []
    for doc in catalog.of_kind("Playbook"):
        for step in doc.model.steps:
            if step.uses and step.uses not in known:
                listed = ", ".join(sorted(known)) or "none"
                problems.append(doc.problem(step.path + ("uses",), f"no loaded plugin provides action "
                                            f"'{step.uses}' (loaded actions: {listed})"
                                            f"{did_you_mean(step.uses, known)}; see `runbook plugins`",
                                            severity=WARNING, code="action"))
    return problems
