"""The one composition root: settings -> store -> plugins -> engine -> service.

Every face starts here: the CLI (its click `Context` is a `Runtime`), the TUI, `runbook serve`
and drills. A `Runtime` holds what `runbook` was given (catalog paths, database, plugins
directory) and makes each piece on first use, so a command pays only for what it touches.
It imports neither click nor textual.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook.catalog.loader import Catalog
    from runbook.engine import Engine
    from runbook.plugins import PluginHost
    from runbook.service import EngineService
    from runbook.settings import Settings
    from runbook.store import IncidentStore

DEFAULT_CATALOG = ("playbooks", "drills")


def load_catalog(paths, **options) -> Catalog:
    """The catalog loader, imported on first use: resuming an incident runs from its snapshot
    and never reads YAML, so the TUI and headless commands start without PyYAML and the schemas."""
    from runbook.catalog.loader import load_catalog as load

    return load(paths, **options)


class Runtime:
    """The catalog paths, database and plugins directory given to `runbook`, and what is made
    from them, each on first use."""

    def __init__(self, catalogs: tuple[str, ...] = (), plugins_dir: str | None = None, db: str | None = None):
        self.catalogs = tuple(catalogs)
        self.plugins_dir = plugins_dir
        self.db = db
        self._host = None
        self._hosting = threading.Lock()

    def spec(self) -> tuple:
        """What makes the same runtime in another process."""
        return self.catalogs, self.plugins_dir, self.db

    def new_engine(self, store: IncidentStore | None = None) -> Engine:
        """An engine of its own, on `store` or a new connection to the database, for a caller that
        closes it (and its store) itself; callable from any thread."""
        from runbook.deferred import DeferredHost
        from runbook.engine import Engine, SystemClock
        from runbook.store import open_store

        # The plugins load when the engine first needs one (runbook/deferred.py); their settings
        # are read now, so that a bad RUNBOOK_* value stops the command before it writes anything.
        store = store or open_store(self.db)
        self.settings()
        engine = Engine(store, SystemClock(), DeferredHost(self.host))
        retried = request_id()
        if retried:
            engine.requests, engine.retried = retried, True
        engine.catalog_loader = lambda: load_catalog(self.catalog_paths())
        return engine

    def service(self, engine: Engine | None = None, one_lane: bool = False) -> EngineService:
        """The engine service on `engine` (its caller's to close; the service closes the
        connections it opens for its other lanes), else on an engine and store of its own, made
        when the service is first used (off a screen's thread, say), that it closes itself.
        `one_lane`: every lane is that engine, run on the caller's thread (a one-shot command).
        Its timers fire only under incidents' leases (EngineService.lease_timers). The caller
        closes the service."""
        from runbook.service import EngineService

        if engine is None:
            service = EngineService(self.new_engine, own=True, one_lane=one_lane)
        else:
            service = EngineService(engine, own=False, one_lane=one_lane)
        service.lease_timers()  # every face fires an incident's timers only under its lease
        return service

    def settings(self, **overrides) -> Settings:
        from runbook.settings import Settings

        return Settings.from_environment(plugins_dir=self.plugins_dir, **overrides)

    def host(self, **overrides) -> PluginHost:
        """The plugins, loaded once (`overrides`: a host of its own with those settings). The TUI
        loads them on its main thread after the first frame; a worker may ask at the same time."""
        from runbook.plugins import PluginHost

        if overrides:
            self._host = PluginHost(self.settings(**overrides))
            return self._host
        with self._hosting:
            if self._host is None:
                self._host = PluginHost(self.settings())
            return self._host

    def catalog_paths(self) -> list[str]:
        """The catalog's paths: --catalog/RUNBOOK_CATALOG, else ./playbooks and ./drills where they
        exist. A UsageError (exit 2) when a path given does not exist, or neither default does:
        a catalog that is not there must not read as an empty one."""
        from pathlib import Path

        from runbook.errors import UsageError

        if self.catalogs:
            missing = [p for p in self.catalogs if not Path(p).exists()]
            if missing:
                raise UsageError(f"no catalog at {', '.join(missing)}: no such file or directory; pass --catalog "
                                 "DIR or set RUNBOOK_CATALOG to a directory or file of documents")
            return list(self.catalogs)
        found = [p for p in DEFAULT_CATALOG if Path(p).is_dir()]
        if not found:
            raise UsageError(f"no catalog here: ./{DEFAULT_CATALOG[0]} does not exist; run runbook from a "
                             "directory that has one, pass --catalog DIR or set RUNBOOK_CATALOG")
        return found


def request_id() -> str | None:
    """RUNBOOK_REQUEST: the request id a lost connection's message named, set on the command run
    again so that what its first run recorded is not recorded twice."""
    import re

    from runbook.errors import UsageError

    value = os.environ.get("RUNBOOK_REQUEST", "")
    if value and not re.fullmatch(r"[0-9a-f]{16}", value):
        raise UsageError("RUNBOOK_REQUEST must be the 16 hex digits a lost connection's message named "
                         "(RUNBOOK_REQUEST=…); unset it for a new command")
    return value or None
