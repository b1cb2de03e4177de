"""The postmortem's sections after the common templates (Google SRE, PagerDuty), from the record:
what people wrote (review_written events, engine/learning.py), what the log shows (impact,
detection, responders, the moments that mattered) and the action items with their state.

`metrics.export_markdown` places them around its own sections; every text from the log or the
playbook goes through `runbook.text.markdown`.
"""

from __future__ import annotations

from datetime import datetime

from runbook.catalog.durations import format_seconds
from runbook.engine import learning
from runbook.engine.effects import SYSTEM
from runbook.engine.state import IncidentState
from runbook.text import markdown as md
from runbook.text import one_line

# the moments a condensed timeline keeps (decisions, flips, pages, messages, the incident's life)
KEY_TYPES = frozenset({"opened", "acknowledged", "escalated", "decision_made", "degradation_applied",
                       "degradation_restored", "severity_changed", "message_posted", "mitigated", "resolved",
                       "handed_off", "alert_received", "note_added", "target_breached", "role_assigned"})


def _written(review: dict, section: str, hint: str) -> list[str]:
    """A section as written (with who and when), or the template's prompt for it."""
    if section not in review:
        return [f"_{hint} (`runbook incident review ID --{section} TEXT`)_", ""]
    text, who, at = review[section]
    return [*(md(line) if line.strip() else "" for line in text.strip().splitlines()), "",
            f"_— {md(who)}, {at:%Y-%m-%d %H:%M} UTC_", ""]


def head(state: IncidentState) -> list[str]:
    """Summary, impact, detection and responders."""
    review = learning.review(state)
    authors = list(dict.fromkeys(e.actor for e in state.events if e.type == "review_written"))
    lines = ([f"- Review by: {', '.join(md(a) for a in authors)}", ""] if authors else []) + \
        ["## Summary", "", *_written(review, "summary", "What happened, who was affected, for how long."),
             "## Impact", "", *_written(review, "impact", "Who, what, where, how long, in the users' terms.")]
    lines += impact_facts(state)
    lines += ["## Detection", "", *detection(state), "", "## Responders", "", *responders(state), ""]
    return lines


def impact_facts(state: IncidentState) -> list[str]:
    """What the record says of the impact: the symptom, where (labels and parameters), how long,
    and each degradation's share of users × how long it held, with its impact text."""
    pb = state.playbook
    symptom = next((s for s in pb.symptoms if s.id == state.symptom), None) if state.symptom else None
    out = ["From the record:", ""]
    if symptom is not None:
        out.append(f"- Symptom: {md(symptom.summary)}")
    out.append(f"- Service: {md(state.service)}")
    where = [f"{md(k)}={md(v)}" for k, v in state.parameters.items()]
    where += [f"{md(k)}={md(v)}" for e in state.events if e.type == "alert_received" and e.record.opened
              for k, v in sorted(e.record.labels.items()) if k not in state.parameters]
    if where:
        out.append(f"- Where: {', '.join(where)}")
    end = state.mitigated_at or state.resolved_at
    if end is not None:
        out.append(f"- Users affected for: {format_seconds((end - state.opened_at).total_seconds())} from open to "
                   + ("mitigation" if state.mitigated_at else "resolution"))
    for name, share, seconds in degradation_spans(state):
        deg = pb.degradations.get(name)
        text = f" — {md(deg.impact)}" if deg is not None and deg.impact else ""
        out.append(f"- Degraded {md(name)}: {share}% of users for {format_seconds(seconds)}{text}")
    return out + [""]


def degradation_spans(state: IncidentState, now: datetime | None = None) -> list[tuple[str, int, float]]:
    """(degradation, share %, seconds) for each stretch a degradation held at one share."""
    spans, held = [], {}
    end_of_record = now or state.resolved_at or (state.events[-1].at if state.events else state.opened_at)
    for e in state.events:
        if e.type == "degradation_applied":
            name = e.record.degradation
            if name in held:
                spans.append((name, held[name][1], (e.at - held[name][0]).total_seconds()))
            held[name] = (e.at, e.record.share if e.record.share is not None else 100)
        elif e.type == "degradation_restored" and e.record.degradation in held:
            since, share = held.pop(e.record.degradation)
            spans.append((e.record.degradation, share, (e.at - since).total_seconds()))
    spans += [(name, share, (end_of_record - since).total_seconds()) for name, (since, share) in held.items()]
    return spans


def detection(state: IncidentState) -> list[str]:
    alert = next((e for e in state.events if e.type == "alert_received" and e.record.opened), None)
    if alert is not None:
        from runbook.engine.clock import parse

        rec = alert.record
        out = [f"- Detected by alert {md(rec.alertname or rec.fingerprint)}" + (f": {md(rec.summary)}" if rec.summary
                                                                                else "")]
        try:
            fired = parse(rec.starts_at)
            out.append(f"- Time to detect: {format_seconds((state.opened_at - fired).total_seconds())} from the alert "
                       f"firing ({fired:%H:%M:%S} UTC) to the incident opening")
        except ValueError:
            pass
    else:
        out = [f"- Reported by a person: {md(state.opened_by)}, {state.opened_at:%Y-%m-%d %H:%M:%S} UTC"]
    if state.acknowledged_at is not None:
        out.append(f"- Acknowledged by {md(state.acknowledged_by)} after "
                   f"{format_seconds((state.acknowledged_at - state.opened_at).total_seconds())}")
    return out


def responders(state: IncidentState) -> list[str]:
    """Everyone who acted, with the roles they held and how many of the record's events are theirs."""
    roles: dict[str, list[str]] = {}
    for e in state.events:
        if e.type == "role_assigned":
            roles.setdefault(e.record.person, []).append(e.record.role)
    acts: dict[str, int] = {}
    for e in state.events:
        if e.actor != SYSTEM:
            acts[e.actor] = acts.get(e.actor, 0) + 1
    paged = sorted({r.get("name") or r.get("id") for e in state.events if e.type == "escalated"
                    for r in e.record.recipients})
    out = [f"- {md(who)}" + (f" ({', '.join(md(r) for r in dict.fromkeys(roles[who]))})" if who in roles else "")
           + f": {count} recorded act(s)" for who, count in acts.items()]
    if paged:
        out.append(f"- Paged: {', '.join(md(p) for p in paged)}")
    return out or ["- none recorded"]


def key_moments(state: IncidentState, rel, describe) -> list[str]:
    """The timeline condensed to what mattered (each line as `describe(event)` says it: the
    export's, naming steps by title); the full one follows it in the export."""
    lines = ["## Key moments", "", "| since open | who | what |", "|---|---|---|"]
    lines += [f"| {rel(e.at, state.opened_at)} | {md(e.actor)} | {md(one_line(describe(e)))} |"
              for e in state.events if e.type in KEY_TYPES]
    return lines + [""]


def tail(state: IncidentState) -> list[str]:
    """Trigger, root cause, resolution and recovery, lessons learned, action items."""
    review = learning.review(state)
    lines = ["## Trigger", "", *_written(review, "trigger", "What set it off."),
             "## Root cause", "", *_written(review, "root-cause", "Why it happened, and what contributed."),
             "## Resolution", "", *_written(review, "resolution", "What stopped the harm.")]
    if state.mitigated_at is not None:
        fix = learning.mitigation(state)
        lines += [f"From the record: mitigated: {md(fix['what'])} ({md(fix['who'])}) after "
                  f"{format_seconds(fix['seconds'])}.", ""]
    lines += ["## Recovery", "", *_written(review, "recovery", "How service returned to normal."),
              "## Lessons learned", "", "### What went well", "",
              *_written(review, "went-well", "What worked."),
              "### What went wrong", "", *_written(review, "went-wrong", "What did not."),
              "### Where we got lucky", "", *_written(review, "got-lucky", "What saved us that we cannot count on."),
              "## Action items", "", "| id | action | kind | priority | owner | due | ticket | status |",
              "|---|---|---|---|---|---|---|---|"]
    for item in learning.incident_items(state):
        status = "open" if item.open else (f"closed {item.closed_at:%Y-%m-%d} by {md(item.closed_by)} "
                                           f"({md(item.evidence_kind)}: {md(item.evidence)})")
        lines.append(f"| {md(item.id)} | {md(item.text)} | {md(item.kind or '')} | {md(item.priority or '')} | "
                     f"{md(item.owner)} | {md(item.due or '')} | {md(item.ticket or '')} | {status} |")
    return lines + ["| | | | | | | | |", ""]
