"""Built-in notifier: rings the terminal bell and returns a record for the incident timeline."""

from __future__ import annotations

import sys

from runbook.pluginapi import NotifyResult, hookimpl


@hookimpl(trylast=True)
def notify(settings, notice):
    names = ", ".join(f"{r.name} ({r.via})" if r.via else r.name for r in notice.recipients) or "nobody"
    stream = sys.stderr
    if stream.isatty():
        stream.write("\a")
        stream.flush()
    drill = "[DRILL] " if notice.drill else ""
    return NotifyResult("terminal", True, f"{drill}level {notice.level} paged: {names}")
