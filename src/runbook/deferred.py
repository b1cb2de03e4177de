"""The plugin host, made on first use.

Loading the plugins (pluggy, the built-in plugins, the entry-point scan and the plugins
directory) is a tenth of a fresh process's start-up, and most commands that make an engine only
read: `runbook resume` of an incident with nothing half-done shows its first frame without
needing a single hook. The engine holds a `DeferredHost` instead of the host; the first
attribute anything asks of it (a flag to flip, an event for the observers, a page) loads the
plugins, once, whichever thread asks first. Draining observers at exit loads nothing when
nothing was loaded, since no observer can be working.
"""

from __future__ import annotations

import threading


class DeferredHost:
    """Stands in for the PluginHost that `make()` returns, and makes it when first used."""

    def __init__(self, make):
        self._make = make
        self._host = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._host is not None

    @property
    def host(self):
        if self._host is None:
            with self._lock:
                if self._host is None:
                    self._host = self._make()
        return self._host

    def __getattr__(self, name):  # only for what this class does not define itself
        return getattr(self.host, name)

    def take_observer_failures(self) -> list:
        return self._host.take_observer_failures() if self._host is not None else []

    def drain(self, grace: float | None = None) -> list:
        return self._host.drain(grace) if self._host is not None else []
