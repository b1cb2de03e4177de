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
A pending alert claimed by hand (`incident open --alert`) is marked so by the store (on PostgreSQL
by `runbook_claim_alert`, with its own 60 s on the database's clock): the process it names is its
maker's word, so no server lease holds it, only that time (on this host a process gone ends it
sooner).

An incident's timers are fired by one server at a time: the one whose lease holds the incident
(`IncidentLeases`, taken at its first tick, kept while its server lease runs, taken over once that
lease ends). Each take-over moves the incident's epoch on, and every write of a timer pass carries
the epoch it was taken at, checked in the write's own transaction: a server that stalled past its
lease (SIGSTOP, a long pause) and wakes finds its writes refused and stands down from the incident.

Lease times are set and compared on the store's clock: server leases in the statement itself,
the time a leaseless process is trusted ("until", lease_until) against the store's now. On
PostgreSQL that is the database's clock, so one host's clock running ahead never takes another's
work early; on SQLite (one host) this host's.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta

from runbook.engine.clock import iso, parse
from runbook.pluginapi import process_start
from runbook.store import lease_shift

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
    store, whose server leases decide for an owner on another host (on the store's clock)."""
    if not owner:
        return UNKNOWN
    if owner.get("by_hand") is True:
        # a claim made by hand (`incident open --alert`): the process it names is its maker's word
        # (on PostgreSQL a responder's, who could name a live server), so it holds only until its
        # own time; on this host a process gone ends it sooner
        if _ran_out(lease_until, now, leases):
            return GONE
        return _here(owner) if owner.get("host") == _host() else LIVE
    if owner.get("host") != _host():
        held = leases.lease_live(holder(owner), iso(now)) if leases is not None else None
        if held is not None:
            return LIVE if held else GONE
        return GONE if _ran_out(lease_until, now, leases) else LIVE
    return _here(owner)


def _ran_out(lease_until: datetime | None, now: datetime, leases) -> bool:
    """Whether the time a process without a server lease is trusted until has passed (none: it has)."""
    if lease_until is None:
        return True
    return (parse(leases.lease_clock(iso(now))) if leases is not None else now) >= lease_until


def _here(owner: dict) -> str:
    """LIVE or GONE for an owner on this host: its process, or in this process its operation."""
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


def lease_end(engine, seconds: float) -> str:
    """When a lease of `seconds` taken now ends, on the store's lease clock (PostgreSQL: the
    database's), as recorded with an intent ("until", lease_until): whoever compares it later
    compares it on that clock too (`status`)."""
    return lease_shift(engine.store.lease_clock(iso(engine.clock.now())), seconds)


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
        """Seconds between renewals: three tries before the lease runs out. A server dies at most
        one renewal after the last: its lease ends at most `seconds` after its death."""
        return self.seconds / 3

    def renew(self, first: bool = False) -> bool:
        """Renew; whether the lease was still running (False after the first: it ran out before
        this renewal, so other servers may have taken over work this one held)."""
        return self.store.renew_lease(self.holder, self.host, self.pid, self.seconds, iso(self.clock.now()),
                                      prune_after=PRUNE_AFTER.total_seconds() if first else None)

    def end(self) -> None:
        self.store.renew_lease(self.holder, self.host, self.pid, 0, iso(self.clock.now()))


def end_dead_leases(store, clock) -> list[str]:
    """End the running leases of servers on this host whose process is gone (killed: its pid gone
    or recycled), so what they held (their incidents' timers) is taken over now, not a lease
    later: a server restarted after a crash goes on at once. The holders ended."""
    host, now = _host(), iso(clock.now())
    ended = []
    for held, pid in store.running_leases(host, now):
        start = held.rsplit(" ", 1)[-1]
        if pid == os.getpid() or (isinstance(pid, int) and _running(pid) and str(process_start(pid)) == start):
            continue
        store.renew_lease(held, host, pid, 0, now)
        ended.append(held)
    return ended


def process_holder() -> str:
    """This process's holder name, as its `Lease` keeps it."""
    pid = os.getpid()
    return holder({"host": _host(), "pid": pid, "start": process_start(pid)})


def held_by(row: tuple[str, str, int] | None) -> str:
    """Who fires an incident's timers, from `store.incident_holder` ("" : nobody's lease holds them)."""
    if row is None:
        return ""
    return f"runbook process {row[2]} on {row[1]}"


class IncidentLeases:
    """Which incidents' timers this process fires: each taken in the store at its first tick and
    held while the process's lease runs (`Engine.tick`). The epochs taken are remembered (one read
    fewer a tick); a remembered epoch that another process moved on is found out at the next write,
    which the store refuses (`FencedError`), and is then forgotten (`lost`).

    `hold(engine)`: called before an incident is taken, makes sure this process's own lease runs
    (a face takes it when a tick first needs it); False when this process may not hold leases (a
    PostgreSQL role not granted them), and then it fires no timers. `skipped`: the incidents
    whose timers it left alone at their last tick (`store.incident_holder` says who fires them)."""

    def __init__(self, holder: str, hold=None):
        self.holder = holder
        self._hold = hold
        self._held: dict[str, int] = {}
        self.skipped: set[str] = set()
        self.may = True  # False once `hold` said this process may not hold leases
        self._lock = threading.Lock()

    def take(self, engine, incident: str) -> tuple[str, int] | None:
        """The fence (holder, epoch) this process's writes on `incident`'s timers carry, or None
        while another process's lease holds them (or this process may hold none)."""
        with self._lock:
            epoch = self._held.get(incident)
        if epoch is None:
            if self._hold is not None and not self._hold(engine):
                self.may = False
                epoch = None
            else:
                epoch = engine.store.take_incident(incident, self.holder, iso(engine.clock.now()))
            with self._lock:
                if epoch is None:
                    self.skipped.add(incident)
                    return None
                self._held[incident] = epoch
                self.skipped.discard(incident)
        return self.holder, epoch

    def release(self, engine, incident: str) -> None:
        """Let go of `incident`'s timers now (a face that stopped ticking it): the next process
        that ticks it takes it at once."""
        with self._lock:
            held = self._held.pop(incident, None)
        if held is not None:
            engine.store.release_incident(incident, self.holder)

    def holds(self, incident: str) -> bool:
        with self._lock:
            return incident in self._held

    def left_alone(self, incident: str) -> bool:
        """Whether this process left `incident`'s timers alone at its last tick."""
        with self._lock:
            return incident in self.skipped

    def lost(self, incident: str) -> None:
        with self._lock:
            self._held.pop(incident, None)

    def forget(self, keep) -> None:
        """Forget the epochs of incidents not in `keep` (no longer worked on)."""
        with self._lock:
            self._held = {i: e for i, e in self._held.items() if i in keep}
            self.skipped &= set(keep)
