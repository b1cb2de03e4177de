"""What every command needs: the catalog's paths, the incident database, the plugins and the engine.

One `Context` is made by the root command and handed to every subcommand (`click.pass_obj`);
each piece is made on first use, so a command pays only for what it touches.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runbook.cli.output import echo
from runbook.errors import UsageError

if TYPE_CHECKING:
    from runbook.catalog.loader import Catalog
    from runbook.engine import Engine
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import IncidentStore

__all__ = ["CATALOG_HELP", "DEFAULT_CATALOG", "Context", "load_catalog"]

DEFAULT_CATALOG = ("playbooks", "drills")
CATALOG_HELP = (f"Directory or file of documents; repeatable. Default: ./{DEFAULT_CATALOG[0]} and "
                f"./{DEFAULT_CATALOG[1]} where they exist. Env: RUNBOOK_CATALOG (paths separated by '{os.pathsep}').")


def load_catalog(paths, **options) -> Catalog:
    """The catalog loader, imported on first use: resuming an incident runs from its snapshot
    and never reads YAML, so the TUI and headless commands start without PyYAML and the schemas."""
    from runbook.catalog.loader import load_catalog as load

    return load(paths, **options)


class Context:
    """The catalog paths, database and plugins directory given to `runbook`, what is made from
    them, and the store and engine it closes when the command ends."""

    def __init__(self, catalogs: tuple[str, ...], plugins_dir: str | None = None, db: str | None = None):
        self.catalogs = tuple(catalogs)
        self.plugins_dir = plugins_dir
        self.db = db
        self._host = None
        self._hosting = threading.Lock()
        self._store = None
        self._engine = None

    def store(self) -> IncidentStore:
        from runbook.store import open_store

        if self._store is None:
            self._store = open_store(self.db)
            click.get_current_context().find_root().call_on_close(self._store.close)
        return self._store

    def engine(self, catalog: bool = False) -> Engine:
        """The engine on the incident database; `catalog` loads the playbooks (needed to open).
        It is closed (observers' failures recorded) before the store, when the command ends."""
        if self._engine is None:
            self._engine = self.new_engine(self.store())
            click.get_current_context().call_on_close(self._engine.close)
        if catalog and self._engine.catalog is None:
            self._engine.catalog = load_catalog(self.catalog_paths())
        return self._engine

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
        engine.catalog_loader = lambda: load_catalog(self.catalog_paths())
        return engine

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

    def load(self, warn: bool = True) -> Catalog:
        catalog = load_catalog(self.catalog_paths())
        if warn and catalog.errors:
            echo(f"runbook: warning: the catalog has {len(catalog.errors)} error(s); invalid documents "
                       "are left out (run `runbook validate`)", err=True)
        return catalog
