import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CATALOG = ROOT / "tests" / "fixtures" / "catalog"


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def fixture_catalog() -> Path:
    """A directory holding playbooks/ and drills/: a copy of the shipped catalog that tests driving
    the CLI run on, so editing a shipped example never breaks them."""
    return FIXTURE_CATALOG


@pytest.fixture
def fixture_env(repo_root) -> dict:
    """The environment of a `runbook` run in the fixture catalog's directory: the example plugins
    load from the repository's plugins/ as they would from its root, no other catalog is read, and
    the command runs the runbook these tests import (a relative PYTHONPATH would not follow the
    change of directory)."""
    import runbook

    source = str(Path(runbook.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "RUNBOOK_PLUGINS_DIR": str(repo_root / "plugins"), "PYTHONPATH": path}
    env.pop("RUNBOOK_CATALOG", None)
    return env


@pytest.fixture
def in_fixture_catalog(fixture_catalog, fixture_env, monkeypatch) -> Path:
    """Run in-process commands from the fixture catalog's directory, with `fixture_env`."""
    monkeypatch.chdir(fixture_catalog)
    monkeypatch.delenv("RUNBOOK_CATALOG", raising=False)
    monkeypatch.setenv("RUNBOOK_PLUGINS_DIR", fixture_env["RUNBOOK_PLUGINS_DIR"])
    return fixture_catalog


@pytest.fixture
def rb(fixture_catalog, fixture_env, tmp_path):
    """`rb(*args, expect=0)`: `runbook ARGS` in a child process in the fixture catalog's directory,
    acting as ana, with its database and flag file under tmp_path; returns what it printed
    (`rb.run` returns the finished process; `rb.inproc(...)` runs it inside this process, for a
    test that patches it). A test module's own `rb` fixture may take this one and set its `cwd`,
    `catalogs` or `env` (tests/helpers/cli.py)."""
    from helpers.cli import Runbook

    env = {**fixture_env, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_USER": "ana"}
    return Runbook(env, cwd=fixture_catalog)


def pytest_configure(config):
    """Keep runbook's schema cache and data inside the test run, never in the user's home."""
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="runbook-test-cache-")
    # ...and what incidents write (a background command's output) out of it too
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="runbook-test-data-")


# --- the storage backends -------------------------------------------------------------------
# Tests of the store and the engine take `backend`: "sqlite" (a file under tmp_path) and
# "postgres" (a schema of its own in one throw-away cluster per test session, started on first
# use and stopped at the end; see tests/helpers/pg_cluster.py).

BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def pg_cluster():
    from helpers import pg_cluster as cluster_module
    from helpers.components import missing

    if cluster_module.binaries() is None:
        missing("PostgreSQL", "run ./scripts/test (it installs the Debian package postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg", "pip install -e '.[test]'")
    cluster = cluster_module.start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_location(backend, tmp_path, request) -> str:
    """Where a test's incident store is: a SQLite file, or a PostgreSQL URL of a fresh schema."""
    if backend == "sqlite":
        return str(tmp_path / "db.sqlite")
    return request.getfixturevalue("pg_cluster").new_schema()


@pytest.fixture
def open_test_store(store_location):
    """Open (and at the end close) stores at `store_location`: `open_test_store(**options)`."""
    from runbook.store import open_store

    opened = []

    def make(**options):
        opened.append(open_store(store_location, **options))
        return opened[-1]

    yield make
    for store in opened:
        store.close()

