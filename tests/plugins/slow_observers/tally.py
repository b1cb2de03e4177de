"""A quick observer beside the hung one: it keeps up, because each observer has its own worker."""

import threading

from runbook.pluginapi import hookimpl

SEEN = []
CAUGHT_UP = threading.Event()  # set when it has seen an event whose type is "caught_up"


@hookimpl
def event_appended(event):
    SEEN.append(event.seq)
    if event.type == "caught_up":
        CAUGHT_UP.set()
