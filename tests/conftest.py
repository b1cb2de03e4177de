from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def fixture_catalog() -> Path:
    """A copy of the shipped catalog (playbooks/, drills/) for tests that show it, so editing a
    shipped example never breaks them."""
    return ROOT / "tests" / "fixtures" / "catalog"


def pytest_configure(config):
    """Keep runbook's schema cache inside the test run, never in the user's home."""
    import os
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="runbook-test-cache-")
