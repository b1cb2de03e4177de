"""What a screen shows of an incident, built from its state: immutable views whose every text has
been through `runbook.text` (titles, names and timeline rows with `one_line`, instructions and
messages with `shown`), so no control or bidi character from a log, a playbook or a label reaches
a terminal. The TUI (through its gateway) and the status page of `runbook serve` both render
these; neither folds events nor reads the store itself. The status page escapes them once more,
for HTML."""

from datetime import datetime

from runbook.catalog.durations import format_duration
from runbook.engine import answers, approvals, background, cadence, conditions, expectations, stages, texts, timers
from runbook.engine.completion import completion
from runbook.engine.events import shown_argv
from runbook.engine.metrics import describe, step_titles
from runbook.engine.owner import host
from runbook.engine.roles import waiting_for
from runbook.engine.safeguards import AUTO
from runbook.engine.state import FAILED, IncidentState
from runbook.errors import RunbookError
from runbook.text import editable, one_line, shown

# the records themselves live apart, free of the engine (view_models.py); screens import them from here
from runbook.view_models import (
    BackgroundView,
    CurrentStep,
    FlagView,
    IncidentView,
    LadderRow,
    LeftStep,
    Line,
    StepRow,
    TrackView,
    UpdateView,
)

TIMELINE_ROWS = 200
OUTPUT_LINES = 40  # of a step's last run, shown under the current step (the panel scrolls)


def _command(state, step, now) -> str:
    """The exact command that runs (shell-quoted), or the prometheus: check read, filled by the one
    renderer (engine/texts.py)."""
    if step.run is not None:
        return one_line(texts.shown_command(state, step, now))
    if step.uses:
        try:
            params = texts.params(state, step, now)
        except RunbookError as exc:
            return one_line(f"{step.uses} (cannot run yet: {exc})")
        return one_line(f"{step.uses} {params}" if params else step.uses)
    if step.prometheus is not None:
        return one_line(texts.shown_check(state, step, now))
    return ""


def _tail(output: str) -> str:
    lines = output.rstrip("\n").splitlines()
    cut = ["[… earlier lines in `runbook incident show` and the export]"] if len(lines) > OUTPUT_LINES else []
    return shown("\n".join(cut + lines[-OUTPUT_LINES:]))


def _last_run(state, step) -> tuple:
    """The last run shown under the current step: its own, else (a decision) the run its from: reads."""
    run = state.steps[step.id]
    if not run.ran and step.answer_from and step.answer_from.step in state.steps:
        run = state.steps[step.answer_from.step]
    if not run.ran:
        return False, None, "", ""
    return True, run.exit_code, _tail(run.output), one_line(run.id)


def _suggested(state, step) -> tuple[str, int | None]:
    hint = answers.suggestion(state, step) if step.answer_from else None
    if hint is None:
        return "", None
    return one_line(f"{hint.index + 1}. {hint.label} (from {hint.source})"), hint.index


def _option(state, option) -> str:
    """An option's label, and why it is not offered when its when: does not hold."""
    why = conditions.unmet(state, option.when)
    return one_line(option.label) + (f" (not offered: {one_line(why)})" if why else "")


def _ask(state, step) -> tuple:
    """An ask step's (what it asks, the parameter, its value now); nothing for other steps."""
    if step.kind != "ask":
        return "", None, None
    value = state.parameters.get(step.parameter)
    return (one_line(texts.asked(state, step)), state.playbook.parameters.get(step.parameter),
            None if value is None else one_line(value))


def _maybe(text: str | None) -> str | None:
    return None if text is None else one_line(text)


def incident_view(engine, incident: str, altered: str | None = None) -> tuple[IncidentView, str]:
    """The incident's view now, and what the check of its record found ("" when nothing): checked
    here (from the latest checkpoint on) unless `altered` says already."""
    state = engine.state(incident)
    if altered is None:
        altered = "; ".join(engine.integrity(state.id, full=False).problems)
    return build_view(state, engine.clock.now(), altered), altered


def build_view(state: IncidentState, now: datetime, altered: str = "") -> IncidentView:
    pb = state.playbook
    targets = []
    for name, (deadline, met) in timers.deadlines(state).items():
        targets.append((name, (deadline - now).total_seconds(), met is not None, name in state.breaches or
                        (met is not None and met > deadline)))
    nxt = timers.next_escalation(state)
    tracks, current = [], []
    current_ids = set(state.current_steps())  # in the follow-up phase, only the follow-up's
    for track in pb.tracks:
        rows = tuple(StepRow(s.id, one_line(texts.text(state, s.title, s, now)), s.kind, state.steps[s.id].status,
                             state.steps[s.id].attempt, state.current.get(track.id) == s.id,
                             s.kind == "restore" and s.degradation in state.degradations
                             and not state.degradations[s.degradation].touched) for s in track.steps)
        tracks.append(TrackView(track.id, one_line(track.title), _maybe(track.role), rows,
                                state.current.get(track.id)))
        step_id = state.current.get(track.id)
        if step_id and step_id in current_ids:
            step, run = pb.step(step_id), state.steps[step_id]
            left = None
            if step.timebox and run.started_at:
                left = step.timebox - (now - run.started_at).total_seconds()
            fill = lambda text: texts.text(state, text, step, now)  # noqa: E731, B023 - this step's, used at once
            stale = approvals.stale(state, step) if step.approval else ""
            gate = approvals.covered(state, step) if step.approval else None  # what approving now records
            current.append(CurrentStep(
                track.id, step.id, one_line(fill(step.title)), step.kind, shown(fill(step.instructions or "")),
                shown(fill(step.question or "")), tuple(_option(state, o) for o in step.options), left,
                _maybe(step.approval.by if step.approval else None),
                _maybe(run.approved_by if run.approved and not stale else None),
                step.automated, _command(state, step, now), _maybe(step.degradation), run.status,
                _maybe(step.role or track.role), shown(fill(step.template)) if step.template else None,
                one_line(run.last_poll or ""), shown(fill(step.approval.prompt)) if step.approval else "",
                *_last_run(state, step), *_suggested(state, step), _maybe(step.playbook),
                _maybe(state.holders.get(step.approval.by)) if step.approval else None,
                _maybe(waiting_for(state, step)),
                tuple(_maybe(o.degradation) for o in step.options),
                " · ".join(one_line(x) for x in (step.channel, step.audience) if x), one_line(stale),
                _covers(run, stale, gate), gate,
                *_ask(state, step), step.compose,
                *((one_line(fill(step.hand_to.name)), one_line(fill(step.hand_to.contact)), step.resolves)
                  if step.hand_to is not None else ()), interactive=step.interactive,
                background=(f"“{one_line(step_titles(state).get(step.background_until, step.background_until))}” ends"
                            if step.background_until else "resolve")
                if step.background else "",
                approved_text=_maybe(approvals.approved_text(state, step)) if step.compose and not stale else None,
                expects=one_line(expectations.in_words(step)),
                found=one_line(run.reason) if step.expect and run.status == FAILED else "",
                waits_for=one_line(waited(state, step))))
    ladder = []
    policy = timers.ladder(state)  # the current severity's
    if policy:
        for index, level in enumerate(policy.levels, 1):
            people = timers.recipients(state, level, now)
            ladder.append(LadderRow(index, one_line(", ".join(p.name for p in people)), level.escalate_after,
                                    index <= state.escalation.reached))
    flags = []
    for name, spec in pb.degradations.items():
        deg = state.degradations[name]
        automatic = deg.applied and deg.applied_by == AUTO
        flags.append(FlagView(one_line(name), one_line(spec.summary or ""), deg.applied, deg.pending is not None,
                              tuple((one_line(flag), one_line(_show(value))) for flag, value in spec.set.items()),
                              deg.share if deg.applied else None, one_line(stages.describe(state, name, now)),
                              automatic, tuple(share for share, _ in spec.rollout.stages) if spec.rollout else (),
                              deg.stage, deg.held, deg.unwinding, one_line(stages.compact(state, name, now)),
                              one_line(stages.in_words(state, name)), one_line(stages.held_why(state, name))))
    left, verdict = _left(state, now) if state.resolved else ((), "")
    opened = state.opened_at
    titles = step_titles(state)
    lines = tuple(Line(e.seq, e.at, (e.at - opened).total_seconds(), one_line(e.actor), e.type, describe(e, titles),
                       e.record.loud, e.record.tone)
                  for e in state.events[-TIMELINE_ROWS:])
    return IncidentView(
        state.id, one_line(state.title), one_line(pb.id), one_line(state.severity),
        tuple(one_line(lv.id) for lv in state.snapshot.levels), state.status,
        state.drill, now, opened, _maybe(state.acknowledged_by), tuple(targets),
        (nxt.data["level"], (nxt.at - now).total_seconds()) if nxt else None, tuple(tracks), tuple(current),
        tuple(ladder), tuple(flags), lines, len(state.events), state.last_seq,
        tuple(one_line(name) for name in pb.degradations), one_line(altered or state.tampered),
        tuple((one_line(name), one_line(str(value)), state.parameter_sources.get(name, ""))
              for name, value in state.parameters.items()),
        state.phase, tuple((one_line(rid), one_line(role.title), _maybe(state.holders.get(rid)))
                           for rid, role in pb.roles.items()), state.resolved_at, state.escalation.by_pager,
        left, verdict, _background(state, now, titles),
        _updates(state, now),
        tuple((one_line(rid), tuple(one_line(p) for p in state.members.get(rid, ()))) for rid, role in pb.roles.items()
              if role.many))


def _background(state: IncidentState, now: datetime, titles: dict) -> tuple[BackgroundView, ...]:
    """The background commands running, each as its handle was recorded."""
    here = host()
    return tuple(BackgroundView(one_line(e.record.step), one_line(titles.get(e.record.step, e.record.step)),
                                one_line(shown_argv(e.record.argv)), e.record.pid, one_line(e.record.host),
                                e.record.host == here, (now - e.at).total_seconds(), _maybe(e.record.until),
                                background.GRACE, e.record.pgid)
                 for e in background.running(state))


def waited(state: IncidentState, step) -> str:
    """What a wait on the incident's own alert waits for (and where the alert is now), and what "no
    data" means to a prometheus: wait that says."""
    out = []
    if step.wait_alert:
        alert = state.labels.get("alertname") or state.symptom or "the incident's alert"
        now = "firing" if state.alert_firing else f"resolved at {state.alert_changes[-1][0]:%H:%M:%S}"
        out.append(f"alert {alert} to be {step.wait_alert} (now {now})")
    if step.on_no_data:
        out.append(f"no data counts as {step.on_no_data.replace('-', ' ')}")
    return " · ".join(out)


def _updates(state: IncidentState, now: datetime) -> tuple[UpdateView, ...]:
    """The communicate steps posting on a cadence now: when each posts next, or that it is due."""
    out = []
    for step in cadence.repeating(state):
        due = step.id in state.posts_due
        repeat, why, due_at = state.posts_due.get(step.id, (0, "", None))
        stale = approvals.refusal_if_changed(state, step) if step.approval else ""
        out.append(UpdateView(one_line(step.id), one_line(texts.text(state, step.title, step, now)),
                              one_line(cadence.status(state, step, now)), due,
                              None if due else cadence.next_at(state, step), step.compose,
                              editable(cadence.posts(state, step.id)[-1].record.text) if step.compose else "",
                              bool(step.approval and (step.compose or stale)), one_line(stale),
                              approvals.covered(state, step) if step.approval else None,
                              format_duration(step.repeat.every), due_at, repeat, one_line(why),
                              len(cadence.posts(state, step.id))))
    return tuple(out)


def _left(state: IncidentState, now: datetime) -> tuple[tuple[LeftStep, ...], str]:
    """What a resolved incident did not do, and the one-line verdict (engine/completion.py)."""
    done = completion(state)
    pb = state.playbook
    titles = {track.id: track.title for track in pb.tracks}
    return tuple(LeftStep(one_line(texts.text(state, pb.step(item.step).title, pb.step(item.step), now)),
                          one_line(titles[item.track]), item.status, one_line(item.reason), item.settled)
                 for item in done.not_done), done.verdict()


def _covers(run, stale: str, gate: dict | None) -> tuple[str, ...]:
    """What the step's gate covers: as approved while the approval holds, else `gate`, what
    approving it now records (computed by the code that records it, engine/approvals.py)."""
    if gate is None:
        return ()
    content = run.approved_content if run.approved and not stale and run.approved_content else gate
    return tuple(shown(approvals.labelled(name, value)) for name, value in approvals.lines(content))


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
