"""Typed, immutable views of validated documents.

Records are NamedTuples (immutable, compared by value, and about five times cheaper to define
than dataclasses, which every command pays at start-up); Playbook stays a frozen dataclass
for its cached step index.

Models are built only from documents that passed their JSON Schema, so constructors can
trust shapes; cross-document meaning (do references resolve?) is the linter's job.
Durations are stored in seconds. `path` fields point back into the source document so the
linter can report positions.

No `from __future__ import annotations` here: typing.NamedTuple compiles every annotation given
as text into a ForwardRef, which cost each start about 1.2 ms for these 29 records.
"""

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from runbook.catalog.durations import parse_duration
from runbook.metric_checks import MetricCheck

MAIN_TRACK = "main"
FOLLOWUP_TRACK = "followup"  # the steps after resolve (postmortem, action items, customer follow-up)
END = "end"
KEEP_POLLING, FAIL = "keep-polling", "fail"  # the on_broken policies that name no step


def _seconds(value):
    return None if value is None else parse_duration(value)


class When(NamedTuple):
    """A condition: every test given holds. Without a subject, on a decision's option, the tests
    read the decision's `from:` value (the option is suggested). With one (a parameter's or an
    alert label's value, the severity, the symptom that fired), on a step it decides whether the
    step runs and on an option whether it is offered."""

    equals: str | float | None = None
    matches: str | None = None
    above: float | None = None
    below: float | None = None
    param: str | None = None  # the tests read this parameter's value
    label: str | None = None  # ...or this alert label's value
    severity: tuple[str, ...] = ()  # the incident's severity is one of these
    symptom: tuple[str, ...] = ()  # the symptom that fired is one of these

    @property
    def subject(self) -> bool:
        """Whether it tests the incident (param, label, severity, symptom), not a from: value."""
        return bool(self.param or self.label or self.severity or self.symptom)


def _when(raw: dict | None) -> When | None:
    if not raw:
        return None
    listed = {key: (raw[key],) if isinstance(raw[key], str) else tuple(raw[key])
              for key in ("severity", "symptom") if key in raw}
    return When(**{**raw, **listed})


class Option(NamedTuple):
    label: str
    next: str | None = None
    degradation: str | None = None
    summary: str = ""
    mitigates: bool = False
    when: When | None = None


class Expect(NamedTuple):
    """What a command's output must say for its step to pass (or its wait to hold): the value read
    (the JSON path's, else the whole output, trimmed) meets every test; `findings` are exit
    statuses that report what was looked for (git fsck's 1), an answer rather than a failure."""

    json: str | None = None
    equals: str | float | None = None
    matches: str | None = None
    above: float | None = None
    below: float | None = None
    findings: tuple[int, ...] = ()

    @property
    def tests(self) -> When:
        return When(self.equals, self.matches, self.above, self.below)


class Capture(NamedTuple):
    """A value taken from a step's output: the one group of `regex`, or the `json` path's value."""

    name: str
    regex: str | None = None
    json: str | None = None
    suggest: str = ""  # what to do when it finds nothing, shown with the miss
    jmespath: str | None = None  # the output read as JSON, selected with this JMESPath expression


class AnswerFrom(NamedTuple):
    """Where a decision's suggested answer comes from: a value `step` captured, or its exit code."""

    step: str
    capture: str | None = None
    exit_code: bool = False


class Retry(NamedTuple):
    """A failed automation runs again, `count` more times, each `delay` seconds after the failure."""

    count: int
    delay: int = 30


class Approval(NamedTuple):
    by: str
    prompt: str = ""


class WaitFor(NamedTuple):
    """A step that cannot be completed before another step (usually in another track) is done, or
    before someone gives a signal (`runbook incident signal ID NAME`: "the commander says go")."""

    step: str | None = None
    signal: str | None = None


class HandTo(NamedTuple):
    """Who takes an incident over when that is not a playbook: a vendor's support, a security
    process, another team; both texts are templates, recorded as shown when handed off."""

    name: str
    contact: str


class Repeat(NamedTuple):
    """A communicate step posting again on a cadence: `every` seconds after its last post, until
    the incident is mitigated or resolved, or `when` holds; always until resolve."""

    every: int
    until: str = "resolved"  # mitigated, resolved, or condition (then `when` says which)
    when: When | None = None


def _repeat(raw: dict | None) -> Repeat | None:
    if not raw:
        return None
    until = raw.get("until", "resolved")
    if isinstance(until, dict):
        return Repeat(parse_duration(raw["every"]), "condition", _when(until))
    return Repeat(parse_duration(raw["every"]), until)


class Step(NamedTuple):
    id: str
    kind: str
    title: str
    track: str
    index: int
    path: tuple
    instructions: str = ""
    role: str | None = None
    timebox: int | None = None
    next: str | None = None
    mitigates: bool = False
    approval: Approval | None = None
    destructive: bool = False
    question: str | None = None
    options: tuple[Option, ...] = ()
    degradation: str | None = None
    run: tuple[str, ...] | None = None
    uses: str | None = None
    params: dict = {}  # shared by steps without parameters: read-only, like every model
    timeout: int | None = None
    every: int | None = None
    on_fail: str | None = None
    on_timeout: str | None = None
    channel: str | None = None
    audience: str | None = None
    status: str | None = None  # a communicate step's public phase (investigating, identified, monitoring, resolved)
    template: str | None = None
    cwd: str | None = None
    env: dict = {}  # shared by steps without an environment: read-only
    captures: tuple[Capture, ...] = ()
    answer_from: AnswerFrom | None = None  # a decision's from:
    backoff: float = 1  # a wait's interval is multiplied by this after each poll
    max_every: int | None = None  # ...up to this
    poll_timeout: int | None = None  # one poll's own timeout (default: every, at most 60 s)
    not_yet: tuple[int, ...] | None = None  # exit statuses that mean "not yet" (None: the default rule)
    broken: tuple[int, ...] = ()  # exit statuses that mean the check itself broke
    on_broken: str = KEEP_POLLING  # keep-polling, fail, or a step id
    wait_time: int | None = None  # a plain timed wait: due this long after it starts (for:)
    retry: Retry | None = None
    playbook: str | None = None  # handoff: the playbook the linked incident runs
    procedure: str | None = None  # include: the procedure included; an included step: the one it came from
    lint_ignore: tuple[str, ...] = ()  # warning codes silenced for this step (lint: {ignore, reason})
    wait_for: WaitFor | None = None
    prometheus: MetricCheck | None = None  # a wait's or verify's check on a Prometheus query (metric_checks.py)
    parameter: str | None = None  # an ask step: the parameter whose value it asks for
    when: When | None = None  # the step runs only when this holds; else it is skipped, saying why
    expect: Expect | None = None  # what its command's output must say (engine/expectations.py)
    wait_alert: str | None = None  # a wait on the incident's own alert: "resolved"
    on_no_data: str | None = None  # what a prometheus: wait's "no data" means: holds, not-yet or broken
    compose: bool = False  # a communicate step whose message the responder writes when posting it
    hand_to: HandTo | None = None  # a handoff to someone who is not a playbook (to:)
    resolves: bool = False  # ...whose completion resolves the incident (else it stays open and goes on)
    interactive: bool = False  # its run: command runs attached to the responder's terminal, output not captured
    background: bool = False  # its run: command keeps running after the step is done, until stopped
    background_until: str | None = None  # ...stopped once this step is done or skipped (None: at resolve)
    repeat: Repeat | None = None  # a communicate step posting again on a cadence (engine/cadence.py)

    @property
    def automated(self) -> bool:
        return self.run is not None or self.uses is not None or self.prometheus is not None

    @property
    def timed(self) -> bool:
        """A plain timed wait: nothing to poll, it comes due when its time is up."""
        return self.kind == "wait" and self.wait_time is not None and not self.automated


class Track(NamedTuple):
    id: str
    title: str
    role: str | None
    steps: tuple[Step, ...]
    path: tuple

    @property
    def followup(self) -> bool:
        """The follow-up phase: current from resolve until the incident is closed."""
        return self.id == FOLLOWUP_TRACK


class LabelMatcher(NamedTuple):
    name: str
    equals: tuple[str, ...] = ()
    regex: str | None = None


class Symptom(NamedTuple):
    id: str
    summary: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    labels: tuple[LabelMatcher, ...] = ()
    false_positives: tuple[str, ...] = ()
    severity_rises: tuple[tuple[int, str], ...] = ()
    auto_degrade: str | None = None  # a degradation applied by itself when an alert opens the incident
    auto_severities: tuple[str, ...] = ()  # ...only at these severities (empty: any)
    group_by: tuple[str, ...] | None = None  # labels making one group of sibling alerts (None: the default)


class StageCheck(NamedTuple):
    """A check that must hold while a stage holds: a Prometheus instant query and its condition."""

    name: str
    query: str
    expect: str


class Rollout(NamedTuple):
    """A degradation applied in stages (flagd fractional shares), each held while its checks pass."""

    stages: tuple[tuple[int, int], ...]  # (share in percent, hold in seconds), growing shares
    by: str = "targetingKey"
    checks: tuple[StageCheck, ...] = ()
    check_every: int = 30
    on_failure: str = "restore"  # previous or restore
    on_check_broken: str = "hold"  # hold or rollback
    mitigates_at: int | None = None  # the share from which a mitigating step counts (default: the last stage's)

    @property
    def mitigating_stage(self) -> int:
        """The stage (0-based) from which a degrade step with mitigates: true marks the incident
        mitigated: the one whose share is `mitigates_at`, else the last."""
        shares = [share for share, _ in self.stages]
        return shares.index(self.mitigates_at) if self.mitigates_at in shares else len(shares) - 1


class Degradation(NamedTuple):
    name: str
    summary: str
    set: dict
    restore: dict | None = None
    impact: str = ""
    rollout: Rollout | None = None


def _rollout(raw: dict | None) -> Rollout | None:
    if not raw:
        return None
    hold = parse_duration(raw.get("hold", "5m"))
    stages = tuple((s, hold) if isinstance(s, int) else (s["share"], parse_duration(s["hold"]) if "hold" in s else hold)
                   for s in raw["stages"])
    checks = tuple(StageCheck(c.get("name") or f"check-{n}", c["prometheus"]["query"],
                              c["prometheus"]["expect"].strip())
                   for n, c in enumerate(raw.get("checks", ()), 1))
    return Rollout(stages, raw.get("by", "targetingKey"), checks, parse_duration(raw.get("check_every", "30s")),
                   raw.get("on_failure", "restore"), raw.get("on_check_broken", "hold"), raw.get("mitigates_at"))


class Reminder(NamedTuple):
    id: str
    every: int
    message: str
    role: str | None = None
    start: str = "opened"
    until: str = "resolved"


class Parameter(NamedTuple):
    """A value the incident supplies: from --param, an alert label, its default, or a form."""

    name: str
    summary: str = ""
    type: str = "string"  # string, integer, number, boolean
    pattern: str | None = None
    required: bool = True
    default: str | None = None
    label: str | None = None  # the alert label that fills it


class Role(NamedTuple):
    id: str
    title: str
    summary: str = ""
    many: bool = False  # held by several people at once; assigning adds one
    enforced: bool = False  # its steps are worked only by a holder


class SeverityFrom(NamedTuple):
    """Which alert label sets the severity at open, and how its values map to severity levels."""

    label: str
    map: dict  # label value -> severity level id

    def severity(self, labels: dict) -> str | None:
        """The mapped severity for these labels, or None when the label is absent or its value unmapped."""
        value = labels.get(self.label)
        return None if value is None else self.map.get(str(value))


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    service: str
    severity: str
    escalation: str | None  # the default policy: the only one, or the one for severities not in
    # escalation_by_severity; None when no severity the playbook runs at pages
    description: str = ""
    tags: tuple[str, ...] = ()
    severity_from: SeverityFrom | None = None
    escalation_by_severity: dict = field(default_factory=dict)  # severity level id -> policy id
    roles: dict = field(default_factory=dict)
    symptoms: tuple[Symptom, ...] = ()
    degradations: dict = field(default_factory=dict)
    reminders: tuple[Reminder, ...] = ()
    tracks: tuple[Track, ...] = ()
    parameters: dict = field(default_factory=dict)  # name -> Parameter
    templated: bool = False  # declares parameters:, so every text is a template (catalog/templates.py)
    on_alert_resolved: str = "record"  # what `runbook serve` does when the alert resolves: record or resolve
    page_label: str | None = None  # the alert label whose true/false decides whether it pages (else the severity)

    @cached_property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for track in self.tracks for step in track.steps)

    @cached_property
    def _steps_by_id(self) -> dict[str, Step]:
        by_id: dict[str, Step] = {}
        for step in self.steps:
            by_id.setdefault(step.id, step)
        return by_id

    def step(self, step_id: str) -> Step:
        return self._steps_by_id[step_id]

    @property
    def followup(self) -> Track | None:
        """The follow-up track (`followup:`), or None: then resolving is final, as before it existed."""
        last = self.tracks[-1] if self.tracks else None
        return last if last is not None and last.followup and last.steps else None

    @property
    def response_tracks(self) -> tuple[Track, ...]:
        """The tracks that start when the incident opens (every track but the follow-up)."""
        return tuple(track for track in self.tracks if not track.followup)

    @cached_property
    def asked(self) -> dict[str, tuple[str, ...]]:
        """Parameter name -> the ids of the ask steps that ask for it, in playbook order."""
        out: dict[str, tuple[str, ...]] = {}
        for step in self.steps:
            if step.kind == "ask" and step.parameter:
                out[step.parameter] = out.get(step.parameter, ()) + (step.id,)
        return out

    @cached_property
    def captures(self) -> dict[str, tuple[str, ...]]:
        """Captured name -> the ids of the steps that capture it, in playbook order."""
        out: dict[str, tuple[str, ...]] = {}
        for step in self.steps:
            for capture in step.captures:
                out[capture.name] = out.get(capture.name, ()) + (step.id,)
        return out

    def escalation_for(self, severity: str) -> str | None:
        """The id of the escalation policy in force at `severity`."""
        return self.escalation_by_severity.get(severity, self.escalation)

    @property
    def escalation_ids(self) -> list[str]:
        """Every escalation policy this playbook may page with, the default first."""
        return [p for p in dict.fromkeys([self.escalation, *self.escalation_by_severity.values()]) if p is not None]


def _untitled(kind: str, raw: dict) -> str:
    """A title for an untitled flip step, from what it flips ("Apply audio-only"), not its id (step-7)."""
    verb = {"degrade": "Apply", "restore": "Restore"}.get(kind)
    return f"{verb} {raw['degradation']}" if verb and raw.get("degradation") else ""


def _step(raw, track: str, index: int, path: tuple) -> Step:
    number = f"{index + 1}"
    default_id = f"step-{number}" if track == MAIN_TRACK else f"{track}-{number}"
    if isinstance(raw, str):
        return Step(id=default_id, kind="check", title=raw, track=track, index=index, path=path)
    if "include" in raw:  # expanded by catalog/procedures.py before an incident runs it
        return Step(id=raw.get("id", raw["include"]), kind="include", title=f"Procedure {raw['include']}",
                    track=track, index=index, path=path, next=raw.get("next"), role=raw.get("role"),
                    procedure=raw["include"])
    kind = raw.get("kind", "check")
    approval = raw.get("approval")
    ignore = raw.get("lint", {}).get("ignore", ())
    return Step(
        id=raw.get("id", default_id),
        kind=kind,
        title=raw.get("title") or raw.get("question") or _untitled(kind, raw) or default_id,
        track=track,
        index=index,
        path=path,
        instructions=_text(raw.get("instructions", "")),
        role=raw.get("role"),
        timebox=_seconds(raw.get("timebox")),
        next=raw.get("next"),
        mitigates=raw.get("mitigates", False),
        approval=Approval(approval["by"], approval.get("prompt", "")) if approval else None,
        destructive=raw.get("destructive", False),
        question=raw.get("question"),
        options=tuple(Option(o["label"], o.get("next"), o.get("degradation"), o.get("summary", ""),
                             o.get("mitigates", False), _when(o.get("when")))
                      for o in raw.get("options", ())),
        degradation=raw.get("degradation"),
        run=tuple(raw["run"]) if "run" in raw else None,
        uses=raw.get("uses"),
        params=dict(raw.get("with", {})),
        timeout=_seconds(raw.get("timeout")),
        every=_seconds(raw.get("every")),
        on_fail=raw.get("on_fail"),
        on_timeout=raw.get("on_timeout"),
        channel=raw.get("channel"),
        audience=raw.get("audience"),
        status=raw.get("status"),
        template=raw.get("template"),
        cwd=raw.get("cwd"),
        env=dict(raw.get("env", {})),
        captures=tuple(Capture(name, c.get("regex"), c.get("json"), c.get("suggest", ""), c.get("jmespath"))
                       for name, c in raw.get("capture", {}).items()),
        answer_from=AnswerFrom(raw["from"]["step"], raw["from"].get("capture"), raw["from"].get("exit_code", False))
        if "from" in raw else None,
        backoff=raw.get("backoff", 1),
        max_every=_seconds(raw.get("max_every")),
        poll_timeout=_seconds(raw.get("poll_timeout")),
        not_yet=tuple(raw["not_yet"]) if "not_yet" in raw else None,
        broken=tuple(raw.get("broken", ())),
        on_broken=raw.get("on_broken", KEEP_POLLING),
        wait_time=_seconds(raw.get("for")),
        retry=Retry(raw["retry"]["count"], _seconds(raw["retry"].get("delay", "30s"))) if "retry" in raw else None,
        playbook=raw.get("playbook"),
        procedure=raw.get("procedure"),
        lint_ignore=(ignore,) if isinstance(ignore, str) else tuple(ignore),
        wait_for=WaitFor(raw["wait_for"].get("step"), raw["wait_for"].get("signal")) if "wait_for" in raw else None,
        prometheus=(MetricCheck(raw["prometheus"]["query"], raw["prometheus"]["expect"])
                    if "prometheus" in raw else None),
        parameter=raw.get("parameter"),
        when=_when(raw.get("when")),
        expect=Expect(**{**raw["expect"], "findings": tuple(raw["expect"].get("findings", ()))})
        if "expect" in raw else None,
        wait_alert=raw.get("alert"),
        on_no_data=raw.get("on_no_data"),
        compose=raw.get("compose", False),
        hand_to=HandTo(raw["to"]["name"], raw["to"]["contact"]) if isinstance(raw.get("to"), dict) else None,
        resolves=raw.get("resolves", False),
        interactive=raw.get("interactive", False),
        background=bool(raw.get("background", False)),
        background_until=raw["background"].get("until") if isinstance(raw.get("background"), dict) else None,
        repeat=_repeat(raw.get("repeat")),
    )


def _track(track_id: str, raw_steps: list, path: tuple, title: str, role: str | None) -> Track:
    steps = tuple(_step(raw, track_id, i, path + (i,)) for i, raw in enumerate(raw_steps))
    return Track(track_id, title, role, steps, path)


def _labels(raw: dict) -> tuple[LabelMatcher, ...]:
    out = []
    for name, value in raw.items():
        if isinstance(value, dict):
            out.append(LabelMatcher(name, regex=value["regex"]))
        elif isinstance(value, list):
            out.append(LabelMatcher(name, equals=tuple(value)))
        else:
            out.append(LabelMatcher(name, equals=(value,)))
    return tuple(out)


def build_playbook(data: dict) -> Playbook:
    tracks = [_track(MAIN_TRACK, data["steps"], ("steps",), "Main", None)]
    for track_id, raw in data.get("tracks", {}).items():
        tracks.append(_track(track_id, raw["steps"], ("tracks", track_id, "steps"),
                             raw.get("title", track_id), raw.get("role")))
    if "followup" in data:
        raw = data["followup"]
        tracks.append(_track(FOLLOWUP_TRACK, raw["steps"], ("followup", "steps"), raw.get("title", "Follow-up"),
                             raw.get("role")))
    escalation = data.get("escalation")
    by_severity = {}
    if isinstance(escalation, dict):  # one policy per severity, with a default
        by_severity = {level: policy for level, policy in escalation.items() if level != "default"}
        escalation = escalation.get("default")
    severity_from = data.get("severity_from")
    filled = _filled_by_steps(data)
    return Playbook(
        id=data["id"],
        title=data["title"],
        service=data["service"],
        severity=data["severity"],
        escalation=escalation,
        description=_text(data.get("description", "")),
        tags=tuple(data.get("tags", ())),
        severity_from=SeverityFrom(severity_from.get("label", "severity"),
                                   {str(k): v for k, v in severity_from["map"].items()}) if severity_from else None,
        escalation_by_severity=by_severity,
        on_alert_resolved=data.get("on_alert_resolved", "record"),
        page_label=data.get("page_label"),
        roles={rid: Role(rid, r.get("title", rid), r.get("summary", ""), r.get("many", False), r.get("enforced", False))
               for rid, r in data.get("roles", {}).items()},
        symptoms=tuple(
            Symptom(
                id=s["id"],
                summary=s["summary"],
                description=s.get("description", ""),
                keywords=tuple(s.get("keywords", ())),
                labels=_labels(s.get("match", {}).get("labels", {})),
                false_positives=tuple(s.get("false_positives", ())),
                severity_rises=tuple((parse_duration(r["after"]), r["to"]) for r in s.get("severity_rises", ())),
                auto_degrade=(s.get("auto_degrade") or {}).get("degradation"),
                auto_severities=tuple((s.get("auto_degrade") or {}).get("severities", ())),
                group_by=tuple(s["group_by"]) if "group_by" in s else None,
            )
            for s in data.get("symptoms", ())
        ),
        degradations={
            name: Degradation(name, d["summary"], dict(d["set"]),
                              dict(d["restore"]) if "restore" in d else None, d.get("impact", ""),
                              _rollout(d.get("rollout")))
            for name, d in data.get("degradations", {}).items()
        },
        reminders=tuple(
            Reminder(r["id"], parse_duration(r["every"]), r["message"], r.get("role"),
                     r.get("from", "opened"), r.get("until", "resolved"))
            for r in data.get("reminders", ())
        ),
        tracks=tuple(tracks),
        parameters={name: _parameter(name, p, filled) for name, p in data.get("parameters", {}).items()},
        templated="parameters" in data,
    )


def _filled_by_steps(data: dict) -> set:
    """The names a step fills in during the incident: captured from output, or asked for."""
    raws = list(data["steps"]) + [s for t in data.get("tracks", {}).values() for s in t["steps"]]
    dicts = [raw for raw in raws if isinstance(raw, dict)]
    return {name for raw in dicts for name in raw.get("capture", {})} | {
        raw["parameter"] for raw in dicts if raw.get("kind") == "ask" and "parameter" in raw}


def _parameter(name: str, raw: dict, captured: set = frozenset()) -> Parameter:
    """A parameter a step captures or asks for is optional at open unless it says `required: true`."""
    default = raw.get("default")
    if isinstance(default, bool):
        default = "true" if default else "false"
    elif default is not None:
        default = str(default)
    return Parameter(name, raw.get("summary", ""), raw.get("type", "string"), raw.get("pattern"),
                     raw.get("required", default is None and name not in captured), default, raw.get("label"))


class Tier(NamedTuple):
    id: str
    title: str
    availability: str | None = None
    services: tuple[str, ...] = ()
    description: str = ""


class SeverityLevel(NamedTuple):
    id: str
    title: str
    targets: dict
    meaning: str = ""
    tier: str | None = None
    pages: bool = True
    pager_severity: str | None = None  # critical, error, warning or info; None: by rank (Snapshot.pager_severity)
    urgency: str | None = None  # high or low, sent to the pager; None: high when it pages


class SeverityPolicy(NamedTuple):
    id: str
    levels: tuple[SeverityLevel, ...]
    tiers: tuple[Tier, ...] = ()
    title: str = ""
    description: str = ""


def build_severity_policy(data: dict) -> SeverityPolicy:
    defaults = data.get("defaults", {}).get("targets", {})
    return SeverityPolicy(
        id=data["id"],
        title=data.get("title", data["id"]),
        description=data.get("description", ""),
        tiers=tuple(Tier(t["id"], t["title"], t.get("availability"), tuple(t.get("services", ())),
                         t.get("description", "")) for t in data.get("tiers", ())),
        levels=tuple(
            SeverityLevel(
                id=lv["id"],
                title=lv["title"],
                targets={name: parse_duration(value) for name, value in lv.get("targets", defaults).items()},
                meaning=lv.get("meaning", ""),
                tier=lv.get("tier"),
                pages=lv.get("pages", True),
                pager_severity=lv.get("pager_severity"),
                urgency=lv.get("urgency"),
            )
            for lv in data["levels"]
        ),
    )


class Shared(NamedTuple):
    """Parameters, roles and texts several playbooks take by reference (catalog/sharing.py);
    `data` is kept for expanding them into the playbooks."""

    id: str
    parameters: dict  # name -> Parameter
    roles: dict  # id -> Role
    texts: dict  # name -> text
    data: dict


def build_shared(data: dict) -> Shared:
    return Shared(data["id"], {name: _parameter(name, raw) for name, raw in data.get("parameters", {}).items()},
                  {rid: Role(rid, r.get("title", rid), r.get("summary", ""), r.get("many", False),
                             r.get("enforced", False)) for rid, r in data.get("roles", {}).items()},
                  dict(data.get("texts", {})), data)


def _text(value) -> str:
    """A text as written; a reference to a shared text not expanded (unknown: lint says so) reads as none."""
    return value if isinstance(value, str) else ""


class Procedure(NamedTuple):
    """A shared list of steps that playbooks include; `data` is kept for expanding it into them."""

    id: str
    title: str
    track: Track
    data: dict
    description: str = ""


def build_procedure(data: dict) -> Procedure:
    return Procedure(data["id"], data.get("title", data["id"]), _track(MAIN_TRACK, data["steps"], ("steps",),
                                                                       "Steps", None),
                     data, data.get("description", ""))


class Target(NamedTuple):
    kind: str  # "rotation" or "person"
    id: str


# No runbook we re-expressed gave an ack timeout; a level that does not say waits this long.
DEFAULT_ESCALATE_AFTER = "5m"


class EscalationLevel(NamedTuple):
    notify: tuple[Target, ...]
    escalate_after: int
    title: str = ""
    default_delay: bool = False  # escalate_after came from the policy's defaults (or the built-in one)


class EscalationPolicy(NamedTuple):
    id: str
    levels: tuple[EscalationLevel, ...]
    repeat: int = 0
    title: str = ""
    description: str = ""


def build_escalation_policy(data: dict) -> EscalationPolicy:
    delay = data.get("defaults", {}).get("escalate_after", DEFAULT_ESCALATE_AFTER)
    return EscalationPolicy(
        id=data["id"],
        title=data.get("title", data["id"]),
        description=data.get("description", ""),
        repeat=data.get("repeat", 0),
        levels=tuple(
            EscalationLevel(
                notify=tuple(Target(*next(iter(t.items()))) for t in lv["notify"]),
                escalate_after=parse_duration(lv.get("escalate_after", delay)),
                title=lv.get("title", f"Level {i + 1}"),
                default_delay="escalate_after" not in lv,
            )
            for i, lv in enumerate(data["levels"])
        ),
    )


class Person(NamedTuple):
    id: str
    name: str
    email: str = ""
    phone: str = ""
    chat: str = ""
    pager: str = ""
    pagerduty: str = ""  # the person's PagerDuty user id: their acknowledgements there are recorded as them
    matrix: str = ""  # the person's Matrix user id (@amira:example.org): their chat commands are recorded as them


class Rotation(NamedTuple):
    id: str
    members: tuple[str, ...]
    shift: int
    start: str
    title: str = ""


class Override(NamedTuple):
    rotation: str
    person: str
    start: str
    until: str


class Roster(NamedTuple):
    id: str
    timezone: str
    people: tuple[Person, ...]
    rotations: tuple[Rotation, ...] = ()
    overrides: tuple[Override, ...] = ()
    title: str = ""

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)


def build_roster(data: dict) -> Roster:
    return Roster(
        id=data["id"],
        title=data.get("title", data["id"]),
        timezone=data["timezone"],
        people=tuple(Person(p["id"], p["name"], p.get("email", ""), p.get("phone", ""), p.get("chat", ""),
                            p.get("pager", ""), p.get("pagerduty", ""), p.get("matrix", ""))
                      for p in data["people"]),
        rotations=tuple(Rotation(r["id"], tuple(r["members"]), parse_duration(r["shift"]), r["start"],
                                 r.get("title", r["id"])) for r in data.get("rotations", ())),
        overrides=tuple(Override(o["rotation"], o["person"], o["from"], o["until"])
                        for o in data.get("overrides", ())),
    )
