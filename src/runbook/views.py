"""What a screen shows of an incident, built from its state: immutable views whose every text has
been through `runbook.text` (titles, names and timeline rows with `one_line`, instructions and
messages with `shown`), so no control or bidi character from a log, a playbook or a label reaches
a terminal. The TUI (through its gateway) and the status page of `runbook serve` both render
these; neither folds events nor reads the store itself. The status page escapes them once more,
for HTML."""

from datetime import datetime
from typing import NamedTuple

from runbook.engine import answers, stages, texts, timers
from runbook.engine.safeguards import AUTO
from runbook.engine.metrics import describe
from runbook.engine.roles import waiting_for
from runbook.engine.state import IncidentState
from runbook.errors import RunbookError
from runbook.text import one_line, shown

TIMELINE_ROWS = 200
OUTPUT_LINES = 40  # of a step's last run, shown under the current step (the panel scrolls)

# The view records are NamedTuples, not dataclasses: immutable and compared by value all the
# same, and defining one costs a fifth as much, which the TUI pays before its first frame.


class StepRow(NamedTuple):
    id: str
    title: str
    kind: str
    status: str
    attempt: int
    current: bool
    settled: bool = False  # a restore step whose degradation is no longer applied (resolve restored it)


class TrackView(NamedTuple):
    id: str
    title: str
    role: str | None
    steps: tuple[StepRow, ...]
    current: str | None


class CurrentStep(NamedTuple):
    track: str
    id: str
    title: str
    kind: str
    instructions: str
    question: str
    options: tuple[str, ...]
    timebox_left: float | None
    approval_by: str | None
    approved_by: str | None
    automated: bool
    command: str
    degradation: str | None
    status: str
    role: str | None
    template: str | None
    last_poll: str
    approval_prompt: str = ""
    ran: bool = False  # whether its command ran; then exit_code and output are its last run's
    exit_code: int | None = None
    output: str = ""  # the tail of that run's stdout and stderr (OUTPUT_LINES lines), escaped
    output_of: str = ""  # the step that run was of: this one, or the step a decision's from: reads
    suggested: str = ""  # "Clean up (from check-disk: used=93)": the option its from: suggests
    suggested_index: int | None = None
    handoff: str | None = None  # a handoff step: the playbook the linked incident runs
    holder: str | None = None  # who holds the approving role; None when nobody does
    waiting_for: str | None = None  # the step (in another track) this one waits for, while not done
    option_degradations: tuple[str | None, ...] = ()  # the degradation each option applies, if any
    post_to: str = ""  # a communicate step: where its message goes (channel · audience)


class LadderRow(NamedTuple):
    level: int
    who: str
    after: int
    notified: bool


class FlagView(NamedTuple):
    name: str
    summary: str
    applied: bool
    pending: bool
    flags: tuple[tuple[str, str], ...]
    share: int | None = None  # a staged degradation: the share of users it is at
    ladder: str = ""  # "stage 1 of 3 (10%), next stage 50% in 4m10s, checks: call-drops holds (...)"
    automatic: bool = False  # applied by itself (a symptom's auto_degrade), not by a person
    stages: tuple[int, ...] = ()  # a staged degradation (rollout:): each stage's share; () when not staged
    stage: int = -1  # the stage applied (0-based; -1 none)
    held: bool = False  # a responder holds it at this stage: it does not advance by itself
    unwinding: bool = False  # restoring in stages
    compact: str = ""  # the ladder in a few words for a narrow screen: "10% → 50% in 4m10s, call-drops ok"

    @property
    def label(self) -> str:
        """"audio-only", "audio-only 10% → 50% in 4m10s, call-drops ok (automatic)"."""
        if self.compact:
            share = f" {self.compact}"
        else:
            share = f" {self.share}%" if self.share is not None and self.share < 100 else ""
        return f"{self.name}{share}" + (" (automatic)" if self.automatic else "")


class Line(NamedTuple):
    seq: int
    at: datetime
    rel: float
    actor: str
    type: str
    text: str
    loud: str | None  # "warning" / "error": announced with a notification and the bell
    tone: str  # the style family of the line: "", note, warning, error, flag, reminder


class IncidentView(NamedTuple):
    id: str
    title: str
    playbook: str
    severity: str
    severities: tuple[str, ...]
    status: str
    drill: bool
    now: datetime
    opened_at: datetime
    acknowledged_by: str | None
    targets: tuple[tuple[str, float, bool, bool], ...]  # name, seconds left (negative: late), met, breached
    next_escalation: tuple[int, float] | None  # level, seconds until
    tracks: tuple[TrackView, ...]
    current: tuple[CurrentStep, ...]
    ladder: tuple[LadderRow, ...]
    flags: tuple[FlagView, ...]
    timeline: tuple[Line, ...]
    events: int
    last_seq: int
    degradations: tuple[str, ...] = ()
    altered: str = ""  # what is wrong with the incident's record, when it does not verify
    parameters: tuple[tuple[str, str, str], ...] = ()  # name, value, where it came from
    phase: str = "response"  # response, follow-up, closed, or resolved (no follow-up phase)
    roles: tuple[tuple[str, str, str | None], ...] = ()  # role id, title, holder (None: nobody)
    resolved_at: datetime | None = None  # once resolved, the screen's clocks stop here
    by_pager: bool = False  # levels after the first are the pager's own escalation (RUNBOOK_ESCALATION=pager)

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the incident opened, up to its resolution (time stops once resolved)."""
        return ((self.resolved_at or self.now) - self.opened_at).total_seconds()


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


def _maybe(text: str | None) -> str | None:
    return None if text is None else one_line(text)


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
            fill = lambda text: texts.text(state, text, step, now)  # noqa: E731 - the step's templates
            current.append(CurrentStep(
                track.id, step.id, one_line(fill(step.title)), step.kind, shown(fill(step.instructions or "")),
                shown(fill(step.question or "")), tuple(one_line(o.label) for o in step.options), left,
                _maybe(step.approval.by if step.approval else None), _maybe(run.approved_by if run.approved else None),
                step.automated, _command(state, step, now), _maybe(step.degradation), run.status,
                _maybe(step.role or track.role), shown(fill(step.template)) if step.template else None,
                one_line(run.last_poll or ""), shown(fill(step.approval.prompt)) if step.approval else "",
                *_last_run(state, step), *_suggested(state, step), _maybe(step.playbook),
                _maybe(state.holders.get(step.approval.by)) if step.approval else None,
                _maybe(waiting_for(state, step)),
                tuple(_maybe(o.degradation) for o in step.options),
                " · ".join(one_line(x) for x in (step.channel, step.audience) if x)))
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
                              deg.stage, deg.held, deg.unwinding, one_line(stages.compact(state, name, now))))
    opened = state.opened_at
    lines = tuple(Line(e.seq, e.at, (e.at - opened).total_seconds(), one_line(e.actor), e.type, describe(e),
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
                           for rid, role in pb.roles.items()), state.resolved_at, state.escalation.by_pager)


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
