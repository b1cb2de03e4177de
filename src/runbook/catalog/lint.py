"""Cross-document checks: every reference resolves, every step is reachable and every path ends.

Runs on documents that passed their schema. Errors make a catalog invalid; warnings point
at things that work but are probably not what the author meant (`--strict` fails on them).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime

from runbook.catalog.drill import Drill
from runbook.catalog.durations import format_duration
from runbook.catalog.flow import can_finish, reachable, successors
from runbook.catalog.loader import Document
from runbook.catalog.models import END, MAIN_TRACK, EscalationPolicy, Playbook, Roster, SeverityPolicy, Step
from runbook.catalog.problems import WARNING, Problem
from runbook.catalog.validate import did_you_mean


class _Index:
    """Ids that references may point at, gathered across all documents."""

    def __init__(self, documents: list[Document]):
        self.severities: dict[str, str] = {}
        self.tiers: set[str] = set()
        self.escalations: set[str] = set()
        self.rotations: set[str] = set()
        self.people: set[str] = set()
        for doc in documents:
            model = doc.model
            if isinstance(model, SeverityPolicy):
                for level in model.levels:
                    self.severities.setdefault(level.id, doc.id)
            elif isinstance(model, EscalationPolicy):
                self.escalations.add(model.id)
            elif isinstance(model, Roster):
                self.rotations.update(r.id for r in model.rotations)
                self.people.update(p.id for p in model.people)


def _unique_within(doc, what: str, items):
    """Duplicate ids inside one document, each pointing back at the first use."""
    first: dict[str, int] = {}
    for path, item_id in items:
        if item_id in first:
            yield doc.problem(path, f"duplicate {what} id '{item_id}', already used on line {first[item_id]}",
                              code="duplicate")
        else:
            first[item_id] = doc.source.locate(path)[0]


def _unresolved(doc, path, what, value, candidates, plural) -> Problem:
    listed = ", ".join(sorted(candidates)) if candidates else "none are defined"
    return doc.problem(path, f"{what} '{value}' does not exist, known {plural}: {listed}"
                             f"{did_you_mean(value, candidates)}", code="reference")


def lint(documents: list[Document]) -> list[Problem]:
    problems: list[Problem] = []
    index = _Index(documents)
    problems += _unique_ids(documents)
    for doc in documents:
        model = doc.model
        if isinstance(model, Playbook):
            problems += _playbook(doc, model, index)
        elif isinstance(model, SeverityPolicy):
            problems += _severity(doc, model)
        elif isinstance(model, EscalationPolicy):
            problems += _escalation(doc, model, index)
        elif isinstance(model, Roster):
            problems += _roster(doc, model)
        elif isinstance(model, Drill):
            problems += _drill(doc, model, index, documents)
    return problems


def errors(documents: list[Document]) -> list[Problem]:
    """The errors (not warnings) of `documents` checked together, in file order: whether the
    documents an incident would run on hold together, whatever else the catalog holds."""
    return sorted((p for p in lint(documents) if p.severity != WARNING),
                  key=lambda p: (p.file, p.line, p.column, p.message))


def _unique_ids(documents):
    first: dict[tuple[str, str], Document] = {}
    for doc in documents:
        key = (doc.kind, doc.id)
        if key in first:
            other = first[key]
            line, _, _ = other.source.locate(("id",))
            yield doc.problem(("id",), f"duplicate {doc.kind} id '{doc.id}', already defined at "
                                       f"{other.file}:{line}; ids must be unique per kind", code="duplicate")
        else:
            first[key] = doc
    seen_levels: dict[str, tuple] = {}
    seen_rotations: dict[str, tuple] = {}
    for doc in documents:
        if isinstance(doc.model, SeverityPolicy):
            for i, level in enumerate(doc.model.levels):
                if level.id in seen_levels:
                    other, where = seen_levels[level.id]
                    yield doc.problem(("levels", i, "id"), f"severity level '{level.id}' is already defined "
                                                          f"at {other.file}:{where}; level ids must be "
                                                          "unique across all severity policies", code="duplicate")
                seen_levels.setdefault(level.id, (doc, doc.source.locate(("levels", i, "id"))[0]))
        if isinstance(doc.model, Roster):
            for i, rotation in enumerate(doc.model.rotations):
                if rotation.id in seen_rotations:
                    other, where = seen_rotations[rotation.id]
                    yield doc.problem(("rotations", i, "id"), f"rotation '{rotation.id}' is already defined at "
                                                              f"{other.file}:{where}", code="duplicate")
                seen_rotations.setdefault(rotation.id, (doc, doc.source.locate(("rotations", i, "id"))[0]))


def _playbook(doc: Document, pb: Playbook, index: _Index):
    if pb.severity not in index.severities:
        yield _unresolved(doc, ("severity",), "severity", pb.severity, index.severities, "severities")
    if pb.escalation not in index.escalations:
        yield _unresolved(doc, ("escalation",), "escalation policy", pb.escalation, index.escalations,
                          "escalation policies")
    roles = set(pb.roles)
    degradations = set(pb.degradations)

    def role_ref(path, role):
        if role is not None and role not in roles:
            return _unresolved(doc, path, "role", role, roles, "roles (under roles:)")
        return None

    for i, symptom in enumerate(pb.symptoms):
        for j, (after, level) in enumerate(symptom.severity_rises):
            base = ("symptoms", i, "severity_rises", j)
            if level not in index.severities:
                yield _unresolved(doc, base + ("to",), "severity", level, index.severities, "severities")
            if after <= 0:
                yield doc.problem(base + ("after",), "must be longer than 0s")
        for j, matcher in enumerate(symptom.labels):
            if matcher.regex is not None:
                try:
                    re.compile(matcher.regex)
                except re.error as exc:
                    yield doc.problem(("symptoms", i, "match", "labels", matcher.name, "regex"),
                                      f"invalid regular expression: {exc}", code="regex")
    yield from _unique_within(doc, "symptom", [(("symptoms", i, "id"), s.id) for i, s in enumerate(pb.symptoms)])

    for name, degradation in pb.degradations.items():
        if degradation.restore is not None:
            for flag in degradation.restore:
                if flag not in degradation.set:
                    yield doc.problem(("degradations", name, "restore", flag),
                                      f"flag '{flag}' is restored but never set by this degradation, "
                                      f"it sets: {', '.join(degradation.set)}", at_key=True)
            for flag in degradation.set:
                if flag not in degradation.restore:
                    yield doc.problem(("degradations", name, "set", flag),
                                      f"flag '{flag}' is set but has no value under restore:, so it "
                                      "could never be restored; add it to restore: or drop restore: "
                                      "to restore the values seen before applying", at_key=True)

    yield from _unique_within(doc, "reminder", [(("reminders", i, "id"), r.id) for i, r in enumerate(pb.reminders)])
    for i, reminder in enumerate(pb.reminders):
        if reminder.every <= 0:
            yield doc.problem(("reminders", i, "every"), "must be longer than 0s")
        if (p := role_ref(("reminders", i, "role"), reminder.role)):
            yield p

    step_ids: dict[str, Step] = {}
    applied, restored = {}, set()
    for t, track in enumerate(pb.tracks):
        if t and track.id == MAIN_TRACK:
            yield doc.problem(track.path[:2], f"track id '{MAIN_TRACK}' is reserved for the top-level steps:, "
                                              "choose another track id", at_key=True)
            continue
        if t and (p := role_ref(("tracks", track.id, "role"), track.role)):
            yield p
        ids_in_track = {s.id for s in track.steps}
        dangling = False
        for step in track.steps:
            if step.id in step_ids:
                yield _duplicate_step(doc, step, step_ids[step.id])
            step_ids.setdefault(step.id, step)
            if step.id == END:
                yield doc.problem(step.path + ("id",), "'end' is reserved (next: end finishes a track), "
                                                       "choose another step id")
            if (p := role_ref(step.path + ("role",), step.role)):
                yield p
            if step.approval and (p := role_ref(step.path + ("approval", "by"), step.approval.by)):
                yield p
            yield from _step_fields(doc, step, degradations, applied, restored)
            for target, path, via in successors(track, step):
                if target != END and target not in ids_in_track:
                    dangling = True
                    elsewhere = " (it is in another track; tracks cannot jump into each other)" \
                        if target in {s.id for s in pb.steps} else ""
                    yield doc.problem(path, f"step '{target}' does not exist in this track{elsewhere}, "
                                            f"expected a step id or 'end'"
                                            f"{did_you_mean(target, ids_in_track | {END})}",
                                      code="reference")
        # With a dangling reference the flow is unknown; "never reached" would only echo the typo.
        if not dangling:
            yield from _track_flow(doc, track)

    for name, path in applied.items():
        if name not in restored:
            yield doc.problem(path, f"degradation '{name}' is applied but no step restores it; add a "
                                    "restore step (resolving the incident restores it otherwise)",
                              severity=WARNING, code="restore")
    if pb.steps and not any(s.mitigates or any(o.mitigates for o in s.options) for s in pb.steps):
        yield doc.problem(("steps",), "no step has mitigates: true, so time-to-mitigate is only "
                                      "recorded when a responder marks it by hand", severity=WARNING,
                          code="mitigates")


def _duplicate_step(doc, step: Step, first: Step) -> Problem:
    line, _, _ = doc.source.locate(first.path)
    explicit = isinstance(doc.source.locate_value(step.path), dict) and "id" in doc.source.locate_value(step.path)
    where = f"step {first.index + 1} of {'the main steps' if first.track == MAIN_TRACK else 'track ' + first.track}"
    if explicit:
        return doc.problem(step.path + ("id",), f"duplicate step id '{step.id}', already used by {where} "
                                                f"(line {line}); step ids must be unique in a playbook",
                           code="duplicate")
    return doc.problem(step.path, f"this step has no id, so it gets the default id '{step.id}', which "
                                  f"{where} (line {line}) already uses; give one of them another id",
                       code="duplicate")


def _step_fields(doc, step, degradations, applied, restored):
    path = step.path
    if step.timebox is not None and step.timebox <= 0:
        yield doc.problem(path + ("timebox",), "must be longer than 0s")
    for name in ("timeout", "every"):
        value = getattr(step, name)
        if value is not None and value <= 0:
            yield doc.problem(path + (name,), "must be longer than 0s")
    if step.kind in ("degrade", "restore"):
        if step.degradation not in degradations:
            yield _unresolved(doc, path + ("degradation",), "degradation", step.degradation, degradations,
                              "degradations (under degradations:)")
        elif step.kind == "degrade":
            applied.setdefault(step.degradation, path + ("degradation",))
        else:
            restored.add(step.degradation)
    for i, option in enumerate(step.options):
        opath = path + ("options", i)
        if step.kind == "decision" and not option.next:
            yield doc.problem(opath, f"option '{option.label}' has no next, a decision option must "
                                     "say which step follows")
        if step.kind == "decision" and option.degradation:
            yield doc.problem(opath + ("degradation",), "a decision option cannot apply a degradation; "
                                                        "use kind: choose for a mitigation menu", at_key=True)
        if step.kind == "choose" and option.next and option.degradation:
            yield doc.problem(opath, f"option '{option.label}' has both next and degradation, expected one")
        if option.degradation:
            if option.degradation not in degradations:
                yield _unresolved(doc, opath + ("degradation",), "degradation", option.degradation,
                                  degradations, "degradations (under degradations:)")
            else:
                applied.setdefault(option.degradation, opath + ("degradation",))
        if step.kind == "choose" and not option.next and not option.degradation:
            yield doc.problem(opath, f"option '{option.label}' does nothing, expected next: STEP or "
                                     "degradation: NAME")
    labels = [o.label for o in step.options]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            yield doc.problem(path + ("options", i, "label"), f"duplicate option label '{label}'", code="duplicate")
    if step.run is not None and step.uses is not None:
        yield doc.problem(path + ("uses",), "a step runs either a command (run:) or a plugin action "
                                            "(uses:), not both", at_key=True)
    if step.kind == "wait" and not step.automated:
        yield doc.problem(path, "a wait step needs a condition to poll: run: [COMMAND...] or uses: ACTION")
    if step.params and not step.automated:
        yield doc.problem(path + ("with",), "with: gives parameters to run: or uses:, but this step has "
                                            "neither", at_key=True)
    if step.run is not None:
        for i, arg in enumerate(step.run):
            for name in re.findall(r"\{([A-Za-z0-9_.-]+)\}", arg):
                if arg != "{" + name + "}":
                    yield doc.problem(path + ("run", i), f"'{arg}' embeds {{{name}}} inside other text; a "
                                                         "parameter must be a whole argument, "
                                                         f"like \"{{{name}}}\"", code="argv")
                elif name not in step.params:
                    yield doc.problem(path + ("run", i), f"parameter {{{name}}} has no value under with:"
                                                         f"{did_you_mean(name, step.params)}", code="argv")
        used = {name for arg in step.run for name in re.findall(r"\{([A-Za-z0-9_.-]+)\}", arg)}
        for name in step.params:
            if name not in used:
                yield doc.problem(path + ("with", name), f"parameter '{name}' is not used by any argument of run:"
                                                         f"{did_you_mean(name, used)}", severity=WARNING,
                                  code="argv", at_key=True)
    if step.destructive and step.approval is None:
        yield doc.problem(path + ("destructive",), "destructive step has no approval gate; add "
                                                   "approval: {by: ROLE}", severity=WARNING,
                          code="approval", at_key=True)


def _track_flow(doc, track):
    if not track.steps:
        return
    live = reachable(track)
    for step in track.steps:
        if step.id not in live:
            yield doc.problem(step.path, f"step '{step.id}' is never reached: no step leads to it",
                              severity=WARNING, code="unreachable")
    finishing = can_finish(track)
    stuck = [s for s in track.steps if s.id in live and s.id not in finishing]
    if stuck:
        names = " → ".join(s.id for s in stuck[:6]) + (" …" if len(stuck) > 6 else "")
        if any(s.options for s in stuck):
            advice = "give one option a next step outside the loop or 'end'"
        else:
            advice = "give one of these steps a next step outside the loop or 'end'"
        yield doc.problem(stuck[0].path, f"steps {names} loop with no way out: no path from them "
                                         f"reaches the end of the track; {advice}", code="loop")


def _severity(doc: Document, policy: SeverityPolicy):
    tiers = {t.id for t in policy.tiers}
    for i, level in enumerate(policy.levels):
        if level.tier is not None and level.tier not in tiers:
            yield _unresolved(doc, ("levels", i, "tier"), "tier", level.tier, tiers, "tiers")
        for name, seconds in level.targets.items():
            if seconds <= 0:
                yield doc.problem(("levels", i, "targets", name), "must be longer than 0s")
        order = [(n, level.targets[n]) for n in ("acknowledge", "mitigate", "resolve") if n in level.targets]
        for (a, sa), (b, sb) in zip(order, order[1:]):
            if sb < sa:
                yield doc.problem(("levels", i, "targets", b), f"{b} target ({format_duration(sb)}) is shorter "
                                                               f"than the {a} target ({format_duration(sa)})",
                                  severity=WARNING, code="targets")
    yield from _unique_within(doc, "tier", [(("tiers", i, "id"), t.id) for i, t in enumerate(policy.tiers)])


def _escalation(doc: Document, policy: EscalationPolicy, index: _Index):
    for i, level in enumerate(policy.levels):
        if level.escalate_after <= 0:
            yield doc.problem(("levels", i, "escalate_after"), "escalation delay must be longer than 0s, "
                                                               "expected a duration like 5m")
        for j, target in enumerate(level.notify):
            path = ("levels", i, "notify", j, target.kind)
            if target.kind == "rotation" and target.id not in index.rotations:
                yield _unresolved(doc, path, "rotation", target.id, index.rotations, "rotations")
            if target.kind == "person" and target.id not in index.people:
                yield _unresolved(doc, path, "person", target.id, index.people, "people")


def _parse_time(value: str):
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _roster(doc: Document, roster: Roster):
    try:
        zoneinfo.ZoneInfo(roster.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zones = zoneinfo.available_timezones()
        yield doc.problem(("timezone",), f"'{roster.timezone}' is not an IANA time zone, expected a name "
                                         f"like Europe/Berlin or UTC{did_you_mean(roster.timezone, zones)}")
    people = {p.id for p in roster.people}
    yield from _unique_within(doc, "person", [(("people", i, "id"), p.id) for i, p in enumerate(roster.people)])
    rotations = {r.id for r in roster.rotations}
    for i, rotation in enumerate(roster.rotations):
        if rotation.shift <= 0:
            yield doc.problem(("rotations", i, "shift"), "must be longer than 0s")
        if _parse_time(rotation.start) is None:
            yield doc.problem(("rotations", i, "start"), f"'{rotation.start}' is not a valid date and time, "
                                                         "expected one like 2026-01-05T09:00")
        for j, member in enumerate(rotation.members):
            if member not in people:
                yield _unresolved(doc, ("rotations", i, "members", j), "person", member, people,
                                  "people in this roster")
    for i, override in enumerate(roster.overrides):
        base = ("overrides", i)
        if override.rotation not in rotations:
            yield _unresolved(doc, base + ("rotation",), "rotation", override.rotation, rotations, "rotations")
        if override.person not in people:
            yield _unresolved(doc, base + ("person",), "person", override.person, people, "people in this roster")
        start, until = _parse_time(override.start), _parse_time(override.until)
        for name, value, parsed in (("from", override.start, start), ("until", override.until, until)):
            if parsed is None:
                yield doc.problem(base + (name,), f"'{value}' is not a valid date and time, expected one "
                                                  "like 2026-01-05T09:00")
        if start and until and until <= start:
            yield doc.problem(base + ("until",), f"override must end after it starts (from {override.start}, "
                                                 f"until {override.until})")


def _drill(doc: Document, drill: Drill, index: _Index, documents):
    playbooks = {d.id: d.model for d in documents if isinstance(d.model, Playbook)}
    pb = playbooks.get(drill.playbook)
    if pb is None:
        yield _unresolved(doc, ("playbook",), "playbook", drill.playbook, playbooks, "playbooks")
    if drill.severity is not None and drill.severity not in index.severities:
        yield _unresolved(doc, ("severity",), "severity", drill.severity, index.severities, "severities")
    if pb is not None:
        symptoms = {s.id for s in pb.symptoms}
        if drill.symptom is not None and drill.symptom not in symptoms:
            yield _unresolved(doc, ("symptom",), f"symptom of {pb.id}", drill.symptom, symptoms, "symptoms")
        steps = {s.id: s for s in pb.steps}
        for name in drill.responders.steps:
            if name != "default" and name not in steps:
                yield _unresolved(doc, ("responders", "steps", name), "step", name, list(steps) + ["default"],
                                  "steps (or default)")
        from runbook.catalog.drill import END_CONDITIONS

        for i, name in enumerate(drill.ends):
            if name not in steps and name not in END_CONDITIONS:
                yield _unresolved(doc, ("ends", i), "end condition", name, [*END_CONDITIONS, *steps],
                                  "conditions (or step ids)")
        for name, option in drill.responders.choices.items():
            step = steps.get(name)
            if step is None or step.kind not in ("decision", "choose"):
                decisions = [s.id for s in steps.values() if s.kind in ("decision", "choose")]
                yield _unresolved(doc, ("responders", "choices", name), "decision step", name, decisions,
                                  "decision steps")
            elif option > len(step.options):
                yield doc.problem(("responders", "choices", name), f"step '{name}' has {len(step.options)} "
                                                                   f"options, not {option}")
    for i, level in enumerate(drill.responders.levels):
        latency = level.ack
        for need in latency.missing():
            yield doc.problem(("responders", "levels", i, "ack"), f"a {latency.distribution} latency needs "
                                                                  f"{need}: DURATION")
        if latency.distribution == "lognormal" and latency.median and latency.p90 and latency.p90 <= latency.median:
            yield doc.problem(("responders", "levels", i, "ack", "p90"), "p90 must be longer than the median")
        if latency.distribution == "uniform" and latency.low is not None and latency.high is not None \
                and latency.high < latency.low:
            yield doc.problem(("responders", "levels", i, "ack", "max"), "max must not be shorter than min")
    for name, latency in drill.responders.steps.items():
        for need in latency.missing():
            yield doc.problem(("responders", "steps", name), f"a {latency.distribution} duration needs "
                                                              f"{need}: DURATION")
    if drill.schedule is not None:
        try:
            zone = zoneinfo.ZoneInfo(drill.schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
            yield doc.problem(("schedule", "timezone"), f"'{drill.schedule.timezone}' is not an IANA time zone, "
                                                        "expected a name like Europe/Berlin"
                                                        f"{did_you_mean(drill.schedule.timezone, zoneinfo.available_timezones())}")
        if zone is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(drill.schedule.cron, datetime(2026, 1, 1, tzinfo=zone))
            except CronSimError as exc:
                yield doc.problem(("schedule", "cron"), f"'{drill.schedule.cron}' is not a cron expression ({exc}), "
                                                        "expected five fields like '0 14 * * WED'")
    people = index.people
    for i, person in enumerate(drill.participants):
        if person not in people:
            yield _unresolved(doc, ("participants", i), "person", person, people, "people")
