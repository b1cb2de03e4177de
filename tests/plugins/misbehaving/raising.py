"""A plugin that raises from every hook it implements."""

from runbook.pluginapi import hookimpl


@hookimpl(tryfirst=True)
def set_flag(settings, name, value, drill):
    raise RuntimeError("flag service is down")


@hookimpl
def notify(settings, notice):
    raise ConnectionError("pager gateway refused the connection")


@hookimpl
def event_appended(settings, event):
    raise ValueError("observer broke")
