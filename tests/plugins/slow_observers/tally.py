"""A quick observer beside the hung one: it keeps up, because each observer has its own worker."""

import threading

from runbook.pluginapi import hookimpl

SEEN = []
CAUGHT_UP = threading.Event()  # set when it has seen the note "caught up"


@hookimpl
def event_appended(event):
    SEEN.append(event.seq)
    if event.type == "note_added" and event.data["text"] == "caught up":
        CAUGHT_UP.set()
