"""What the tests that run real servers (runbook serve, Alertmanager, a browser) share."""

from __future__ import annotations

import time

DEADLINE = 30.0


def wait_for(check, what: str, deadline: float = DEADLINE):
    """Poll `check` until it returns something true, for real processes to get there (never a
    timed assertion: the deadline is generous and only ends a hung test)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}")
