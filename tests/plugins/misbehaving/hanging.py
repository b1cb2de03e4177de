"""A plugin that never returns from run_action or notify."""

import threading

from runbook.pluginapi import hookimpl

_never = threading.Event()


@hookimpl
def register_actions(register):
    register("hang", "never returns")


@hookimpl
def run_action(settings, request):
    if request.action == "hang":
        _never.wait()


@hookimpl
def notify(settings, notice):
    _never.wait()
