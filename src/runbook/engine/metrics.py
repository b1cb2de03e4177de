"""Response metrics from the log (TTA, TTM, TTR from open; per-step durations), the postmortem
export, and verification of the hash chain."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from runbook.catalog.durations import format_duration, format_seconds
from runbook.engine.state import IncidentState
from runbook.engine.timers import deadlines
from runbook.store import GENESIS, StoredEvent, event_hash


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
    if now is not None and state.resolved_at is not None:
        now = min(now, state.resolved_at)
    opened = state.opened_at
    out = Metrics(_seconds(opened, state.acknowledged_at), _seconds(opened, state.mitigated_at),
                  _seconds(opened, state.resolved_at), state.escalation.highest)
    actual = out.reached()
    for name, (deadline, met) in deadlines(state).items():
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
    """Check the hash chain; (True, summary) or (False, where the first broken link is)."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, 1):
        if event.seq != expected_seq:
            return False, f"event {expected_seq} is missing (found event {event.seq} after event {expected_seq - 1})"
        if event.prev_hash != prev:
            return False, f"event {event.seq} ({event.type}) does not link to event {event.seq - 1}: its previous-hash differs"
        digest = event_hash(event.incident, event.seq, event.ts, event.actor, event.type, event.data, event.prev_hash)
        if digest != event.hash:
            return False, f"event {event.seq} ({event.type} at {event.ts}) was altered: its content does not match its hash"
        prev = event.hash
    return True, f"{len(events)} events, hash chain intact (last {prev[:12]})"


def describe(event) -> str:
    """One timeline line for an event."""
    d, t = event.data, event.type
    if t == "opened":
        return f"opened {d['playbook']} as {d['severity']}" + (" (DRILL)" if d.get("drill") else "")
    if t == "step_started":
        return f"step {d['step']} started" + (f" (attempt {d['attempt']})" if d["attempt"] > 1 else "")
    if t == "step_completed":
        return f"step {d['step']} done" + (f": {d['outcome']}" if d.get("outcome") else "")
    if t == "step_skipped":
        return f"step {d['step']} skipped: {d['reason']}"
    if t == "step_failed":
        return f"step {d['step']} failed: {d['reason']}"
    if t == "decision_made":
        return f"{d['step']}: chose '{d['label']}' → {d['next']}"
    if t == "track_finished":
        return f"track {d['track']} finished"
    if t == "approval_granted":
        return f"step {d['step']} approved (as {d['role']})"
    if t == "escalated":
        names = ", ".join(r["name"] for r in d["recipients"])
        return f"escalation level {d['level']}" + (f" (round {d['round'] + 1})" if d["round"] else "") + f": {names}"
    if t == "notified":
        sent = ", ".join(f"{r['channel']}{'' if r['delivered'] else ' FAILED'}" for r in d["results"]) or "no channel"
        return f"level {d['level']} notified via {sent}"
    if t == "degradation_started":
        return f"{'applying' if d['op'] == 'apply' else 'restoring'} degradation {d['degradation']}"
    if t == "flag_changed":
        old = d["old"]["value"] if isinstance(d.get("old"), dict) and d["old"].get("exists") else "(absent)"
        return f"flag {d['flag']}: {json.dumps(old)} → {json.dumps(d['new'])}"
    if t in ("degradation_applied", "degradation_restored"):
        return f"degradation {d['degradation']} {'applied' if t.endswith('applied') else 'restored'}"
    if t == "degradation_failed":
        return f"degradation {d['degradation']} FAILED: {d['reason']}"
    if t == "severity_changed":
        return f"severity {d['from']} → {d['to']}" + (f" ({d['reason']})" if d.get("reason") else "")
    if t == "note_added":
        return f"note: {d['text']}"
    if t == "reminder_fired":
        missed = f" ({d['missed']} missed)" if d.get("missed") else ""
        return f"reminder: {d['message']}{missed}"
    if t == "target_breached":
        return f"{d['target']} target breached"
    if t == "action_started":
        return f"running {' '.join(d['argv']) if d.get('argv') else d.get('action')}"
    if t == "action_finished":
        return f"action {'ok' if d['ok'] else 'FAILED'}: {d['summary']}"
    if t == "check_polled":
        return f"poll {d['poll']} of {d['step']}: {'ok' if d['ok'] else 'not yet'} — {d['summary']}"
    if t == "plugin_error":
        return f"plugin {d['plugin']} failed in {d['hook']}: {d['message']}"
    if t == "action_item_added":
        return f"action item: {d['text']}" + (f" (owner {d['owner']})" if d.get("owner") else "")
    if t == "drill_inject":
        return f"inject: {d.get('message', '')}"
    return t.replace("_", " ")


def export_json(state: IncidentState) -> dict:
    return {"incident": state.id, "playbook": state.playbook.id, "title": state.title, "severity": state.severity,
            "status": state.status, "drill": state.drill, "metrics": metrics(state).to_dict(),
            "snapshot": state.snapshot.hash, "events": [e.to_dict() for e in state.events]}


def export_markdown(state: IncidentState) -> str:
    m = metrics(state)
    opened = state.opened_at
    lines = [f"# Postmortem: {state.title}", "",
             f"- Incident: {state.id}" + (" (DRILL)" if state.drill else ""),
             f"- Playbook: {state.playbook.id} (snapshot {state.snapshot.hash[:12]})",
             f"- Service: {state.service}",
             f"- Severity: {state.severity}",
             f"- Status: {state.status}",
             f"- Opened: {opened:%Y-%m-%d %H:%M:%S} UTC by {state.opened_by}",
             f"- Acknowledged by: {state.acknowledged_by or '—'}",
             "", "## Summary", "", "_What happened, who was affected, for how long._", "",
             "## Metrics", "", "| metric | actual | target | |", "|---|---|---|---|"]
    for attr, key, short in MEASURES:
        label, value = f"Time to {key} ({short})", getattr(m, attr)
        target = m.targets.get(key)
        verdict = "" if target is None else ("**breached**" if target["breached"] else "met" if value is not None else "")
        lines.append(f"| {label} | {format_seconds(value)} | {format_seconds(target['target']) if target else '—'} | {verdict} |")
    lines.append(f"| Highest escalation level | {m.highest_level or '—'} | | |")
    lines += ["", "### Steps", "", "| step | track | attempt | duration | outcome |", "|---|---|---|---|---|"]
    for run in m.steps:
        lines.append(f"| {run['step']} | {run['track']} | {run['attempt']} | {format_seconds(run['seconds'])} | "
                     f"{run['outcome'] or 'in progress'} |")
    lines += ["", "## Degradations", ""]
    flips = [e for e in state.events if e.type == "flag_changed"]
    if flips:
        for e in flips:
            lines.append(f"- {e.at:%H:%M:%S} ({_rel(e.at, opened)}) {e.data['op']} {e.data['degradation']}: "
                         f"{describe(e)}")
    else:
        lines.append("- none")
    lines += ["", "## Notes", ""]
    lines += [f"- {n.at:%H:%M:%S} {n.actor}: {n.data['text']}" for n in state.notes] or ["- none"]
    lines += ["", "## Timeline", "", "| time (UTC) | since open | who | what |", "|---|---|---|---|"]
    for e in state.events:
        lines.append(f"| {e.at:%Y-%m-%d %H:%M:%S} | {_rel(e.at, opened)} | {e.actor} | {describe(e).replace('|', '/')} |")
    lines += ["", "## Causes", "", "_Root cause and contributing factors._", "",
              "## Action items", "", "| action | owner | due |", "|---|---|---|"]
    lines += [f"| {a.data['text'].replace('|', '/')} | {a.data.get('owner') or a.actor} | |" for a in state.action_items]
    lines += ["| | | |", ""]
    return "\n".join(lines)


def _rel(at: datetime, opened: datetime) -> str:
    return "+" + format_duration(round((at - opened).total_seconds()))
