"""An observer that never returns until the test releases it (a threading.Event nobody sets)."""

import threading

from runbook.pluginapi import hookimpl

STARTED = threading.Event()  # set once it is inside event_appended
RELEASE = threading.Event()


@hookimpl
def event_appended(settings, event):
    STARTED.set()
    RELEASE.wait()
