"""How pages and pager updates that failed for a passing reason (HTTP 429 or 5xx, a network
error, a plugin timing out) are tried again: 1 s, 2 s, 4 s ... after each failure, at most 60 s
apart, 12 attempts in all (about six minutes), then given up, which the timeline says."""

from __future__ import annotations

from datetime import timedelta

ATTEMPTS = 12
CAP = 60  # seconds
# An intent with no outcome (a page recorded but never sent, an acknowledge or resolve the
# pagers were never told about: a crash) is sent again by a tick after this, or at once by
# `resume`; another process may still be in the middle of it before then.
STALE_INTENT = timedelta(seconds=60)


def delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1-based) before the next."""
    return min(2 ** (attempt - 1), CAP)


def after_failure(attempt: int, retryable: bool) -> str:
    """What the timeline says comes next after attempt `attempt` failed."""
    if not retryable:
        return ""
    if attempt >= ATTEMPTS:
        return f", gave up after {attempt} attempts"
    return f", retry {attempt} in {delay(attempt)}s"
