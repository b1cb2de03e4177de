"""Background commands (background: on an action step): a port-forward kept open while other
steps run, a repair left running in its own session.

The step's run: command is started in a process group of its own (shell_action), its output to
a file under the incident's data directory, and its handle recorded (background_started: pid,
process group, host, the kernel's start time of the pid). The step is then done. The incident
stops it, SIGTERM to the group and SIGKILL after a grace, once the step its `until:` names is
done or skipped, at resolve (a handoff that resolves included), or when a responder asks; each
end is recorded (background_stopped) as it was found. What is stopped is read from the log: the
handles started and not stopped yet (state.background), never from a summary.

A handle on another host whose until step ended is left running in the log for a runbook on its
host to stop (this one cannot signal it); resolve records it as not signalled.

Every pass (`settle`: after a command that ends a step or resolves, on each tick, on resume)
also notices a command that ended by itself: with its exit status when this process started it
(and so reaps it), else as gone. A pid whose start time is not the recorded one belongs to
someone else now and is never signalled; a handle on another host is never signalled from here.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from runbook.engine import metrics
from runbook.engine import owner as owners
from runbook.engine.effects import SYSTEM
from runbook.engine.events import BackgroundStopped, Event
from runbook.engine.state import DONE, SKIPPED, IncidentState
from runbook.errors import CommandError, NotFoundError

if TYPE_CHECKING:
    from runbook.engine.engine import Engine

GRACE = 5.0  # seconds a command has to end after SIGTERM before its group is killed
RUNNING, EXITED, GONE, ELSEWHERE = "running", "exited", "gone", "elsewhere"
# one settling at a time in this process: the lanes' engines (commands, ticks) would otherwise race
# to reap one exit, and the loser would record as "gone" what the winner saw exit with a status
_settling = threading.RLock()
# the events after which a handle may be due to stop (an until step ended, the incident resolved;
# a handle recorded after its until step ended or the incident resolved while it started)
ENDINGS = frozenset({"step_completed", "step_skipped", "resolved", "background_started"})


def running(state: IncidentState) -> list[Event]:
    """The background_started events not stopped yet, oldest first."""
    return sorted(state.background.values(), key=lambda e: e.seq)


def stop_reason(state: IncidentState, handle: Event) -> str:
    """Why `handle` must be stopped now ("" while it may run on)."""
    if state.resolved:
        if state.resolved_by_handoff:  # to a playbook: the incident that carries on
            return f"handed off to {state.resolved_by_handoff}"
        if state.handed_to and state.handed_to[-1]["resolves"]:  # to someone who is not a playbook
            return f"handed off to {state.handed_to[-1]['to']}"
        return "resolved"
    until = handle.record.until
    step = state.steps.get(until) if until else None
    if step is not None and step.status in (DONE, SKIPPED):
        title = metrics.step_titles(state).get(until, until)
        return f"“{title}” {'done' if step.status == DONE else 'skipped'}"
    return ""


# the exit statuses of leaders this process reaped while their groups ran on, by (pid, start time)
_left: dict[tuple[int, str | None], int] = {}


def probe(handle) -> tuple[str, int | None]:
    """What became of a handle's process: RUNNING, EXITED (with its exit status: this process is
    its parent and reaped it), GONE (ended, its pid free or someone else's) or ELSEWHERE."""
    if handle.host != owners.host():
        return ELSEWHERE, None
    try:
        pid, status = os.waitpid(handle.pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not this process's child (another runbook started it), or reaped here already
    else:
        if pid:
            _left[(handle.pid, handle.start)] = os.waitstatus_to_exitcode(status)
    if (handle.pid, handle.start) in _left:
        # its leader ended here; what it left in its group (`cmd &`) still runs as the command, and
        # the leader's exit status is kept for the record of the group's end
        if _group_alive(handle.pgid):
            return RUNNING, None
        return EXITED, _left.pop((handle.pid, handle.start))
    state, start = _stat(handle.pid)
    if state is None or state == "Z":
        # its leader ended; children it left in its group still run as the command (a pid in use
        # as a process group is never given to another process)
        return (RUNNING if _group_alive(handle.pgid) else GONE), None
    if handle.start is not None and start != handle.start:
        return GONE, None  # the pid was reused by another process: never signalled
    return RUNNING, None


def settle(engine: Engine, incident: str) -> list[Event]:
    """Stop the handles due to stop, and record those that ended by themselves."""
    with _settling:
        return _settle(engine, incident)


def _settle(engine: Engine, incident: str) -> list[Event]:
    state = engine.state(incident)
    out: list[Event] = []
    for handle in running(state):
        why = stop_reason(state, handle)
        if why and (state.resolved or handle.record.host == owners.host()):
            out += _stop(engine, incident, handle, why, SYSTEM)
            continue
        if why:  # its until step ended, but it runs on another host: left for the runbook there to stop
            continue
        how, code = probe(handle.record)
        if how in (EXITED, GONE):
            detail = "" if how == EXITED else "it ended while no runbook was watching, or its pid is another's now"
            out += _record(engine, incident, handle, how, code, "", detail, SYSTEM)
    return out


def stop(engine: Engine, incident: str, actor: str, step: str, pid: int | None = None) -> list[Event]:
    """A responder stops step `step`'s background command by hand; `pid`: the one a dialog showed
    (the step's command started again since is another, and is not stopped unseen)."""
    state = engine.state(incident)
    handle = state.background.get(step)
    if handle is None:
        if step not in state.steps:
            raise NotFoundError(f"playbook {state.playbook.id} has no step '{step}'")
        known = f"running: {', '.join(state.background)}" if state.background else "none is running"
        raise CommandError(f"step '{step}' has no background command running; {known}")
    if pid is not None and handle.record.pid != pid:
        raise CommandError(f"not stopped: step '{step}''s background command is another one now (pid "
                           f"{handle.record.pid}, started {handle.at:%H:%M:%S} UTC by {handle.actor}); look again")
    with _settling:
        events = _stop(engine, incident, handle, f"stopped by {actor}", actor)
    if not events:  # another lane or process recorded its end first (the runbook that started it reaps it)
        raise CommandError(f"not recorded: {_ended_meanwhile(engine.state(incident), handle)}")
    return events


def _ended_meanwhile(state: IncidentState, handle: Event) -> str:
    """What the log says of a handle's end that someone else recorded while this process stopped it."""
    ends = [e for e in state.events if e.type == "background_stopped"
            and (e.record.step, e.record.pid) == (handle.record.step, handle.record.pid) and e.seq > handle.seq]
    if not ends:
        return f"step '{handle.record.step}''s background command ended meanwhile"
    end = ends[-1]
    return f"its end was recorded meanwhile, {end.at:%H:%M:%S} UTC by {end.actor}: {metrics.describe(end)}"


def _stop(engine: Engine, incident: str, handle: Event, why: str, actor: str) -> list[Event]:
    record = handle.record
    how, code = probe(record)
    detail = ""
    if how == RUNNING:
        how, code = terminate(record)
    elif how == ELSEWHERE:
        detail = f"it runs on {record.host}: stop it there (kill -TERM -- -{record.pgid})"
    elif how == GONE:
        detail = "not signalled: its pid is free or another process's now"
    return _record(engine, incident, handle, how, code, why, detail, actor)


def terminate(record) -> tuple[str, int | None]:
    """SIGTERM to the command's process group; SIGKILL to what is left of it after GRACE."""
    try:
        os.killpg(record.pgid, signal.SIGTERM)
    except ProcessLookupError:
        return GONE, None
    except PermissionError:
        return GONE, None  # not ours to signal: someone else's group now
    code = None
    deadline = time.monotonic() + GRACE
    how = "stopped"
    code = _left.pop((record.pid, record.start), None)
    while True:
        code = _reap(record.pid, code)
        if not _group_alive(record.pgid):
            return how, code
        if time.monotonic() >= deadline:
            if how == "killed":
                return how, code  # unkillable (stuck in the kernel): recorded as signalled
            how, deadline = "killed", time.monotonic() + 1.0
            try:
                os.killpg(record.pgid, signal.SIGKILL)
            except ProcessLookupError:
                return "stopped", code
        time.sleep(0.02)  # the group's end cannot be waited on; a short poll within the grace


def _reap(pid: int, code: int | None) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return code
    return os.waitstatus_to_exitcode(status) if done else code


def _record(engine: Engine, incident: str, handle: Event, how: str, code, why: str, detail: str,
            actor: str) -> list[Event]:
    step = handle.record.step

    def build(state):
        # only the handle that was read: another lane or process may have recorded its end already
        now = state.background.get(step)
        if now is None or now.seq != handle.seq:
            return []
        return [BackgroundStopped(step, handle.record.pid, how, code, why, detail)]
    return engine.command(incident, actor, build)


def _stat(pid: int) -> tuple[str | None, str | None]:
    """The state letter and the start time of `pid` from /proc (None, None when it is not running)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None, None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode(), (fields[19].decode() if len(fields) > 19 else None)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
