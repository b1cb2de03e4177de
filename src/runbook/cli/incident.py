"""`runbook incident ...`: the headless incident commands, on the same engine as the TUI."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta

import click

from runbook.catalog import parameters
from runbook.catalog.durations import format_duration
from runbook.cli import roles
from runbook.cli.context import Context
from runbook.cli.options import actor_option, incident_argument, json_option, opening_options, reason_required
from runbook.cli.output import dump, echo
from runbook.default_plugins.shell_action import attached_terminal
from runbook.engine import answers, approvals, cadence, conditions, step_timers, texts, timers
from runbook.engine import owner as owners
from runbook.engine.completion import UNDONE, completion
from runbook.engine.metrics import (
    background_commands,
    describe,
    export_json,
    export_markdown,
    metrics,
    no_output,
    posted_messages,
    step_outputs,
    step_titles,
)
from runbook.engine.roles import waiting_for
from runbook.engine.state import DONE, SKIPPED
from runbook.errors import CommandError, UsageError
from runbook.text import json_shown, markdown, one_line, shown


def _print_events(events, as_json: bool) -> None:
    if as_json:
        dump([e.to_dict() for e in events])
        return
    for event in events:
        echo(f"{event.at:%H:%M:%S}  {one_line(event.actor):<10} {describe(event)}")


def _timers_elsewhere(service, incident: str, as_json: bool) -> None:
    """One line when another runbook's lease holds the incident's timers (nothing fired here)."""
    by = service.timers_by(incident)
    if by:
        echo(f"{incident}: its timers are {by}; nothing fired here", err=as_json)


def _warn(text: str) -> None:
    """A warning that must not be missed: on stderr, and first on stdout."""
    echo(text, err=True)
    echo(text)


def _in(seconds: float) -> str:
    return f"in {format_duration(round(seconds))}" if seconds >= 0 else f"{format_duration(round(-seconds))} ago"


OUTPUT_LINES = 10


def summary(state, now: datetime, plan_step=None) -> list[str]:
    """What `show` prints. `plan_step(incident, step)`: the plan of a current degrade or restore
    step (Engine.plan_step), printed under it as what it writes (for its approver too)."""
    pb = state.playbook
    source = f" ({one_line(state.severity_source)})" if state.severity_source else ""
    lines = [f"{state.id}  {one_line(state.title)}" + ("  [DRILL]" if state.drill else ""),
             f"  {state.severity}{source} · {state.status} · playbook {pb.id} · "
             f"opened {state.opened_at:%Y-%m-%d %H:%M:%S} UTC "
             f"by {one_line(state.opened_by)} ({format_duration(round((now - state.opened_at).total_seconds()))} ago)"]
    if state.from_incident:
        lines.append(f"  handed off from {one_line(state.from_incident)}")
    for step_id, playbook, linked in state.handoffs:
        ended = f"; resolved by it at {state.resolved_at:%H:%M:%S}" if state.resolved_by_handoff == linked else ""
        lines.append(f"  handed off to {one_line(linked)} (playbook {one_line(playbook)}, step {one_line(step_id)})"
                     f"{ended}")
    for handed in state.handed_to:  # as recorded when handed off
        then = "resolved by it" if handed["resolves"] else "the incident stays open"
        lines.append(f"  handed off to {one_line(handed['to'])} (contact: {one_line(handed['contact'])}; step "
                     f"{one_line(handed['step'])}, by {one_line(handed['by'])}; {then})")
    if state.parameters:
        lines.append("  parameters: " + ", ".join(f"{one_line(name)}={one_line(value)}"
                                                 f" ({state.parameter_sources.get(name, '?')}"
                                                 f"{', stale' if name in state.stale else ''})"
                                                 for name, value in state.parameters.items()))
    if state.labels:
        lines.append("  alert labels: " + one_line(", ".join(f"{k}={v}" for k, v in state.labels.items())))
    if state.acknowledged_by:
        lines.append(f"  acknowledged by {one_line(state.acknowledged_by)} at {state.acknowledged_at:%H:%M:%S}")
    for name, (deadline, met) in timers.deadlines(state).items():
        if met:
            status = f"met at {met:%H:%M:%S}"
        elif state.resolved:  # the clocks stopped at resolve: a target not reached then never will be
            status = "missed" if deadline <= state.resolved_at else "not reached before resolve"
        else:
            status = "BREACHED" if deadline <= now else _in((deadline - now).total_seconds())
        when = f"{deadline:%H:%M:%S}" if deadline.date() == now.date() else f"{deadline:%Y-%m-%d %H:%M:%S}"
        lines.append(f"  {name} target {when}: {status}")
    escalation = _escalation_line(state, now)
    if escalation:
        lines.append(f"  {escalation}")
    if not state.alert_firing:
        lines.append(f"  alert resolved at its source since {state.alert_changes[-1][0]:%H:%M:%S} "
                     "(severity rises wait)")
    lines += roles.show_lines(state)
    # once resolved, no response step is in progress any more: what was not done is said instead,
    # in the follow-up phase too (the follow-up steps are then the current ones, listed below)
    if state.resolved:
        lines += _not_done_lines(state, now)
    tracks = [] if state.resolved and not state.in_followup else \
        [(track, step_id) for track, step_id in state.current.items() if not state.in_followup or track == "followup"]
    if tracks:
        lines.append("  current steps:")
    for track, step_id in tracks:
        if step_id is None:
            waiting = track == "followup" and not state.resolved
            lines.append(f"    [{track}] {'not started (begins at resolve)' if waiting else 'finished'}")
            continue
        step, run = pb.step(step_id), state.steps[step_id]
        extra = f" — {run.status}" if run.status != "active" else ""
        extra += f" — waiting for {waiting_for(state, step)}" if waiting_for(state, step) else ""
        stale = approvals.stale(state, step) if step.approval else ""
        gate = f" (needs approval by {one_line(step.approval.by)}{' again' if stale else ''})" \
            if step.approval and (not run.approved or stale) else ""
        lines.append(f"    [{track}] {step.id}: {one_line(texts.text(state, step.title, step, now))} "
                     f"({step.kind}){extra}{gate}")
        if (clock := step_timers.status(state, step.id, now)):
            lines.append(f"        {clock}")
        if step.run is not None:
            lines.append(f"        $ {one_line(texts.shown_command(state, step, now))}")
        if plan_step is not None and step.kind in ("degrade", "restore"):
            lines += _writes(plan_step, state.id, step.id)
        if step.template:  # what to post, filled as it will be sent
            where = " · ".join(one_line(x) for x in (step.channel, step.audience) if x)
            lines.append(f"        message{f' ({where})' if where else ''}: "
                         f"{one_line(texts.text(state, step.template, step, now))}")
            try:
                texts.message(state, step, now)
            except CommandError as exc:  # posting it is refused until the value is set: say so here
                lines.append(f"        cannot post yet: {one_line(str(exc))}")
        if step.hand_to is not None:
            then = "resolves the incident" if step.resolves else "the incident stays open"
            lines.append(f"        hand off to {one_line(texts.text(state, step.hand_to.name, step, now))} (contact: "
                         f"{one_line(texts.text(state, step.hand_to.contact, step, now))}); {then}")
        if step.kind == "ask":
            lines.append(f"        {one_line(texts.asked(state, step))}: answer with `runbook incident step {state.id} "
                         f"{step.id} --done --value VALUE`")
        for i, option in enumerate(step.options, 1):
            why = conditions.unmet(state, option.when)
            lines.append(f"        {i}. {one_line(option.label)}" + (f" (not offered: {one_line(why)})" if why else ""))
        if step.approval:
            lines += approval_lines(state, step, stale)
        hint = answers.suggestion(state, step)
        if hint is not None:
            lines.append(f"        suggested: {hint.index + 1}. {one_line(hint.label)} "
                         f"(from {one_line(hint.source)}; take it with --suggested, or choose another)")
    applied = [n for n, d in state.degradations.items() if d.applied]
    if applied:
        lines.append(f"  degradations applied: {one_line(', '.join(applied))}")
        from runbook.engine import stages

        for name in applied:
            words, ladder = stages.in_words(state, name), stages.describe(state, name, now)
            if words:
                lines.append(f"    {one_line(words)}")
            if ladder:
                lines.append(f"      {one_line(ladder)}")
            why = stages.held_why(state, name)
            if why:
                todo = "resume" if state.degradations[name].held else "advance"
                lines.append(f"      held: {one_line(why)}; `runbook incident stage {state.id} {one_line(name)} "
                             f"{todo}` {'lets it go' if todo == 'resume' else 'advances it by hand'}")
    lines += background_lines(state, now)
    if state.messages:
        lines.append("  messages posted:")
        for event in state.messages:
            lines += message_lines(event)
    lines += cadence_lines(state, now)
    ran = step_outputs(state)
    if ran:
        lines.append(f"  command output (last {OUTPUT_LINES} lines of each step's last run):")
    for step_id, run in ran.items():
        code = "no exit code" if run["exit_code"] is None else f"exit {run['exit_code']}"
        lines.append(f"    {step_id} ({run['status']}, {code}):")
        out = run["output"].rstrip("\n").splitlines()[-OUTPUT_LINES:] or [no_output(run)]
        lines += [f"      | {shown(line)}" for line in out]
    lines.append("  recent:")
    lines += [f"    {e.at:%H:%M:%S} {one_line(e.actor):<10} {describe(e)}" for e in state.events[-8:]]
    return lines


def background_lines(state, now: datetime) -> list[str]:
    """The background commands started, each as recorded: running (and where), or how it ended."""
    runs = background_commands(state)
    if not runs:
        return []
    here, titles = owners.host(), step_titles(state)
    lines = ["  background commands:"]
    for run in runs:
        ended = run["ended"]
        if ended is None:
            since = format_duration(round((now - datetime.fromisoformat(run["started_at"])).total_seconds()))
            where = run["host"] if run["host"] == here else f"{run['host']}, another host: stopped there, not here"
            status = f"RUNNING for {since} (pid {run['pid']} on {one_line(where)}), " + until_line(state, run, titles)
        else:
            code = f" with exit status {ended['exit_code']}" if ended["exit_code"] is not None else ""
            why = f" ({ended['why']})" if ended["why"] else ""
            status = f"{ended['how']}{code} at {ended['at'][11:19]}{why}" + \
                (f": {ended['detail']}" if ended["detail"] else "")
        lines.append(f"    {one_line(run['step'])}: {one_line(run['command'])}")
        lines.append(f"        {one_line(status)}; output in {one_line(run['output'])}")
    return lines


def until_line(state, run, titles: dict) -> str:
    """Until when a running background command runs: its until step (or resolve); once that step
    has ended here, the command runs on only until the runbook on its own host stops it."""
    if not run["until"]:
        return "until resolve"
    title = titles.get(run["until"], run["until"])
    step = state.steps.get(run["until"])
    if step is None or step.status not in (DONE, SKIPPED):
        return f"until “{title}” ends"
    ended = "is done" if step.status == DONE else "was skipped"
    return f"though “{title}” {ended}: it waits for the runbook on {one_line(run['host'])} to stop it"


def approval_lines(state, step, stale: str) -> list[str]:
    """A current gated step's gate: its prompt and what it covers — as approved while the approval
    holds, else what approving it records now — or what changed since it was approved."""
    run = state.steps[step.id]
    how = f"runbook incident approve {state.id} {step.id}"
    if run.approved and not stale:
        at = f" at {run.approved_at:%H:%M:%S}" if run.approved_at else ""
        heads = [f"approved by {one_line(run.approved_by)}{at} (as {one_line(step.approval.by)}), covering:"]
        content = run.approved_content or approvals.covered(state, step)
    elif stale:
        heads = [f"approval by {one_line(run.approved_by)} is stale: {one_line(stale)}",
                 f"approve again ({how}); that covers:"]
        content = approvals.covered(state, step)
    else:
        heads = [f"approval by {one_line(step.approval.by)} needed ({how}); it covers:"]
        content = approvals.covered(state, step)
    return [f"        {head}" for head in heads] + [f"          {line}" for line in content_lines(content)]


def content_lines(content: dict | None) -> list[str]:
    """An approval's content, one field a line; a text of several lines (a message) below its name."""
    out = []
    for name, value in approvals.lines(content):
        if "\n" in value.strip():
            out.append(f"{name}:")
            out += [f"  | {shown(line)}" for line in value.strip().splitlines()]
        else:
            out.append(approvals.labelled(name, one_line(value.strip())))
    return out


def cadence_lines(state, now: datetime) -> list[str]:
    """The steps posting on a cadence (repeat:): an update due for a person first, with how to post
    it, then when each next post goes out by itself."""
    lines = []
    due = {step_id: (n, why) for step_id, n, why, _at in cadence.due(state)}
    for step in cadence.repeating(state):
        line = cadence.status(state, step, now)
        lines.append(f"    {step.id}: {one_line(line)}")
        if step.id in due:
            message = " --message TEXT" if step.compose else ""
            gated = step.approval is not None and (step.compose or approvals.refusal_if_changed(state, step))
            again = f"`runbook incident approve {state.id} {step.id}{message}`, then " if gated else ""
            lines.append(f"        post it: {again}`runbook incident post {state.id} {step.id}{message}`")
    return (["  updates on a cadence:"] + lines) if lines else []


def cadence_json(state) -> list[dict]:
    """`show --json`'s `cadence`: each step posting on a cadence now, its next post and a post due."""
    due = {step_id: {"repeat": n, "why": why, "since": at.isoformat()} for step_id, n, why, at in cadence.due(state)}
    return [{"step": step.id, "every": step.repeat.every, "until": step.repeat.until,
             "next_at": None if step.id in due else cadence.next_at(state, step).isoformat(),
             "due": due.get(step.id)} for step in cadence.repeating(state)]


def message_lines(event) -> list[str]:
    """A posted message as recorded: when, by whom, where, and its text as it went out."""
    posted = event.record
    where = " · ".join(one_line(x) for x in (posted.channel, posted.audience) if x)
    again = f", repeat {posted.repeat}" if posted.repeat else ""
    head = (f"    {event.at:%H:%M:%S} {one_line(event.actor)} posted{f' to {where}' if where else ''} "
            f"(step {one_line(posted.step)}, {posted.phase}{again}):")
    return [head] + [f"      | {shown(line)}" for line in posted.text.strip().splitlines() or [""]]


def _escalation_line(state, now: datetime) -> str:
    """Where paging stands, true before and after an acknowledgement ("" when nothing was paged
    at a severity that pages)."""
    esc = state.escalation
    nxt = timers.next_escalation(state)
    if nxt:
        return f"next escalation: level {nxt.data['level']} {_in((nxt.at - now).total_seconds())}"
    if esc.by_pager and esc.paged and not (state.acknowledged_at or state.resolved):
        return "escalation: by the pager (runbook paged level 1; the pager's own policy pages the rest)"
    by_label = timers.paging_label(state)
    if not esc.highest and by_label is False and not state.resolved:
        label = state.playbook.page_label
        return f"escalation: label {one_line(label)}={one_line(state.labels.get(label, ''))} says not to page"
    if not esc.highest:
        return "" if timers.pages(state) or state.resolved else f"escalation: {one_line(state.severity)} does not page"
    if state.acknowledged_at:
        return (f"escalation stopped at level {esc.highest}: acknowledged by {one_line(state.acknowledged_by)} "
                f"at {state.acknowledged_at:%H:%M:%S}")
    if state.resolved:
        return (f"escalation stopped at level {esc.highest}: resolved at {state.resolved_at:%H:%M:%S}, "
                "never acknowledged")
    if not timers.pages(state):
        return (f"escalation: {one_line(state.severity)} does not page; paged up to level {esc.highest} before; "
                "nobody has acknowledged")
    return f"escalation: every level has been paged (up to level {esc.highest}); nobody has acknowledged yet"


def _not_done_lines(state, now: datetime) -> list[str]:
    """A resolved incident: whether every step was done, and which were not (engine/completion.py)."""
    done = completion(state)
    lines = [f"  {done.verdict()}"]
    for heading, status in (("left undone", UNDONE), ("failed", "failed"), ("skipped", "skipped")):
        items = done.of(status)
        if items:
            lines.append(f"  {heading}:")
        for item in items:
            step = state.playbook.step(item.step)
            why = f" — {one_line(item.reason)}" if item.reason else " — not done" if status == UNDONE else ""
            settled = " (its flags were restored at resolve)" if item.settled else ""
            lines.append(f"    [{item.track}] {step.id}: {one_line(texts.text(state, step.title, step, now))} "
                         f"({step.kind}){why}{settled}")
    return lines


def _writes(plan_step, incident: str, step: str) -> list[str]:
    """"writes: …", one line a flag, of what a step flips (nothing when it flips nothing)."""
    from runbook.errors import RunbookError

    try:
        made = plan_step(incident, step)
    except RunbookError as exc:
        return [f"        writes: cannot be said now: {one_line(str(exc))}"]
    if made is None:
        return []
    at = f" ({made.staged})" if made.staged else ""
    return [f"        writes{at}:"] + [f"          {line}" for line in made.lines]


@click.group("incident", short_help="Drive an incident from the command line (open, ack, steps, resolve...).")
def group():
    """Drive an incident without the TUI: for scripts, chat-ops and a second responder.

    \b
    A walk through a playbook:
      ID=$(runbook incident open video-call-degraded)
      runbook incident ack $ID
      runbook incident step $ID --done
      runbook incident choose $ID "One region"
      runbook incident note $ID "eu-west SFU pool saturated"
      runbook incident resolve $ID
      runbook incident export $ID --format md > postmortem.md

    ID may be shortened to a unique start, in any case, with or without INC-: `runbook
    incident ack 854` acknowledges INC-854ABC. Exit status: 0 done, 1 the playbook's documents
    have errors (open), or the incident's record is damaged or does not verify, 2 usage (an empty
    ID or INC- alone too, text that is not UTF-8, a missing $RUNBOOK_CHAIN_KEY for writes), 3 no such incident, 4 a
    plugin or a step's action failed, 5 the command does not fit the incident's state (or ID
    starts several incidents, or a note is over 64 KiB), 6 the incident kept changing under the
    command, 7 the incident database cannot be used (read-only, damaged, not reachable).
    """


@group.command("open")
@opening_options
@click.option("--alert", metavar="FINGERPRINT", default=None,
              help="Open it for an alert `runbook serve` kept unmatched (see `runbook alerts --unmatched`): "
                   "its labels fill the parameters and severity, and the alert is linked to the incident.")
@json_option()
@click.pass_obj
def open_incident(ctx: Context, playbook, symptom, severity, drill, params, labels, actor, alert, as_json):
    """Open an incident on PLAYBOOK; prints its id (and pages escalation level 1).

    The playbook's parameters come from --param KEY=VALUE, from the alert's --label KEY=VALUE
    (each parameter names the label that fills it), or their defaults; a missing or bad value
    is refused before anything is recorded."""
    if alert is not None and labels:
        raise UsageError("--alert takes the alert's own labels; leave out --label")
    service = ctx.engine_service(catalog=True)
    state = service.command("open", playbook, actor, symptom=symptom, severity=severity, drill=drill, params=params,
                            labels=labels, alert=alert)
    service.command("tick", state.id)
    if as_json:
        dump({"id": state.id, "playbook": state.playbook.id, "severity": state.severity,
              "parameters": state.parameters}, indent=None)
    else:
        echo(state.id)


@group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved and closed incidents (those in their "
                                                       "follow-up phase are listed without it).")
@click.option("--drills/--no-drills", default=None, help="Only drills, or no drills (default: both).")
@json_option()
@click.pass_obj
def list_incidents(ctx: Context, show_all, drills, as_json):
    """List incidents, newest first (open ones and those in their follow-up phase unless --all,
    then those resolved in the last 24 hours, and how many older ones are hidden).

    Each summary row is checked cheaply against its log (the count of events, the status its
    acknowledged/mitigated/resolved events imply, drill, severity, title): one that disagrees is
    marked LOG ALTERED, and one edited to look resolved (or a drill) is listed anyway. Incidents
    whose summary row was deleted are listed after the others."""
    service = ctx.engine_service()
    rows = service.query("list", open_only=not show_all, drills=drills)
    orphans = service.query("without_summary")
    if as_json:
        dump(rows + [{"id": i, "log_intact": False, "summary_missing": True, "log_problem": ORPHAN}
                     for i in orphans])
        return
    recent, older = ([], 0) if show_all else _resolved_lately(service, rows, drills)
    if not rows and not orphans:
        echo("no open incidents" if not show_all else "no incidents")
    for r in rows:
        _echo_row(r)
    if recent:  # the morning after: what was resolved overnight is not "nothing"
        echo("resolved in the last 24 hours:")
        for r in recent:
            _echo_row(r)
    if older:
        echo(f"{older} resolved earlier {'is' if older == 1 else 'are'} hidden: runbook incident list --all")
    for incident in orphans:
        echo(f"{incident}: {ORPHAN}  !! LOG ALTERED (runbook incident verify {incident})")
    for r in rows:
        if not r["log_intact"]:
            echo(f"warning: the summary of {r['id']} does not agree with its log: {one_line(r['log_problem'])}",
                 err=True)
    if orphans:
        echo(f"warning: {', '.join(orphans)}: {ORPHAN}", err=True)


ORPHAN = "events without a summary row — record altered"


def _resolved_lately(service, shown: list[dict], drills) -> tuple[list[dict], int]:
    """Incidents resolved (or closed) in the last 24 hours that the open listing leaves out, and how
    many older ones it leaves out."""
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    listed = {r["id"] for r in shown}
    ended = [r for r in service.query("list", open_only=False, drills=drills) if r["id"] not in listed]
    recent = [r for r in ended if str(r.get("resolved_at") or "") >= since]
    return recent, len(ended) - len(recent)


def _echo_row(r: dict) -> None:
    drill = " DRILL" if r["drill"] else ""
    altered = "" if r["log_intact"] else "  !! LOG ALTERED (runbook incident verify)"
    echo(f"{r['id']}  {one_line(str(r['severity'])):<5} {one_line(str(r['status'])):<12} "
         f"{str(r['opened_at'])[:19]}  {one_line(str(r['title']))}{drill}{altered}")


@group.command("show")
@incident_argument()
@json_option()
@click.pass_obj
def show(ctx: Context, incident_id, as_json):
    """Show an incident: status, targets, escalation, current steps, recent timeline.

    A warning is printed when the record does not verify. A long incident is checked from its
    latest checkpoint on (one every 500 events); `runbook incident verify` checks every event."""
    service = ctx.engine_service()
    state = service.query("state", incident_id)
    check = service.query("integrity", state.id, full=False)  # from the checkpoint on; `incident verify` walks it all
    if as_json:
        data = export_json(state)
        data["current"] = state.current
        now = service.read(_now)
        data["messages"] = posted_messages(state) + drafts(state, now)
        data["approvals"] = gates(state)
        data["cadence"] = cadence_json(state)
        data["suggestions"] = suggestions(state)
        data["integrity"] = {"ok": check.ok, "problems": list(check.problems)}
        dump(data)
        if not check.ok:
            echo(check.warning(state.id), err=True)
        return
    if not check.ok:
        _warn(check.warning(state.id))
    for line in service.read(_summary, state):
        echo(line)
    by = service.timers_holder(state.id)
    if by and not state.resolved:
        echo(f"timers: run by {one_line(by)} (it holds their lease)")


def _now(engine) -> datetime:
    return engine.clock.now()


def _summary(engine, state) -> list[str]:
    """`summary` with the engine's clock and, when it has plugins, its flip plans."""
    return summary(state, engine.clock.now(), engine.plan_step if engine.plugins is not None else None)


@group.command("ack")
@incident_argument()
@actor_option
@json_option()
@click.pass_obj
def acknowledge(ctx: Context, incident_id, actor, as_json):
    """Acknowledge the incident (stops escalation)."""
    _print_events(ctx.engine_service().command("acknowledge", incident_id, actor), as_json)


@group.command("mitigate")
@incident_argument()
@actor_option
@json_option()
@click.pass_obj
def mitigate(ctx: Context, incident_id, actor, as_json):
    """Mark the incident mitigated (users no longer hurt)."""
    _print_events(ctx.engine_service().command("mitigate", incident_id, actor), as_json)


@group.command("escalate")
@incident_argument()
@actor_option
@json_option()
@click.pass_obj
def escalate(ctx: Context, incident_id, actor, as_json):
    """Notify the next escalation level now."""
    _print_events(ctx.engine_service().command("escalate_now", incident_id, actor), as_json)


@group.command("step")
@incident_argument()
@click.argument("step", required=False)
@click.option("--done", is_flag=True, help="The step is done (degrade/restore steps flip flags).")
@click.option("--skip", "reason", metavar="REASON", help="Skip the step, saying why.")
@click.option("--fail", is_flag=True, help="The step failed (goes to on_fail if the step has one).")
@click.option("--run", is_flag=True, help="Run the step's automation (run: or uses:); an interactive: true command "
                                         "runs attached to this terminal, or in a new tmux window inside tmux.")
@click.option("--outcome", default="", help="What was found (with --done) or what went wrong (with --fail).")
@click.option("--status", "public_status", default=None,
              type=click.Choice(["investigating", "identified", "monitoring", "resolved"]),
              help="With --done on a communicate step: the phase its public update announces "
                   "(default: the step's status:, else from the incident).")
@click.option("--value", default=None, help="With --done on an ask step: the answer, recorded as its parameter's "
                                            "value (asked for at a prompt when left out on a terminal).")
@click.option("--message", default=None, help="With --done on a communicate step with compose: true: the message to "
                                              "post, as written (asked for at a prompt, the template as the draft, "
                                              "when left out on a terminal).")
@actor_option
@json_option()
@click.pass_obj
def step(ctx: Context, incident_id, step, done, reason, fail, run, outcome, public_status, value, message, actor,
         as_json):
    """Complete, skip, fail or run STEP (default: the current step of the main track).

    With --run, exit status 4 when the action (or a wait step's check) failed or timed out; what
    was recorded (the failure, and where the step went) is printed first."""
    chosen = [name for name, on in (("done", done), ("skip", reason is not None), ("fail", fail), ("run", run))
              if on]
    if len(chosen) > 1:
        raise UsageError(f"give only one of --done, --skip REASON, --fail, --run (got {', '.join(chosen)})")
    if not chosen:
        raise UsageError("say what happened to the step: --done, --skip REASON, --fail or --run")
    if public_status is not None and chosen[0] != "done":
        raise UsageError("--status goes with --done (the phase a communicate step's update announces)")
    if value is not None and chosen != ["done"]:
        raise UsageError("--value answers an ask step: give it with --done")
    if message is not None and chosen != ["done"]:
        raise UsageError("--message is the text a compose step posts: give it with --done")
    service = ctx.engine_service()
    action = chosen[0]
    if action == "done":
        if value is None and sys.stdin.isatty():
            value = _prompt_for_answer(service, incident_id, step)
        if message is None and sys.stdin.isatty():
            message = _prompt_for_message(service, incident_id, step)
        events = service.command("complete", incident_id, actor, step, outcome=outcome, status=public_status,
                                 value=value, message=message)
    elif action == "skip":
        events = service.command("skip", incident_id, actor, step, reason)
    elif action == "fail":
        events = service.command("fail", incident_id, actor, step, outcome)
    else:
        # an interactive step's command runs attached to this terminal (or a new tmux window);
        # without a terminal the engine refuses it, saying how to run it
        attached = os.environ.get("TMUX") or (sys.stdin.isatty() and sys.stdout.isatty())
        events = service.command("run", incident_id, actor, step, terminal=attached_terminal() if attached else None)
    _print_events(events, as_json)
    # by the step's outcome: a finding (expect:) is done, not failed; output not as expected fails
    done = {e.record.step for e in events if e.type == "step_completed"}
    if action == "run" and any(e.type == "step_failed" or (e.type in ("action_finished", "check_polled")
                                                           and not e.record.ok and e.record.step not in done)
                               for e in events):
        raise click.exceptions.Exit(4)


@group.command("approve")
@incident_argument()
@click.argument("step", required=False)
@click.option("--override", default="", metavar="REASON",
              help="Approve although someone else holds the approving role, saying why (recorded).")
@click.option("--message", default=None, help="A communicate step with compose: true: the text approved for posting "
                                              "(posting another text is refused until it is approved).")
@actor_option
@json_option()
@click.pass_obj
def approve(ctx: Context, incident_id, step, override, message, actor, as_json):
    """Approve STEP's gate (default: the current step), recording who approved and what: the
    approval prompt and what the step will do, rendered (the command line, the message, the
    flags), with their digest; printed after the event. When someone holds the approving role
    (`incident assign`), only they approve, unless --override REASON. A step whose content changed
    after it was approved (a parameter set since) waits for a new approval, the same way. A step
    posting on a cadence (repeat:) is approved again while its cadence runs."""
    events = ctx.engine_service().command("approve", incident_id, actor, step, override, message=message)
    _print_events(events, as_json)
    if as_json:
        return
    for event in events:
        if event.type == "approval_granted" and event.record.content is not None:
            echo("  approved:")
            for line in content_lines(event.record.content):
                echo(f"    {line}")
            echo(f"  digest: sha256:{event.record.digest}")


@group.command("post")
@incident_argument()
@click.argument("step")
@click.option("--message", default=None, help="A step with compose: true: the update to post, as written (asked for "
                                              "at a prompt, the last post as the draft, when left out on a terminal).")
@actor_option
@json_option()
@click.pass_obj
def post(ctx: Context, incident_id, step, message, actor, as_json):
    """Post the next update of STEP, a communicate step that repeats on a cadence (repeat:), now:
    its template filled with today's values (or --message for compose: true), recorded as posted
    with its repeat number. Its next update is then due `every` after this one. Refused when its
    approval no longer covers it (approve again) or its cadence has stopped."""
    service = ctx.engine_service()
    if message is None and sys.stdin.isatty():
        message = _prompt_for_repeat(service, incident_id, step)
    _print_events(service.command("post", incident_id, actor, step, message=message), as_json)


def _prompt_for_repeat(service, incident_id: str, step_id: str) -> str | None:
    """On a terminal, the update a compose: true step posts next, offering its last post as the draft."""
    def last(engine):
        state = engine.state(incident_id)
        found = next((s for s in state.playbook.steps if s.id == step_id and s.compose), None)
        posted = cadence.posts(state, step_id) if found else []
        return posted[-1].record.text if posted else None
    draft = service.read(last)
    if draft is None:
        return None
    return click.prompt("message", default=one_line(draft), show_default=True)


@group.command("choose")
@incident_argument()
@click.argument("option", required=False)
@click.option("--step", help="The decision step (default: the current step).")
@click.option("--suggested", is_flag=True, help="Take the option suggested from a captured value or exit code "
                                                "(see `incident show`).")
@actor_option
@json_option()
@click.pass_obj
def choose(ctx: Context, incident_id, option, step, suggested, actor, as_json):
    """Answer a decision: OPTION is its number or (the start of) its label, or --suggested takes
    the option the decision's from: suggests."""
    if (option is None) == (not suggested):
        raise UsageError("give OPTION (its number or label) or --suggested, not both" if suggested
                         else "missing OPTION: give the option's number or label, or --suggested")
    _print_events(ctx.engine_service().command("choose", incident_id, actor, option, step, suggested=suggested),
                  as_json)


def _prompt_for_answer(service, incident_id: str, step_id: str | None) -> str | None:
    """On a terminal, the answer to an ask step typed at a prompt that says what is asked (the
    parameter's summary, type and pattern), offering its current value and asking again until the
    answer fits; None for other steps."""
    def ask_step(engine):
        state = engine.state(incident_id)
        chosen = step_id or next(iter(state.current_steps()), None)
        if chosen is None or chosen not in {s.id for s in state.playbook.steps}:
            return None
        found = state.playbook.step(chosen)
        if found.kind != "ask":
            return None
        return (texts.text(state, found.title, found, engine.clock.now()), texts.asked(state, found),
                state.parameters.get(found.parameter), state.playbook.parameters.get(found.parameter))
    question = service.read(ask_step)
    if question is None:
        return None
    title, what, current, parameter = question

    def fits(value: str) -> str:  # asked again until it fits, rather than refused after typing
        why = parameter and parameters.problem(parameter, value.strip())
        if why:
            raise click.BadParameter(f"{value.strip()!r} {why}")
        return value
    echo(f"{one_line(title)}: {one_line(what)}")
    return click.prompt("value", default=current, show_default=current is not None, value_proc=fits)


def _prompt_for_message(service, incident_id: str, step_id: str | None) -> str | None:
    """On a terminal, the message a compose: true step posts, typed at a prompt offering the draft
    (its template, filled as far as it can be); None for other steps."""
    def compose_step(engine):
        state = engine.state(incident_id)
        chosen = step_id or next(iter(state.current_steps()), None)
        if chosen is None or chosen not in {s.id for s in state.playbook.steps}:
            return None
        found = state.playbook.step(chosen)
        if not found.compose:
            return None
        now = engine.clock.now()
        approved = approvals.approved_text(state, found)  # the text approved for posting, when it was
        return texts.text(state, found.title, found, now), approved or texts.text(state, found.template or "", found,
                                                                                 now)
    question = service.read(compose_step)
    if question is None:
        return None
    title, draft = question
    echo(f"{one_line(title)}: write the message to post")
    return click.prompt("message", default=one_line(draft) or None, show_default=bool(draft))


def drafts(state, now) -> list[dict]:
    """The messages current communicate steps would post, filled now (not posted: "posted": false),
    and why one cannot be posted yet."""
    out = []
    for step_id in state.current_steps():
        step = state.playbook.step(step_id)
        if step.kind != "communicate" or not step.template:
            continue
        try:
            texts.message(state, step, now)
            blocked = None
        except CommandError as exc:  # names the value that is missing and how to set it
            blocked = str(exc)
        out.append({"step": step.id, "title": texts.text(state, step.title, step, now),
                    "text": texts.text(state, step.template, step, now), "channel": step.channel,
                    "audience": step.audience, "posted": False, "blocked": blocked})
    return out


def gates(state) -> dict:
    """Each current gated step's gate, for --json: the prompt, what approving it covers now and its
    digest, and the approval given (what it covered, its digest, whether it still holds)."""
    out = {}
    for step_id in state.current_steps():
        step = state.playbook.step(step_id)
        if not step.approval:
            continue
        run = state.steps[step_id]
        now = approvals.covered(state, step)
        stale = approvals.stale(state, step)
        given = run.approved
        out[step_id] = {"by": step.approval.by, "holder": state.holders.get(step.approval.by),
                        "prompt": now.get("prompt", ""), "covers": now, "digest": approvals.digest(now),
                        "approved": given and not stale, "approved_by": run.approved_by if given else None,
                        "approved_content": run.approved_content if given else None,
                        "approved_digest": run.approved_digest if given else None, "stale": stale or None,
                        "changes": [{"field": c.field, "was": c.was, "now": c.now}
                                    for c in (approvals.changes(state, step) if given else [])]}
    return out


def suggestions(state) -> dict:
    """The suggested option of each current decision that has one, for --json."""
    out = {}
    for step_id in state.current_steps():
        hint = answers.suggestion(state, state.playbook.step(step_id))
        if hint is not None:
            out[step_id] = {"option": hint.index + 1, "label": hint.label, "from": hint.source, "value": hint.value}
    return out


def _print_flag_changes(events, as_json: bool) -> None:
    """The events of a degrade or restore; exit 4 when the flag backend could not flip a flag."""
    _print_events(events, as_json)
    if any(e.type == "degradation_failed" for e in events):
        raise click.exceptions.Exit(4)


def _print_plan(plan, as_json: bool) -> None:
    """What a flip would write, without writing it (--dry-run)."""
    if plan is None:
        if as_json:
            dump({"flips": False})
        else:
            echo("no flags are flipped")
        return
    if as_json:
        dump({"flips": True, "incident": plan.incident, "degradation": plan.degradation, "op": plan.op,
              "stage": plan.stage, "share": plan.share, "of": plan.of, "sandbox": plan.sandbox,
              "lines": list(plan.lines),
              "flags": {w.flag: {"value": w.value, "share": w.share, "exists": w.exists, "kept_by": w.kept_by or None}
                        for w in plan.writes}})
        return
    verb = "apply" if plan.op == "apply" else "restore"
    echo(f"would {verb} {one_line(plan.degradation)} of {plan.incident}" + (f" at {plan.staged}" if plan.staged
                                                                            else "")
         + (" (drill: the sandbox flag file)" if plan.sandbox else "") + ":")
    for line in plan.lines:
        echo(f"  {line}")


DRY_RUN = click.option("--dry-run", is_flag=True, help="Print what it would write (each flag, its value and for what "
                                                         "share of users) and change nothing.")


@group.command("degrade")
@incident_argument()
@click.argument("name")
@DRY_RUN
@actor_option
@json_option()
@click.pass_obj
def degrade(ctx: Context, incident_id, name, dry_run, actor, as_json):
    """Apply degradation NAME (flips its flags through the flag backend). A staged one (rollout:
    in the playbook) starts at its first stage, a share of users; see `runbook incident stage`.
    The first line printed says what it writes ("rtc.video.enabled → false for 10% of users
    (stage 1 of 3)"), as --dry-run does without writing.

    Exit status 4 when a flag could not be set; the failure is in the timeline."""
    if dry_run:
        _print_plan(ctx.engine_service().query("plan_degrade", incident_id, name), as_json)
        return
    _print_flag_changes(ctx.engine_service().command("degrade", incident_id, actor, name), as_json)


@group.command("stage")
@incident_argument()
@click.argument("name")
@click.argument("action", type=click.Choice(["hold", "resume", "advance", "rollback", "unwind"]))
@click.option("--full", is_flag=True, help="rollback: restore fully instead of one stage down.")
@click.option("--reason", default="", help="Why, for the timeline.")
@DRY_RUN
@actor_option
@json_option()
@click.pass_obj
def stage(ctx: Context, incident_id, name, action, full, reason, dry_run, actor, as_json):
    """Steer staged degradation NAME by hand. It advances by itself after each stage's hold while
    its checks hold, and rolls back by itself when one fails; `incident show` says where it is.

    \b
      hold      stay at this stage (checks still run and still roll back)
      resume    let it advance by itself again
      advance   start the next stage now
      rollback  go back one stage (from the first: restore); --full restores
      unwind    restore in stages: one stage down after each stage's hold
                (checks still watching), until restored

    Exit status 4 when a flag could not be set; 5 when NAME is not applied or not staged."""
    if full and action != "rollback":
        raise UsageError("--full goes with rollback")
    if dry_run:
        _print_plan(ctx.engine_service().query("plan_stage", incident_id, name, action, full), as_json)
        return
    _print_flag_changes(ctx.engine_service().command("stage", incident_id, actor, name, action, reason, full), as_json)


@group.command("restore")
@incident_argument()
@click.argument("name")
@DRY_RUN
@actor_option
@json_option()
@click.pass_obj
def restore(ctx: Context, incident_id, name, dry_run, actor, as_json):
    """Restore degradation NAME (puts its flags back through the flag backend). The first line
    printed says what it writes ("rtc.video.max-bitrate-kbps → 1500 (restored)"; a flag another
    degradation still holds: "kept: audio-only of INC-… holds rtc.video.enabled at false for 10%
    of users"), as --dry-run does without writing.

    Exit status 4 when a flag could not be put back; the failure is in the timeline."""
    if dry_run:
        _print_plan(ctx.engine_service().query("plan_restore", incident_id, name), as_json)
        return
    _print_flag_changes(ctx.engine_service().command("restore", incident_id, actor, name), as_json)


@group.command("param")
@incident_argument()
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@actor_option
@json_option()
@click.pass_obj
def set_parameter(ctx: Context, incident_id, assignments, actor, as_json):
    """Set parameters mid-incident (the next host of a "drain the next server" loop), checked
    like the values given at open; the steps show and run the new values from now on."""
    from runbook.catalog.parameters import parse_pairs

    service = ctx.engine_service()
    events = []
    for name, value in parse_pairs(assignments, "KEY=VALUE").items():
        events += service.command("set_parameter", incident_id, actor, name, value)
    _print_events(events, as_json)


@group.command("severity")
@incident_argument()
@click.argument("level")
@click.option("--reason", default="", help="Why the severity changes (required when lowering it).")
@actor_option
@json_option()
@click.pass_obj
def severity(ctx: Context, incident_id, level, reason, actor, as_json):
    """Change the severity to LEVEL, like SEV1; response targets and the escalation ladder follow.
    Lowering it needs --reason."""
    with reason_required():
        events = ctx.engine_service().command("severity", incident_id, actor, level, reason)
    _print_events(events, as_json)


@group.command("note")
@incident_argument()
@click.argument("text")
@actor_option
@json_option()
@click.pass_obj
def note(ctx: Context, incident_id, text, actor, as_json):
    """Add a note to the timeline."""
    _print_events(ctx.engine_service().command("note", incident_id, actor, text), as_json)


@group.command("resolve")
@incident_argument()
@click.option("--keep-degradations", is_flag=True, help="Leave applied degradations in place.")
@click.option("--dry-run", is_flag=True, help="Print what resolving would write (each degradation it restores, "
                                              "flag by flag) and change nothing.")
@actor_option
@json_option()
@click.pass_obj
def resolve(ctx: Context, incident_id, keep_degradations, dry_run, actor, as_json):
    """Resolve the incident; restores applied degradations unless --keep-degradations. Each
    restore prints what it writes ("rtc.video.max-bitrate-kbps → 1500 (restored)"), as --dry-run
    does without writing or resolving."""
    if dry_run:
        plans = () if keep_degradations else ctx.engine_service().query("plan_resolve", incident_id)
        if as_json:
            dump({"resolves": True, "restores": [{"degradation": p.degradation, "lines": list(p.lines)}
                                                 for p in plans]})
            return
        if not plans:
            echo("would resolve; no flags are flipped" + (" (degradations kept)" if keep_degradations else ""))
        for plan in plans:
            _print_plan(plan, False)
        return
    _print_events(ctx.engine_service().command("resolve", incident_id, actor, keep_degradations), as_json)


@group.command("stop")
@incident_argument()
@click.argument("step")
@actor_option
@json_option()
@click.pass_obj
def stop(ctx: Context, incident_id, step, actor, as_json):
    """Stop STEP's background command now: SIGTERM to its process group, SIGKILL 5 s later if any of
    it still runs. One on another host is not signalled (its end is recorded as such)."""
    _print_events(ctx.engine_service().command("stop_background", incident_id, actor, step), as_json)


@group.command("tick")
@incident_argument()
@json_option()
@click.pass_obj
def tick(ctx: Context, incident_id, as_json):
    """Fire every timer that is due (escalations, reminders, target breaches, polls), in order.

    Only while this command holds the incident's timer lease (taken when free or ended, let go
    when it exits): while another runbook holds it (`runbook serve`, a TUI), nothing fires here
    and one line says who runs them (exit 0)."""
    service = ctx.engine_service()
    _print_events(service.command("tick", incident_id), as_json)
    _timers_elsewhere(service, incident_id, as_json)


@group.command("resume")
@incident_argument()
@click.pass_obj
def resume(ctx: Context, incident_id):
    """Settle what a crash left half-done (flag changes, actions, notices), fire due timers, show it."""
    service = ctx.engine_service()
    _print_events(service.command("reconcile", incident_id, force=True) + service.command("tick", incident_id), False)
    _timers_elsewhere(service, incident_id, False)
    for line in service.read(lambda engine: summary(engine.state(incident_id), engine.clock.now())):
        echo(line)


@group.command("export")
@incident_argument()
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
@click.pass_obj
def export(ctx: Context, incident_id, fmt, output):
    """Export a postmortem skeleton (md) or the whole log with metrics (json)."""
    service = ctx.engine_service()
    state = service.query("state", incident_id)
    check = service.query("integrity", incident_id)
    if fmt == "md":
        text = export_markdown(state)
        if not check.ok:  # the document itself says so: a postmortem must not pass an altered log as true
            text = f"> **{markdown(check.warning(state.id))}**\n\n" + text
    else:
        data = export_json(state)
        data["integrity"] = {"ok": check.ok, "problems": list(check.problems)}
        text = json_shown(json.dumps(data, indent=2, ensure_ascii=False))
    if not check.ok:
        echo(check.warning(state.id), err=True)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + ("\n" if not text.endswith("\n") else ""))
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        echo(f"wrote {output}")
    else:
        echo(text)


@group.command("verify")
@incident_argument(required=False)
@click.option("--init-key", is_flag=True, help="Create the chain key (runbook/chain.key in your config "
              "directory, or the file $RUNBOOK_CHAIN_KEY names; 0600, with its creation time); events "
              "appended from then on must be signed with it.")
@click.pass_obj
def verify_chain(ctx: Context, incident_id, init_key):
    """Check an incident's record: the hash chain, its opened event and every event's type, the
    summary against the log (each column that differs), the playbook snapshot it runs on, and the
    signatures and signed anchor when a chain key exists. Exit 1 naming every problem, one per
    line; works on a record too damaged to show (no snapshot, no summary row).

    The chain key is $RUNBOOK_CHAIN_KEY when set (a missing one is an error for commands that
    write), else runbook/chain.key in your config directory."""
    if init_key:
        from runbook.store import create_chain_key

        echo(f"created {create_chain_key()}; events appended from now on are signed with it")
        if incident_id is None:
            return
    if incident_id is None:
        raise UsageError("name the incident to verify (or give --init-key)")
    service = ctx.engine_service()
    full = service.query("resolve_id", incident_id)
    check = service.query("integrity", full)
    if check.ok:
        echo(f"{full}: {check.summary}")
        return
    for problem in check.problems:
        echo(f"{full}: {problem}")
    raise click.exceptions.Exit(1)


@group.command("metrics")
@incident_argument()
@click.pass_obj
def show_metrics(ctx: Context, incident_id):
    """Print TTA, TTM, TTR, per-step durations and the highest escalation level as JSON."""
    state = ctx.engine_service().query("state", incident_id)
    dump(metrics(state, datetime.now(UTC)).to_dict())


group.add_command(roles.assign)
group.add_command(roles.leave)
group.add_command(roles.close)
group.add_command(roles.signal)
