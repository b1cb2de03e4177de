"""Automated actions: started (the intent) and finished (the outcome)."""

from __future__ import annotations

import signal
from dataclasses import field

from runbook.engine.events.base import EventRecord, record


@record("action_started")
class ActionStarted(EventRecord):
    step: str
    argv: list | None = None
    action: str | None = None
    params: dict = field(default_factory=dict)
    owner: dict | None = None  # the process running it (engine/owner.py)
    lease_until: str | None = None
    pidfile: str | None = None  # where the action's process group is written, to kill it if orphaned
    cwd: str | None = None
    env: dict = field(default_factory=dict)
    check: dict | None = None  # a prometheus: check read instead: {query, expect}
    attached: str = ""  # an interactive command: where it ran attached ("terminal" or "tmux window")

    def fold(self, state, event):
        state.actions_pending[self.step] = event

    def describe(self):
        if self.check is not None:
            return f"checking prometheus: {self.check.get('query')} expect {self.check.get('expect')}"
        where = f" attached to the responder's {self.attached}" if self.attached else ""
        return f"running {shown_argv(self.argv) if self.argv else self.action}{where}"

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        if not self.attached:  # stored as before commands could run attached
            del data["attached"]
        return data


@record("action_finished")
class ActionFinished(EventRecord):
    step: str
    ok: bool
    summary: str
    exit_code: int | None = None
    output: str = ""
    duration: float = 0.0
    handler: str = ""
    outcome: str | None = None  # a prometheus: check's reading: holds, not-yet or broken

    def fold(self, state, event):
        state.actions_pending.pop(self.step, None)
        step = state.steps.get(self.step)
        if step is not None:
            step.output, step.exit_code, step.ran = self.output, self.exit_code, True

    def describe(self):
        if self.outcome is not None:
            said = {"holds": "holds", "not-yet": "NOT MET", "broken": "CHECK BROKEN"}.get(self.outcome, self.outcome)
            return f"prometheus check {said}: {self.summary}"
        return f"action {'ok' if self.ok else 'FAILED'}: {self.summary}"


@record("background_started")
class BackgroundStarted(EventRecord):
    """A background command (background:) started: its handle, what the incident later signals.
    `start` is the kernel's start time of `pid` (/proc/PID/stat), so a pid reused by another
    process is never signalled; `until`: the step whose end stops it (None: resolve does)."""

    step: str
    argv: list
    pid: int
    pgid: int
    host: str
    start: str | None
    output: str
    until: str | None = None

    def fold(self, state, event):
        state.background[self.step] = event

    def describe(self):
        ends = f"until step {self.until} ends" if self.until else "until resolve"
        return (f"started in the background: {shown_argv(self.argv)} (pid {self.pid} on {self.host}, {ends}); "
                f"output in {self.output}")


BACKGROUND_ENDS = ("stopped", "killed", "exited", "gone", "elsewhere")


@record("background_stopped")
class BackgroundStopped(EventRecord):
    """A background command's end, as it was found: stopped (SIGTERM), killed (SIGKILL after the
    grace), exited by itself (`exit_code` when runbook was its parent), gone (ended unseen, or its
    pid reused: not signalled), or elsewhere (it runs on another host: not signalled). `why`: what
    asked for the stop (the until step, resolve, a responder)."""

    step: str
    pid: int
    how: str
    exit_code: int | None = None
    why: str = ""
    detail: str = ""

    def fold(self, state, event):
        started = state.background.get(self.step)
        if started is not None and started.record.pid == self.pid:
            del state.background[self.step]

    def describe(self):
        said = {"stopped": "stopped", "killed": "killed (it outlived SIGTERM)",
                "exited": _ended(self.exit_code),
                "gone": "already gone", "elsewhere": "NOT signalled"}.get(self.how, self.how)
        why = f" ({self.why})" if self.why else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"background command of {self.step} (pid {self.pid}) {said}{why}{detail}"


def _ended(code: int | None) -> str:
    """How a command runbook reaped ended: a negative status is a signal's (someone's kill, from
    another terminal too), not an exit by itself."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"ended by {name} (status {code})"
    return "exited by itself" + (f" with status {code}" if code is not None else "")


def shown_argv(argv) -> str:
    """The exact command, quoted as a shell would need it (the argv itself never meets a shell)."""
    from runbook.catalog.templates import command_line

    return command_line(argv)
