"""Who owns a side effect in flight, and whether that owner is still there.

A flag change, an action or a pending alert records its owner with its intent: the host, the
process id, the process's start time (so a recycled pid is not mistaken for the owner) and a
token for the one operation. Settling a change after a crash (`reconcile`, `resume`, `resolve`,
a server's timer pass) touches it only when its owner is gone: on this host, the process is
dead or the operation has ended in this very process; on another host, once its lease has run
out. A server holds a lease in the store that it renews (`Lease`; `runbook serve --lease`), and
that lease alone decides for everything the server owns; a process that holds none (a CLI
command, the TUI) is trusted until the lease recorded with its intent runs out. An owner on
another host with neither is gone. A change whose owner is alive is never settled under it.

Hosts compare lease times on their own clocks: keep them in step (NTP) to well within a lease.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta

from runbook.engine.clock import iso, parse
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
    """This machine's name in owner records: RUNBOOK_HOSTNAME, else the host name (containers
    that share one host name and pid 1 need RUNBOOK_HOSTNAME set apart)."""
    given = os.environ.get("RUNBOOK_HOSTNAME", "").strip()
    if given:
        return given
    # socket (and selectors with it) is imported here, not at the top: every command imports
    # the engine, and only those that carry out or settle a side effect ask for the host
    import socket

    return socket.gethostname()


def host() -> str:
    """This machine's name as owner records and background command handles give it."""
    return _host()


def holder(owner: dict) -> str:
    """The process an owner record names, as its lease is kept: host, pid and start time."""
    return f"{owner.get('host')} {owner.get('pid')} {owner.get('start')}"


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


def status(owner: dict | None, lease_until: datetime | None, now: datetime, leases=None) -> str:
    """LIVE, GONE, or UNKNOWN (an intent written before owners were recorded). `leases`: the
    store, whose server leases decide for an owner on another host."""
    if not owner:
        return UNKNOWN
    if owner.get("host") != _host():
        held = leases.lease_expiry(holder(owner)) if leases is not None else None
        if held is not None:
            return LIVE if now < parse(held) else GONE
        return LIVE if lease_until is not None and now < lease_until else GONE
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


DEFAULT_LEASE = 10.0  # seconds; `runbook serve --lease`
PRUNE_AFTER = timedelta(days=7)  # a lease that ended this long ago is forgotten


class Lease:
    """This process's lease on the work it owns, kept in `store` (a connection of its own: a
    renewal never waits behind a slow tick). Renew it well within `seconds` (`due` says how
    often); `end` it when the work is finished, so others take over at once."""

    def __init__(self, store, clock, seconds: float = DEFAULT_LEASE):
        pid = os.getpid()
        self.store, self.clock, self.seconds = store, clock, seconds
        self.host, self.pid = _host(), pid
        self.holder = holder({"host": self.host, "pid": pid, "start": process_start(pid)})

    @property
    def due(self) -> float:
        """Seconds between renewals: three tries before the lease runs out."""
        return self.seconds / 3

    def renew(self, first: bool = False) -> None:
        now = self.clock.now()
        self.store.renew_lease(self.holder, self.host, self.pid, iso(now + timedelta(seconds=self.seconds)),
                               iso(now), prune_before=iso(now - PRUNE_AFTER) if first else None)

    def end(self) -> None:
        now = iso(self.clock.now())
        self.store.renew_lease(self.holder, self.host, self.pid, now, now)
