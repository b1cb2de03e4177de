"""Wait steps: when each poll falls due (interval, backoff, cap), how long one poll may run, and what
a poll's result means: the condition holds, not yet, or the check itself broke.

Pure: the engine's effects and timers ask; nothing here runs or records anything.
"""

from __future__ import annotations

from runbook.catalog.models import Step
from runbook.engine import expectations

DEFAULT_POLL = 30  # seconds between polls when a wait says no every:
DEFAULT_POLL_TIMEOUT_CAP = 60  # without poll_timeout:, one poll may run as long as the interval, at most this
HOLDS, NOT_YET, BROKEN = "holds", "not-yet", "broken"
NO_DATA = "no-data"  # a prometheus: query that answered with no series: its own outcome (on_no_data:)
FIRST_BROKEN_STATUS = 126  # the shell's "cannot execute" (126), "not found" (127), signals (128+n), ssh's 255


def interval(step: Step, n: int) -> float:
    """Seconds between poll n-1 (or the start, for n = 1) and poll n."""
    every = step.every or DEFAULT_POLL
    if step.backoff == 1:
        return every
    grown = every * step.backoff ** (n - 1)
    return min(grown, step.max_every) if step.max_every else grown


def offset(step: Step, n: int) -> float:
    """Seconds from the wait's start to poll n (0 for n = 0)."""
    if step.backoff == 1:
        return (step.every or DEFAULT_POLL) * n
    total, k = 0.0, 0
    while k < n:
        k += 1
        step_seconds = interval(step, k)
        if step.max_every and step_seconds >= step.max_every:  # capped from here on: the rest is arithmetic
            return total + step.max_every * (n - k + 1)
        total += step_seconds
    return total


def polls_within(step: Step, elapsed: float) -> int:
    """How many polls fall due within `elapsed` seconds of the start (poll n due at offset(n) <= elapsed)."""
    if step.backoff == 1:
        return int(elapsed // (step.every or DEFAULT_POLL))
    n = 0
    while offset(step, n + 1) <= elapsed:
        n += 1
        if step.max_every and interval(step, n) >= step.max_every:
            return n + int((elapsed - offset(step, n)) // step.max_every)
    return n


def poll_timeout(step: Step) -> float:
    """How long one poll may run: poll_timeout:, else the interval capped at a minute (as before)."""
    if step.poll_timeout:
        return step.poll_timeout
    return min(step.every or DEFAULT_POLL, DEFAULT_POLL_TIMEOUT_CAP)


def classify(step: Step, result, failures=()) -> str:
    """What a poll's result means.

    Exit status 0 (an action that says ok) holds. For a run: command, a status listed under
    broken: is broken; one listed under not_yet: is not yet, and with not_yet: given every other
    status is broken. Without lists, 1-125 are "not yet" and 126-255 broken (cannot execute, not
    found, killed by a signal, ssh's 255); no status at all (it timed out, or could not run) is
    broken. A uses: action that answered "not ok" is not yet (its status is its own, an HTTP code
    say); one that could not run (no plugin provides it, its plugin raised or hung) is broken.
    """
    if step.expect is not None and result is not None and not failures and result.handler \
            and result.handler != "runbook":
        judged = expectations.judge(step, result.ok, result.exit_code, result.output, result.summary)
        if judged.answered:  # the command answered: what it printed says whether the condition holds
            return HOLDS if judged.passed else NOT_YET
    elif result is not None and result.ok:
        return HOLDS
    if result is None or failures or not result.handler or result.handler == "runbook":
        return BROKEN
    if step.run is None:
        return NOT_YET
    code = result.exit_code
    if code is None:
        return BROKEN
    if code in step.broken:
        return BROKEN
    if step.not_yet is not None:
        return NOT_YET if code in step.not_yet else BROKEN
    return NOT_YET if 0 < code < FIRST_BROKEN_STATUS else BROKEN


def means(step: Step, outcome: str) -> str:
    """What a poll's outcome means for the wait: "no data" is what the step's on_no_data: says
    (holds, not-yet, or broken as before it existed); every other outcome means itself."""
    return (step.on_no_data or BROKEN) if outcome == NO_DATA else outcome


def seen(step: Step, summary: str, exit_code: int | None, captured: dict) -> str:
    """What a poll saw, in words for the timeline: the values its captures read ("allocations=2"),
    then a prometheus: reading (its summary is the value and the condition), a command's exit
    status, or a uses: action's own summary (its status means what the action says)."""
    parts = [f"{name}={value}" for name, value in captured.items()]
    if step.run is None:
        parts.append(summary)
    elif exit_code is not None:
        parts.append(f"exit status {exit_code}")
    return "; ".join(part for part in parts if part)
