"""A plugin that answers with the wrong type."""

from runbook.pluginapi import hookimpl


@hookimpl(tryfirst=True)
def get_flag(settings, name, drill):
    return "definitely on"
