"""Who owns a side effect in flight, and whether that owner is still there.

A flag change or an action records its owner with its intent: the host, the process id, the
process's start time (so a recycled pid is not mistaken for the owner) and a token for the one
operation. Settling a change after a crash (`reconcile`, `resume`, `resolve`) touches it only
when its owner is gone: on this host, the process is dead or the operation has ended in this
very process; on another host, once the lease recorded with the intent has run out. A change
whose owner is alive is never settled under it.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime

from runbook.pluginapi import process_start

LIVE, GONE, UNKNOWN = "live", "gone", "unknown"

_lock = threading.Lock()
_in_flight: set[str] = set()  # tokens of operations this process is carrying out now


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host() -> str:
    # socket (and selectors with it) is imported here, not at the top: every command imports
    # the engine, and only those that carry out or settle a side effect ask for the host
    import socket

    return socket.gethostname()


def claim() -> dict:
    """A new owner record for an operation this process is starting; `release` it when done."""
    token = uuid.uuid4().hex
    with _lock:
        _in_flight.add(token)
    pid = os.getpid()
    return {"host": _host(), "pid": pid, "start": process_start(pid), "token": token}


def release(owner: dict | None) -> None:
    if owner:
        with _lock:
            _in_flight.discard(owner.get("token"))


def status(owner: dict | None, lease_until: datetime | None, now: datetime) -> str:
    """LIVE, GONE, or UNKNOWN (an intent written before owners were recorded)."""
    if not owner:
        return UNKNOWN
    if owner.get("host") != _host():
        return LIVE if lease_until is None or now < lease_until else GONE
    pid = owner.get("pid")
    if pid == os.getpid() and owner.get("start") == process_start(pid):
        with _lock:
            return LIVE if owner.get("token") in _in_flight else GONE
    if not isinstance(pid, int) or not _running(pid):
        return GONE
    start = process_start(pid)
    if start is not None and owner.get("start") is not None and start != owner["start"]:
        return GONE  # the pid was recycled
    return LIVE


def describe(owner: dict | None) -> str:
    if not owner:
        return "an earlier runbook"
    return f"process {owner.get('pid')} on {owner.get('host')}"
