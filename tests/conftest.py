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


def pytest_configure(config):
    """Keep runbook's schema cache inside the test run, never in the user's home."""
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="runbook-test-cache-")
