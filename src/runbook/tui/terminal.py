"""Interactive commands (interactive: true) from the TUI: the app suspends, the command has the
terminal, the app comes back when it ends; inside tmux it opens in a new window instead and the
app stays on screen."""

from __future__ import annotations

import os

from textual.app import SuspendNotSupported

from runbook.default_plugins.shell_action import AttachedTerminal, TmuxWindow
from runbook.pluginapi import ActionResult


class SuspendedApp:
    """Runs the command with `app` suspended. Called by the engine off the app's thread: the
    suspension and the run happen on the app's thread, which waits for the command."""

    where = "terminal"

    def __init__(self, app):
        self.app = app

    def __call__(self, request) -> ActionResult:
        return self.app.call_from_thread(self._run, request)

    def _run(self, request) -> ActionResult:
        try:
            with self.app.suspend():
                return AttachedTerminal()(request)
        except SuspendNotSupported:
            return ActionResult(False, "not run: this terminal cannot hand itself over (start runbook in a real "
                                       "terminal, or inside tmux to open a window)", handler="terminal")


def attached_runner(app):
    return TmuxWindow() if os.environ.get("TMUX") else SuspendedApp(app)
