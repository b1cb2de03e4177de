"""A plain flag backend beside the wrapping plugin: it loads and answers."""

from runbook.pluginapi import FlagChange, FlagState, hookimpl


@hookimpl(tryfirst=True)
def set_flag(settings, name, value, drill):
    return FlagChange(name, FlagState(False), FlagState(True, value), "plain")
