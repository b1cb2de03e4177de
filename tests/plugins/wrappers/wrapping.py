"""A plugin with hook wrappers, new style and old style, which runbook refuses at load."""

from runbook.pluginapi import hookimpl


@hookimpl(wrapper=True)
def set_flag(settings, name, value, drill):
    return (yield)


@hookimpl(hookwrapper=True)
def notify(settings, notice):
    yield
