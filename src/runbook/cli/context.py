"""What every command needs: the catalog's paths, the incident database, the plugins and the engine.

One `Context` is made by the root command and handed to every subcommand (`click.pass_obj`);
each piece is made on first use, so a command pays only for what it touches. It is the
composition root (`runbook.runtime.Runtime`) with what needs click's context: closing what it
made when the command ends.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from runbook.cli.output import echo
from runbook.runtime import DEFAULT_CATALOG, Runtime, load_catalog

if TYPE_CHECKING:
    from runbook.catalog.loader import Catalog
    from runbook.engine import Engine
    from runbook.service import EngineService
    from runbook.store import IncidentStore

__all__ = ["CATALOG_HELP", "DEFAULT_CATALOG", "Context", "load_catalog"]

CATALOG_HELP = (f"Directory or file of documents; repeatable. Default: ./{DEFAULT_CATALOG[0]} and "
                f"./{DEFAULT_CATALOG[1]} where they exist. Env: RUNBOOK_CATALOG (paths separated by '{os.pathsep}').")


class Context(Runtime):
    """The session of one command line, with the store and engine it closes when the command ends."""

    def __init__(self, catalogs: tuple[str, ...], plugins_dir: str | None = None, db: str | None = None):
        super().__init__(catalogs, plugins_dir, db)
        self._store = None
        self._engine = None
        self._service = None

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

    def engine_service(self, catalog: bool = False, lanes: bool = False) -> EngineService:
        """The engine service on this command's engine (`engine(catalog)`), closed when the command
        ends. `lanes`: a lane (engine, connection, thread) for each kind of work, for a face that
        keeps running (`runbook serve`); else every lane is this command's one engine and
        connection, run inline on the command's thread (made once, for the whole command): a
        one-shot command opens no connection and starts no thread it does not use, and its
        errors (and Ctrl-C) are as they were without the service."""
        engine = self.engine(catalog)
        if lanes:
            service = self.service(engine)
        elif self._service is None:
            service = self._service = self.service(engine, one_lane=True)
        else:
            return self._service
        click.get_current_context().call_on_close(service.close)
        return service

    def load(self, warn: bool = True) -> Catalog:
        catalog = load_catalog(self.catalog_paths())
        if warn and catalog.errors:
            echo(f"runbook: warning: the catalog has {len(catalog.errors)} error(s); invalid documents "
                       "are left out (run `runbook validate`)", err=True)
        return catalog
