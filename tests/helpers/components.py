"""The real programs the tests drive (PostgreSQL, Prometheus, Alertmanager, Chromium, tmux) are
part of the test command: a test that needs a missing one fails, saying how to install it, so a
run without them cannot pass by skipping. RUNBOOK_TESTS_SKIP_MISSING=1 turns those failures into
skips, for a machine that cannot have them; CI never sets it."""

from __future__ import annotations

import os

import pytest

OPT_OUT = "RUNBOOK_TESTS_SKIP_MISSING"


def missing(component: str, install: str) -> None:
    """End the test: `component` is not here, and `install` says how to get it."""
    message = f"{component} is not installed: {install} (or set {OPT_OUT}=1 to skip the tests that need it)"
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)
