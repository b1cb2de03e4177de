"""Response metrics from the log (TTA, TTM, TTR from open; per-step durations), the postmortem
export, and verification of the hash chain."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

from runbook.catalog.durations import format_duration, format_seconds
from runbook.engine import followup
from runbook.engine.integrity import chain
from runbook.engine.state import IncidentState
from runbook.engine.timers import deadlines
from runbook.store import GENESIS, StoredEvent
from runbook.text import markdown, one_line, shown

# (attribute on Metrics, the target it is measured against, short label)
MEASURES = (("tta", "acknowledge", "TTA"), ("ttm", "mitigate", "TTM"), ("ttr", "resolve", "TTR"))


@dataclass
class Metrics:
    tta: float | None
    ttm: float | None
    ttr: float | None
    highest_level: int
    targets: dict = field(default_factory=dict)  # name -> {"target": s, "actual": s|None, "breached": bool}
    steps: list = field(default_factory=list)  # {"step", "track", "attempt", "seconds", "outcome"}
    followup: float | None = None  # resolve to closed: the follow-up phase, never part of TTR

    def to_dict(self) -> dict:
        return asdict(self)

    def reached(self) -> dict[str, float | None]:
        """Seconds from open until each target was reached; resolving counts as mitigating."""
        return {"acknowledge": self.tta, "mitigate": self.ttm if self.ttm is not None else self.ttr,
                "resolve": self.ttr}


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def metrics(state: IncidentState, now: datetime | None = None) -> Metrics:
    """Metrics as of `now` (for targets not yet reached); a resolved incident is measured as of
    its resolution, so its figures never change afterwards."""
    out_followup = followup.seconds(state, now)
    if now is not None and state.resolved_at is not None:
        now = min(now, state.resolved_at)
    opened = state.opened_at
    out = Metrics(_seconds(opened, state.acknowledged_at), _seconds(opened, state.mitigated_at),
                  _seconds(opened, state.resolved_at), state.escalation.highest, followup=out_followup)
    actual = out.reached()
    for name, (deadline, _met) in deadlines(state).items():
        target = (deadline - opened).total_seconds()
        reached = actual[name]
        late = reached > target if reached is not None else (now is not None and now > deadline) or \
            name in state.breaches
        out.targets[name] = {"target": target, "actual": reached, "breached": bool(late)}
    for run in state.runs:
        out.steps.append({"step": run.step, "track": run.track, "attempt": run.attempt,
                          "seconds": _seconds(run.started_at, run.finished_at), "outcome": run.outcome})
    return out


def verify(events: list[StoredEvent]) -> tuple[bool, str]:
    """Check the hash chain alone; (True, summary) or (False, where the first broken link is).
    `engine.integrity` checks the summary, the snapshot and the chain key as well."""
    broken = chain(events)
    if broken:
        return False, broken
    return True, f"{len(events)} events, hash chain intact (last {(events[-1].hash if events else GENESIS)[:12]})"


def describe(event, titles: dict[str, str] | None = None) -> str:
    """One timeline line for an event (each record says its own), safe to show: on one line,
    control and bidi characters escaped (runbook.text). The log keeps the text as it was said.
    With `titles` (step_titles), a step the event names is named by its title, not its id."""
    record = event.record
    if titles and getattr(record, "title", None) and isinstance(getattr(record, "step", None), str):
        # a step event that recorded its step's title (a posted message): as it read then
        titles = {**titles, record.step: record.title}
    if titles:
        named = {name: f"“{titles[value]}”" for name in ("step", "next", "until")
                 if isinstance(value := getattr(record, name, None), str) and value in titles}
        if named:
            record = dataclasses.replace(record, **named)
    return one_line(record.describe())


def step_titles(state: IncidentState) -> dict[str, str]:
    """Each step's title as the incident's playbook snapshot words it, for the timeline, debrief,
    report and postmortem to name steps by. A field in a title stays a field (‹region›): these faces
    render the record, and today's parameter values may not be what the title read when the event
    happened (a posted message names its step by the title it recorded)."""
    from runbook.catalog.templates import for_people

    pb = state.playbook
    fields = [*pb.parameters, *pb.captures, *pb.roles]
    return {step.id: for_people(step.title, {}, fields, templated=pb.templated) or step.id for step in pb.steps}


def step_outputs(state: IncidentState) -> dict[str, dict]:
    """Each step that ran: its status, exit code and the tail of its output (last run); a command
    run in the background (background:) prints to a file instead: `output_file`, as its latest
    handle recorded it (None for the others)."""
    files = {e.record.step: e.record.output for e in state.events if e.type == "background_started"}
    return {sid: {"status": st.status, "attempt": st.attempt, "exit_code": st.exit_code, "output": st.output,
                  "output_file": files.get(sid)}
            for sid, st in state.steps.items() if st.ran}


def no_output(run: dict) -> str:
    """What a step's run that printed nothing here says instead: where a background command's output went."""
    return f"(in the background: output in {run['output_file']})" if run["output_file"] else "(no output)"


def posted_messages(state: IncidentState) -> list[dict]:
    """Every message communicate steps posted, oldest first, as recorded when it was posted."""
    return [{"step": e.record.step, "title": e.record.title, "text": e.record.text, "channel": e.record.channel,
             "audience": e.record.audience, "phase": e.record.phase, "status": e.record.status,
             "at": e.at.isoformat(), "by": e.actor, "written": e.record.written, "repeat": e.record.repeat,
             "seq": e.seq, "posted": True} for e in state.messages]


def background_commands(state: IncidentState) -> list[dict]:
    """Every background command started, as recorded: its handle, and its end once recorded."""
    from runbook.engine.events import shown_argv

    started: dict[tuple, dict] = {}
    for e in state.events:
        if e.type == "background_started":
            r = e.record
            started[(r.step, r.pid)] = {"step": r.step, "command": shown_argv(r.argv), "argv": list(r.argv),
                                        "pid": r.pid, "pgid": r.pgid, "host": r.host, "start": r.start,
                                        "output": r.output, "until": r.until, "started_at": e.at.isoformat(),
                                        "started_by": e.actor, "ended": None}
        elif e.type == "background_stopped" and (e.record.step, e.record.pid) in started:
            r = e.record
            started[(r.step, r.pid)]["ended"] = {"how": r.how, "exit_code": r.exit_code, "why": r.why,
                                                 "detail": r.detail, "at": e.at.isoformat(), "by": e.actor}
    return list(started.values())


def export_json(state: IncidentState) -> dict:
    return {"incident": state.id, "playbook": state.playbook.id, "title": state.title, "severity": state.severity,
            "severity_source": state.severity_source, "status": state.status, "drill": state.drill,
            "parameters": dict(state.parameters), "parameter_sources": dict(state.parameter_sources),
            "labels": dict(state.labels), "from_incident": state.from_incident,
            "handed_off_to": [{"step": step, "playbook": playbook, "incident": incident}
                              for step, playbook, incident in state.handoffs],
            "resolved_by_handoff": state.resolved_by_handoff,
            "handed_to": [dict(handed) for handed in state.handed_to],
            "metrics": metrics(state).to_dict(), "snapshot": state.snapshot.hash, "steps": step_outputs(state),
            "messages": posted_messages(state), "background": background_commands(state),
            "events": [e.to_dict() for e in state.events]}


def export_markdown(state: IncidentState) -> str:
    """The postmortem skeleton. Every text from the log or the playbook goes in through
    `runbook.text.markdown` (md): one line, controls escaped, and Markdown's active characters
    escaped, so a note can neither break a table nor add links, HTML or headings. The sections of
    the common templates (summary, impact, detection, responders, key moments, trigger, root cause,
    resolution, recovery, lessons, action items) are engine/postmortem.py's."""
    from runbook.engine import postmortem

    m = metrics(state)
    opened = state.opened_at
    md = markdown
    titles = step_titles(state)  # steps are named by title (their ids mean nothing to a reader)
    lines = [f"# Postmortem: {md(state.title)}", "",
             f"- Incident: {md(state.id)}" + (" (DRILL)" if state.drill else ""),
             f"- Playbook: {md(state.playbook.id)} (snapshot {state.snapshot.hash[:12]})",
             f"- Service: {md(state.service)}",
             f"- Severity: {md(state.severity)}",
             f"- Status: {state.status}" + (f" (by handoff to {md(state.resolved_by_handoff)})"
                                             if state.resolved_by_handoff else ""),
             f"- Opened: {opened:%Y-%m-%d %H:%M:%S} UTC by {md(state.opened_by)}",
             f"- Acknowledged by: {md(state.acknowledged_by or '—')}",
             *[f"- Handed off to: {md(h['to'])} (contact: {md(h['contact'])}; {h['at'][11:19]} by {md(h['by'])})"
               for h in state.handed_to],
             *[f"- Parameter {md(name)}: {md(value)} ({md(state.parameter_sources.get(name, '?'))})"
               for name, value in state.parameters.items()],
             *([f"- Alert labels: {md(', '.join(f'{k}={v}' for k, v in state.labels.items()))}"]
               if state.labels else []),
             "", *postmortem.head(state),
             "## Metrics", "", "| metric | actual | target | |", "|---|---|---|---|"]
    for attr, key, short in MEASURES:
        label, value = f"Time to {key} ({short})", getattr(m, attr)
        target = m.targets.get(key)
        verdict = "" if target is None else ("**breached**" if target["breached"]
                                             else "met" if value is not None else "")
        aim = format_seconds(target["target"]) if target else "—"
        lines.append(f"| {label} | {format_seconds(value)} | {aim} | {verdict} |")
    lines.append(f"| Highest escalation level | {m.highest_level or '—'} | | |")
    if state.playbook.followup is not None:
        lines.append(f"| Follow-up (after resolve, not in TTR) | {format_seconds(m.followup)} | | |")
    lines += ["", "### Steps", "", "| step | track | attempt | duration | outcome |", "|---|---|---|---|---|"]
    unfinished = "not done" if state.resolved else "in progress"  # nothing is in progress once resolved
    for run in m.steps:
        lines.append(f"| {md(titles.get(run['step'], run['step']))} | {md(run['track'])} | {run['attempt']} | "
                     f"{format_seconds(run['seconds'])} | {md(run['outcome'] or unfinished)} |")
    lines += ["", *followup.markdown_section(state), "## Degradations", ""]
    flips = [e for e in state.events if e.type == "flag_changed"]
    if flips:
        for e in flips:
            lines.append(f"- {e.at:%H:%M:%S} ({_rel(e.at, opened)}) {md(e.data['op'])} {md(e.data['degradation'])}: "
                         f"{md(describe(e, titles))}")
    else:
        lines.append("- none")
    lines += ["", "## Messages posted", ""]
    for e in state.messages:  # as posted: the record, never the template filled again today
        posted = e.record
        where = " · ".join(md(x) for x in (posted.channel, posted.audience) if x)
        to = f" to {where}" if where else ""
        lines += [f"- {e.at:%H:%M:%S} ({_rel(e.at, opened)}) {md(e.actor)}, "
                  f"step “{md(posted.title or titles.get(posted.step, posted.step))}”{to} ({posted.phase}"
                  + (f", announced as {posted.status}" if posted.status else "")
                  + (f", repeat {posted.repeat}" if posted.repeat else "") + "):",
                  "", *[f"  > {md(line)}" if line.strip() else "  >" for line in posted.text.strip().splitlines()], ""]
    if state.messages:
        lines.pop()  # the section's last blank line comes with the next heading
    else:
        lines.append("- none")
    lines += ["", "## Command output", ""]
    outputs = step_outputs(state)
    for step_id, run in outputs.items():
        code = "no exit code" if run["exit_code"] is None else f"exit {run['exit_code']}"
        text = shown(run["output"]).rstrip("\n") or shown(no_output(run))
        fence = "~" * max(3, 1 + max((len(m) for m in re.findall(r"~+", text)), default=0))
        lines += [f"“{md(titles.get(step_id, step_id))}” (attempt {run['attempt']}, {code}):", "", fence, text, fence,
                  ""]
    if not outputs:
        lines.append("- none")
    ran_on = background_commands(state)
    if ran_on:  # the section only where the playbook has background commands
        lines += ["", "## Background commands", ""]
    for run in ran_on:
        ended = run["ended"]
        until = f"until step “{md(titles.get(run['until'], run['until']))}” ended" if run["until"] else "until resolve"
        end = "still running when exported" if ended is None else \
            (f"{md(ended['how'])} at {ended['at'][11:19]}" + (f" with exit status {ended['exit_code']}"
                                                             if ended["exit_code"] is not None else "")
             + (f" ({md(ended['why'])})" if ended["why"] else "") + (f": {md(ended['detail'])}" if ended["detail"]
                                                                    else ""))
        lines.append(f"- “{md(titles.get(run['step'], run['step']))}”: {md(run['command'])} (pid {run['pid']} on "
                     f"{md(run['host'])}), started {run['started_at'][11:19]} by {md(run['started_by'])}, {until}; "
                     f"{end}; output in {md(run['output'])}")
    lines += ["", "## Notes", ""]
    lines += [f"- {n.at:%H:%M:%S} {md(n.actor)}: {md(n.data['text'])}" for n in state.notes] or ["- none"]
    lines += ["", *postmortem.key_moments(state, _rel, lambda e: describe(e, titles)),
              "## Timeline", "", "| time (UTC) | since open | who | what |", "|---|---|---|---|"]
    for e in state.events:
        lines.append(f"| {e.at:%Y-%m-%d %H:%M:%S} | {_rel(e.at, opened)} | {md(e.actor)} | {md(describe(e, titles))} |")
    lines += ["", *postmortem.tail(state)]
    return "\n".join(lines)


def _rel(at: datetime, opened: datetime) -> str:
    return "+" + format_duration(round((at - opened).total_seconds()))
