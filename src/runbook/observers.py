"""Event observers, off the command path.

The engine hands every appended event to `Observers.observe`, which only queues it: each
observing plugin has its own queue and daemon worker thread, so an observer that is slow or
never returns delays neither the command nor the other observers, and never keeps the process
alive. The workers never touch the database (the engine's connection belongs to the engine's
thread): what went wrong is kept as HookFailure records, which the engine takes after each
command (`take_failures`) and at exit (`drain`) and appends itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from runbook.pluginapi import HookFailure

HOOK = "event_appended"


class _Observer:
    """One observing plugin: the deliveries waiting for it and the one it is working on."""

    def __init__(self, plugin: str, function, argnames: tuple):
        self.plugin = plugin
        self.function = function
        self.argnames = argnames
        self.waiting: deque = deque()  # (incident, event) in the order they were appended
        self.current = None  # the (incident, event) being observed now
        self.since = 0.0
        self.reported = False  # the current delivery already has a failure record
        self.thread: threading.Thread | None = None


class Observers:
    def __init__(self, impls, settings, timeout: float, trace=None):
        """`impls`: pluggy's implementations of event_appended; `timeout`: how long one event
        may take before it is recorded as overdue; `trace(hook, plugin, outcome, seconds)`."""
        self.timeout = timeout
        self._trace = trace
        self._lock = threading.Condition()
        self._failures: list[tuple[str, HookFailure]] = []
        self._last_queued = 0.0
        self._settings = settings
        self._observers = [_Observer(impl.plugin_name, impl.function, impl.argnames) for impl in reversed(impls)]

    def observe(self, incident: str, event) -> None:
        """Queue `event` of `incident` for every observer; returns at once."""
        if not self._observers:
            return
        with self._lock:
            self._last_queued = time.monotonic()
            for observer in self._observers:
                observer.waiting.append((incident, event))
                if observer.thread is None:
                    observer.thread = threading.Thread(target=self._work, args=(observer,), daemon=True,
                                                       name=f"runbook-observer-{observer.plugin}")
                    observer.thread.start()
            self._lock.notify_all()

    def take_failures(self) -> list[tuple[str, HookFailure]]:
        """(incident, failure) for every observer that raised since the last call, and for every
        one that has been on the same event longer than the timeout (once per event)."""
        if not self._observers:
            return []
        now = time.monotonic()
        with self._lock:
            for observer in self._observers:
                if observer.current is not None and not observer.reported and now - observer.since > self.timeout:
                    self._fail(observer, observer.current, f"still observing {_describe(observer.current[1])} "
                               f"after {self.timeout:g}s; its later events wait until it returns", "timeout")
            taken, self._failures = self._failures, []
        return taken

    def drain(self, grace: float) -> list[tuple[str, HookFailure]]:
        """Give the observers until `grace` seconds after the last event was queued (so at most
        `grace` from now), then return what failed plus a record for each delivery still
        running or never started (those are dropped: the process is about to exit, and its
        daemon workers with it)."""
        if not self._observers:
            return []
        with self._lock:
            deadline = self._last_queued + grace
            while any(o.current is not None or o.waiting for o in self._observers):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            for observer in self._observers:
                if observer.current is not None and not observer.reported:
                    self._fail(observer, observer.current,
                               f"did not finish observing {_describe(observer.current[1])} before exit", "timeout")
                busy = f": still busy with {_describe(observer.current[1])}" if observer.current else ""
                while observer.waiting:
                    delivery = observer.waiting.popleft()
                    self._fail(observer, delivery, f"did not start observing {_describe(delivery[1])} before exit"
                               f"{busy}", "timeout")
            taken, self._failures = self._failures, []
        return taken

    # the workers ----------------------------------------------------------------------------

    def _work(self, observer: _Observer) -> None:
        while True:
            with self._lock:
                while not observer.waiting:
                    self._lock.wait()
                delivery = observer.current = observer.waiting.popleft()
                observer.since, observer.reported = time.monotonic(), False
            error = None
            offered = {"settings": self._settings, "event": delivery[1]}
            try:
                observer.function(**{name: offered[name] for name in observer.argnames if name in offered})
            except BaseException as exc:  # SystemExit and KeyboardInterrupt from a plugin included
                error = exc
            elapsed = time.monotonic() - observer.since
            with self._lock:
                if error is not None and not observer.reported:
                    self._fail(observer, delivery, f"{type(error).__name__}: {error}, while observing "
                               f"{_describe(delivery[1])}")
                observer.current = None
                self._lock.notify_all()
            if self._trace is not None:
                outcome = f"{type(error).__name__}: {error}" if error is not None else None
                self._trace(HOOK, observer.plugin, outcome, elapsed)

    def _fail(self, observer: _Observer, delivery, message: str, kind: str = "error") -> None:
        """Keep a failure record (caller holds the lock), unless the event it concerns itself
        reports an observer's failure: recording that would start an endless chain."""
        if delivery is observer.current:
            observer.reported = True
        incident, event = delivery
        if _reports_observer_failure(event):
            return
        self._failures.append((incident, HookFailure(observer.plugin, HOOK, message, kind)))


def _describe(event) -> str:
    seq, kind = getattr(event, "seq", None), getattr(event, "type", None)
    if seq is None:
        return "an event"
    return f"event {seq} ({kind})" if kind else f"event {seq}"


def _reports_observer_failure(event) -> bool:
    return getattr(event, "type", None) == "plugin_error" and (getattr(event, "data", None) or {}).get("hook") == HOOK
