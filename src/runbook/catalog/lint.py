"""Cross-document checks: every reference resolves, every step is reachable and every path ends.

Runs on documents that passed their schema. Errors make a catalog invalid; warnings point
at things that work but are probably not what the author meant (`--strict` fails on them).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from itertools import pairwise

from runbook.catalog.document import Document
from runbook.catalog.drill import Drill
from runbook.catalog.durations import format_duration, parse_duration
from runbook.catalog.flow import can_finish, reachable, successors
from runbook.catalog.models import (
    END,
    FAIL,
    FOLLOWUP_TRACK,
    KEEP_POLLING,
    MAIN_TRACK,
    EscalationPolicy,
    Playbook,
    Procedure,
    Roster,
    SeverityPolicy,
    Shared,
    Step,
)
from runbook.catalog.problems import WARNING, Problem
from runbook.catalog.procedures import prefixed
from runbook.catalog.statuspage import StatusPage
from runbook.catalog.templates import BUILTINS, PLAIN, STRICT, TemplateError, fields, go_template_misuse
from runbook.catalog.validate import did_you_mean
from runbook.text import one_line


class _Index:
    """Ids that references may point at, gathered across all documents."""

    def __init__(self, documents: list[Document]):
        self.severities: dict[str, str] = {}
        self.tiers: set[str] = set()
        self.escalations: set[str] = set()
        self.rotations: set[str] = set()
        self.people: set[str] = set()
        self.pages: dict[str, bool] = {}  # severity level id -> whether it pages
        self.procedures: dict[str, Procedure] = {}
        self.playbooks: set[str] = set()
        self.shared: dict[str, Shared] = {}
        for doc in documents:
            model = doc.model
            if isinstance(model, Shared):
                self.shared.setdefault(model.id, model)
            if isinstance(model, SeverityPolicy):
                for level in model.levels:
                    self.severities.setdefault(level.id, doc.id)
                    self.pages.setdefault(level.id, level.pages)
            elif isinstance(model, Procedure):
                self.procedures.setdefault(model.id, model)
            elif isinstance(model, Playbook):
                self.playbooks.add(model.id)
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


def lint(documents: list[Document], playbooks=()) -> list[Problem]:
    """Problems of `documents` checked together; `playbooks` are further playbook ids a handoff
    may name (the catalog's, when only the documents an incident runs on are checked)."""
    problems: list[Problem] = []
    index = _Index(documents)
    index.playbooks.update(playbooks)
    problems += _unique_ids(documents)
    for doc in documents:
        model = doc.model
        if isinstance(model, (Playbook, Procedure)):
            problems += _shared_references(doc, index)
        if isinstance(model, Playbook):
            problems += _playbook(doc, doc.authored or model, index)
        elif isinstance(model, Procedure):
            problems += _procedure(doc, model)
        elif isinstance(model, Shared):
            problems += _shared(doc)
        elif isinstance(model, SeverityPolicy):
            problems += _severity(doc, model)
        elif isinstance(model, EscalationPolicy):
            problems += _escalation(doc, model, index)
        elif isinstance(model, Roster):
            problems += _roster(doc, model)
        elif isinstance(model, Drill):
            problems += _drill(doc, model, index, documents)
        elif isinstance(model, StatusPage):
            problems += _status_page(doc, model, documents)
    return problems


def _shared_references(doc: Document, index: _Index):
    """Every {from: ID} names a Shared document that has the parameter, role or text asked for."""
    from runbook.catalog.sharing import FROM, references

    what = {"parameters": "parameter", "roles": "role", "texts": "text"}
    for path, ref, kind, name in references(doc.data):
        shared = index.shared.get(ref)
        if shared is None:
            yield _unresolved(doc, path + (FROM,), "Shared document", ref, index.shared, "Shared documents")
            continue
        known = getattr(shared, kind)
        if name not in known:
            listed = ", ".join(sorted(known)) or f"none (add it under {kind}: there)"
            yield doc.problem(path if kind != "texts" else path + ("text",),
                              f"Shared document '{ref}' has no {what[kind]} '{name}', its {kind}: {listed}"
                              f"{did_you_mean(name, known)}", code="reference", at_key=kind != "texts")


def _shared(doc: Document):
    """A shared definition is one: it does not take from another document."""
    for section in ("parameters", "roles"):
        for name, raw in (doc.data.get(section) or {}).items():
            if isinstance(raw, dict) and "from" in raw:
                yield doc.problem((section, name, "from"), "a Shared document's definitions are written out here; "
                                                           "from: is for playbooks taking them", code="reference")


def _status_page(doc: Document, page: StatusPage, documents: list[Document]):
    """Component ids once each; services, symptoms and degradations that some playbook has (a
    name no playbook has never changes a component's state: a warning, the playbook may come)."""
    yield from _unique_within(doc, "component",
                              [(("components", i, "id"), c.id) for i, c in enumerate(page.components)])
    playbooks = [d.model for d in documents if isinstance(d.model, Playbook)]
    services = {pb.service for pb in playbooks}
    symptoms = {s.id for pb in playbooks for s in pb.symptoms}
    degradations = {name for pb in playbooks for name in pb.degradations}
    for i, component in enumerate(page.components):
        for what, names, known, plural in (("services", component.services, services, "services"),
                                           ("symptoms", component.symptoms, symptoms, "symptoms")):
            for j, name in enumerate(names):
                if name not in known:
                    yield doc.problem(("components", i, what, j), f"no playbook has the {what[:-1]} '{name}', so it "
                                      f"never changes {component.id}'s state; known {plural}: "
                                      f"{', '.join(sorted(known)) or 'none'}{did_you_mean(name, known)}",
                                      severity=WARNING, code="reference")
        for name in component.degradations:
            if name not in degradations:
                yield doc.problem(("components", i, "degradations", name), f"no playbook has the degradation "
                                  f"'{name}'{did_you_mean(name, degradations)}", severity=WARNING, code="reference",
                                  at_key=True)


def errors(documents: list[Document], playbooks=()) -> list[Problem]:
    """The errors (not warnings) of `documents` checked together, in file order: whether the
    documents an incident would run on hold together, whatever else the catalog holds (but for
    the ids of the `playbooks` a handoff may open)."""
    return sorted((p for p in lint(documents, playbooks) if p.severity != WARNING),
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
    yield from _escalation_refs(doc, index)
    yield from _severity_from(doc, index)
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
        for matcher in symptom.labels:
            if matcher.regex is not None:
                try:
                    re.compile(matcher.regex)
                except re.error as exc:
                    yield doc.problem(("symptoms", i, "match", "labels", matcher.name, "regex"),
                                      f"invalid regular expression: {exc}", code="regex")
        yield from _group_by(doc, pb, i, symptom)
    yield from _unique_within(doc, "symptom", [(("symptoms", i, "id"), s.id) for i, s in enumerate(pb.symptoms)])
    for i, symptom in enumerate(pb.symptoms):
        if symptom.auto_degrade and symptom.auto_degrade not in pb.degradations:
            yield _unresolved(doc, ("symptoms", i, "auto_degrade", "degradation"), "degradation", symptom.auto_degrade,
                              pb.degradations, "degradations (under degradations:)")

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
        if degradation.rollout is not None:
            shares = [share for share, _ in degradation.rollout.stages]
            for i in range(1, len(shares)):
                if shares[i] <= shares[i - 1]:
                    yield doc.problem(("degradations", name, "rollout", "stages", i),
                                      f"stage shares must grow: {shares[i]}% after {shares[i - 1]}%", code="rollout")
            at = degradation.rollout.mitigates_at
            if at is not None and at not in shares:
                yield doc.problem(("degradations", name, "rollout", "mitigates_at"),
                                  f"mitigates_at: {at}% is not the share of a stage; the stages are "
                                  f"{', '.join(f'{s}%' for s in shares)}", code="rollout")
            names = [c.name for c in degradation.rollout.checks]
            for i, check in enumerate(degradation.rollout.checks):
                if names.index(check.name) != i:
                    yield doc.problem(("degradations", name, "rollout", "checks", i, "name"),
                                      f"check name '{check.name}' is used twice", code="rollout")

    yield from _parameters(doc, pb)
    if pb.templated:
        for i, reminder in enumerate(pb.reminders):
            yield from (p for p in _template(doc, pb, ("reminders", i, "message"), reminder.message, set())
                        if not isinstance(p, str))

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
        if track.followup and track.path[0] == "tracks":
            yield doc.problem(track.path[:2], f"track id '{FOLLOWUP_TRACK}' is reserved for the steps after "
                                              "resolve; write them under followup: at the top level, or choose "
                                              "another track id", at_key=True)
            continue
        if t and (p := role_ref(track.path[:-1] + ("role",), track.role)):
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
            if step.kind == "include":
                yield from _include(doc, pb, step, index)
                continue
            if step.kind == "handoff":
                yield from _handoff(doc, pb, step, index)
            if step.kind == "ask" and step.parameter not in pb.parameters:
                declared = ", ".join(pb.parameters) or "none (declare it under parameters:)"
                yield doc.problem(step.path + ("parameter",), f"step '{step.id}' asks for parameter "
                                                              f"'{step.parameter}', which is not declared under "
                                                              f"parameters:; parameters: {declared}"
                                                              f"{did_you_mean(step.parameter, pb.parameters)}",
                                  code="reference")
            yield from _captures(doc, pb, step)
            yield from _answer_from(doc, pb, step)
            yield from _conditions(doc, pb, step, index)
            yield from _step_templates(doc, pb, step)
            for target, path, via in successors(track, step):
                if via == "on_broken" and target not in ids_in_track:
                    dangling = True
                    hint = did_you_mean(target, ids_in_track | {KEEP_POLLING, FAIL})
                    yield doc.problem(path, f"'{target}' is not a step of this track, expected keep-polling, "
                                            f"fail or a step id{hint}",
                                      code="reference")
                    continue
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

    yield from _waits(doc, pb)
    yield from _background_until(doc, pb)
    yield from _followup(doc, pb)
    for name, path in applied.items():
        if name not in restored:
            yield doc.problem(path, f"degradation '{name}' is applied but no step restores it; add a "
                                    "restore step (resolving the incident restores it otherwise)",
                              severity=WARNING, code="restore")
    if pb.steps and not any(s.mitigates or any(o.mitigates for o in s.options) for s in pb.steps):
        yield doc.problem(("steps",), "no step has mitigates: true, so time-to-mitigate is only "
                                      "recorded when a responder marks it by hand", severity=WARNING,
                          code="mitigates")


def _followup(doc, pb: Playbook):
    """Follow-up steps are done by people after resolve: nothing runs and no flag moves then."""
    if pb.followup is None:
        return
    for step in pb.followup.steps:
        if step.kind in ("degrade", "restore", "wait") or step.automated:
            what = f"be a {step.kind} step" if step.kind in ("degrade", "restore", "wait") else \
                "run a command or a plugin action"
            yield doc.problem(step.path + (("kind",) if not step.automated else (_automation_key(step),)),
                              f"a follow-up step cannot {what}: after resolve nothing runs and no flag "
                              "changes; make it a check, decision or communicate step", code="followup",
                              at_key=step.automated)
        elif any(option.degradation for option in step.options):
            yield doc.problem(step.path + ("options",), "a follow-up step cannot apply a degradation: after "
                                                        "resolve no flag changes", code="followup", at_key=True)


def _waits(doc, pb: Playbook):
    """`wait_for: {step: ID}`: the step exists, is not the step itself, is not a follow-up step
    waited for during the response (it cannot be done before resolve), and waits do not go round."""
    steps = {s.id: s for s in pb.steps}
    for step in pb.steps:
        if step.wait_for is None or step.wait_for.step is None:
            continue  # a signal can be given at any time
        path, target = step.path + ("wait_for", "step"), steps.get(step.wait_for.step)
        if target is None:
            yield _unresolved(doc, path, "step", step.wait_for.step, steps, "steps")
        elif target.id == step.id:
            yield doc.problem(path, f"step '{step.id}' waits for itself; name a step in another track",
                              code="reference")
        elif target.track == FOLLOWUP_TRACK and step.track != FOLLOWUP_TRACK:
            yield doc.problem(path, f"step '{target.id}' is a follow-up step, done only after resolve, so "
                                    f"'{step.id}' could never be completed before the incident is resolved",
                              code="reference")
    for step in pb.steps:
        seen, current = [step.id], step
        while current.wait_for is not None and current.wait_for.step in steps:
            current = steps[current.wait_for.step]
            if current.id == step.id and len(seen) > 1 and step.id == min(seen):  # said once per circle
                yield doc.problem(step.path + ("wait_for", "step"), "steps wait for each other: "
                                  f"{' → '.join(seen + [step.id])}; none of them could ever be completed",
                                  code="loop")
                break
            if current.id in seen:
                break
            seen.append(current.id)


def _escalation_refs(doc: Document, index: _Index):
    """`escalation:` is one policy id, or {SEVERITY: POLICY, ..., default: POLICY}; left out, no
    severity the playbook can run at may page."""
    raw = doc.data.get("escalation")
    if raw is None and doc.data.get("page_label"):
        yield doc.problem(("page_label",), "page_label: may make any severity page, so the playbook needs "
                                           "escalation: POLICY", at_key=True, code="reference")
        return
    if raw is None:
        paging = [level for level in _severities_run_at(doc.data) if index.pages.get(level)]
        if paging:
            yield doc.problem((), f"missing required field 'escalation' in a Playbook: severity {paging[0]} pages, "
                                  "so it needs an EscalationPolicy id (only a playbook whose severities never "
                                  "page may leave escalation out)", code="reference")
        return
    if isinstance(raw, str):
        if raw not in index.escalations:
            yield _unresolved(doc, ("escalation",), "escalation policy", raw, index.escalations,
                              "escalation policies")
        return
    for level, policy in raw.items():
        path = ("escalation", level)
        if level != "default" and level not in index.severities:
            known = ", ".join(sorted(index.severities)) or "none are defined"
            yield doc.problem(path, f"severity '{level}' does not exist, expected a severity or default; known "
                                    f"severities: {known}{did_you_mean(str(level), index.severities)}",
                              code="reference", at_key=True)
        if policy not in index.escalations:
            yield _unresolved(doc, path, "escalation policy", policy, index.escalations, "escalation policies")


def _severities_run_at(data: dict) -> list[str]:
    """Every severity an incident on this playbook can reach without a responder choosing it: the
    default, the ones severity_from maps to, and the ones its symptoms rise to."""
    found = [data.get("severity")]
    found += list(((data.get("severity_from") or {}).get("map") or {}).values())
    found += [rise.get("to") for symptom in data.get("symptoms") or () for rise in symptom.get("severity_rises") or ()]
    return [level for level in dict.fromkeys(found) if isinstance(level, str)]


def _handoff(doc: Document, pb: Playbook, step: Step, index: _Index):
    """A handoff names a playbook or someone who is not one (to:), never both; only the latter may
    leave the incident open (resolves:)."""
    if (step.playbook is None) == (step.hand_to is None):
        yield doc.problem(step.path, "a handoff step hands over either to a playbook (playbook: ID) or to someone "
                                     "who is not one (to: {name: ..., contact: ...}); give "
                                     + ("one of them" if step.playbook is None else "only one"), code="handoff")
    elif step.playbook is not None:
        if step.playbook not in index.playbooks:
            yield _unresolved(doc, step.path + ("playbook",), "playbook", step.playbook, index.playbooks, "playbooks")
        elif step.playbook == pb.id:
            yield doc.problem(step.path + ("playbook",), f"a playbook cannot hand off to itself ('{pb.id}'), "
                                                         "expected another playbook")
        if step.resolves:
            yield doc.problem(step.path + ("resolves",), "a handoff to a playbook always resolves this incident; "
                                                         "resolves: is for a handoff with to:", code="handoff",
                              at_key=True)


def _group_by(doc: Document, pb: Playbook, i: int, symptom):
    """group_by: naming the severity label would keep a warning and its critical apart."""
    severity = pb.severity_from.label if pb.severity_from else "severity"
    for j, name in enumerate(symptom.group_by or ()):
        if name in (severity, "severity"):
            yield doc.problem(("symptoms", i, "group_by", j),
                              f"label '{name}' carries the severity, so grouping by it keeps the warning and the "
                              "critical of one condition in two incidents; drop it (a sibling's higher severity "
                              "raises the incident it joins)", code="group")


def _severity_from(doc: Document, index: _Index):
    raw = doc.data.get("severity_from")
    if not raw:
        return
    for value, level in raw["map"].items():
        if level not in index.severities:
            yield _unresolved(doc, ("severity_from", "map", value), f"severity (for label value '{value}')", level,
                              index.severities, "severities")


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


REPEAT_SHORTEST, REPEAT_LONGEST = 60, 86400  # a cadence of updates is minutes or hours


def _repeat(doc, step):
    """repeat: posts again every so often: not so often it floods a channel, not so rarely it never
    does during an incident, and never after resolve (it stops then)."""
    if step.repeat is None:
        return
    path = step.path + ("repeat",)
    every = step.repeat.every
    if every < REPEAT_SHORTEST:
        yield doc.problem(path + ("every",), f"posting every {format_duration(every)} floods the channel; "
                                             "repeat at most every 1m (an update every 15m to 1h is usual)",
                          code="repeat")
    elif every > REPEAT_LONGEST:
        yield doc.problem(path + ("every",), f"every {format_duration(every)} is longer than a day; an "
                                             "incident's updates repeat within hours (at most 24h)", code="repeat")
    if step.track == FOLLOWUP_TRACK:
        yield doc.problem(path, "a follow-up step cannot repeat: posts on a cadence stop at resolve, before "
                                "follow-up steps run", at_key=True, code="followup")


def _step_fields(doc, step, degradations, applied, restored):
    path = step.path
    if step.timebox is not None and step.timebox <= 0:
        yield doc.problem(path + ("timebox",), "must be longer than 0s")
    for name in ("timeout", "every", "max_every", "poll_timeout", "wait_time"):
        value = getattr(step, name)
        if value is not None and value <= 0:
            yield doc.problem(path + ("for" if name == "wait_time" else name,), "must be longer than 0s")
    yield from _repeat(doc, step)
    if step.kind in ("degrade", "restore") and degradations is not None:
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
        if option.degradation and degradations is not None:
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
    if step.prometheus is not None and (step.run is not None or step.uses is not None):
        yield doc.problem(path + ("prometheus",), "a step checks either a Prometheus query (prometheus:) or "
                                                  "runs a command (run:) or plugin action (uses:), not both",
                          at_key=True)
    if step.expect is not None:
        yield from _expect(doc, step)
    if step.interactive:
        yield from _interactive(doc, step)
    if step.background:
        yield from _background(doc, step)
    if step.kind == "wait":
        yield from _wait_fields(doc, step)
    if step.retry is not None:
        if not step.automated:
            yield doc.problem(path + ("retry",), "retry: runs the step's automation again, but this step has "
                                                 "no run:, uses: or prometheus:", at_key=True)
        if step.retry.delay <= 0:
            yield doc.problem(path + ("retry", "delay"), "must be longer than 0s")
    if step.params and not step.automated:
        yield doc.problem(path + ("with",), "with: gives parameters to run:, uses: or prometheus:, but this "
                                            "step has none of them", at_key=True)
    for name in ("cwd", "env"):
        if getattr(step, name) and step.run is None:
            yield doc.problem(path + (name,), f"{name}: applies to a run: command, but this step has none",
                              at_key=True)
    silenced = IGNORE_DESTRUCTIVE in step.lint_ignore
    if step.destructive and step.approval is None and not silenced:
        yield doc.problem(path + ("destructive",), "destructive step has no approval gate; add "
                                                   "approval: {by: ROLE}, or lint: {ignore: "
                                                   f"{IGNORE_DESTRUCTIVE}, reason: WHY}}", severity=WARNING,
                          code="approval", at_key=True)
    if silenced and not (step.destructive and step.approval is None):
        why = "has an approval gate" if step.approval is not None else "is not destructive: true"
        yield doc.problem(path + ("lint", "ignore"), f"{IGNORE_DESTRUCTIVE} silences nothing here: the step {why}; "
                                                     "remove lint:", severity=WARNING, code="lint")


def _expect(doc, step: Step):
    path = step.path + ("expect",)
    if step.run is None and step.uses is None:
        yield doc.problem(path, "expect: tests what run: or uses: printed, but this step has neither", at_key=True,
                          code="expect")
    elif step.expect.findings and step.run is None:
        yield doc.problem(path + ("findings",), "findings: are exit statuses of a run: command; a uses: action "
                                                "says ok or not itself", at_key=True, code="expect")
    if step.expect.matches is not None:
        try:
            re.compile(step.expect.matches)
        except re.error as exc:
            yield doc.problem(path + ("matches",), f"invalid regular expression: {exc}", code="regex")
    overlap = sorted(set(step.expect.findings) & (set(step.not_yet or ()) | set(step.broken)))
    if overlap:
        yield doc.problem(path + ("findings",), f"exit status {overlap[0]} is a finding and also listed under "
                                                f"{'not_yet' if overlap[0] in (step.not_yet or ()) else 'broken'}:; "
                                                "give it one meaning", code="expect")


def _interactive(doc, step: Step):
    """An interactive command is the responder's to drive: a run: command, nothing read from its output."""
    path = step.path + ("interactive",)
    if step.run is None:
        plugin = " (a uses: action is run by a plugin, not in a terminal)" if step.uses else ""
        yield doc.problem(path, "interactive: runs a run: command attached to your terminal, but this step has "
                                f"no run:{plugin}", at_key=True, code="interactive")
    if step.timeout is not None:
        yield doc.problem(step.path + ("timeout",), "an interactive command runs until the responder ends it; "
                                                    "remove timeout:", at_key=True, code="interactive")
    read = _reads_its_output(step)
    if read:
        yield doc.problem(step.path + (read[0],), f"{read[0]}: needs what the command printed or a rerun by itself, "
                                                  "but an interactive command's output is the responder's, not "
                                                  "captured; drop one of them", at_key=True, code="interactive")


def _reads_its_output(step: Step) -> list[str]:
    """The fields of `step` that need its command to end with its output read (capture:, expect:,
    retry:), in that order: what an interactive or a background command cannot have."""
    return [name for name, on in (("capture", step.captures), ("expect", step.expect is not None),
                                  ("retry", step.retry is not None)) if on]


def _background(doc, step: Step):
    """A background command runs on after its step is done: a run: command whose output is not read
    and which nobody waits for."""
    path = step.path + ("background",)
    if step.run is None:
        plugin = " (a uses: action is run by a plugin, which runs nothing in the background)" if step.uses else ""
        yield doc.problem(path, f"background: keeps a run: command running, but this step has no run:{plugin}",
                          at_key=True, code="background")
    if step.interactive:  # what else it cannot have, interactive: says
        yield doc.problem(path, "a command runs either attached to the responder's terminal (interactive:) or in "
                                "the background (background:), not both; drop one of them", at_key=True,
                          code="background")
        return
    if step.timeout is not None:
        yield doc.problem(step.path + ("timeout",), "a background command runs until the incident stops it; remove "
                                                    "timeout: (background: {until: STEP} stops it at a step)",
                          at_key=True, code="background")
    read = _reads_its_output(step)
    if read:
        yield doc.problem(step.path + (read[0],), f"{read[0]}: needs the command to end, but a background command "
                                                  "runs on after its step is done (its output goes to a file); "
                                                  "drop one of them", at_key=True, code="background")


def _background_until(doc, pb: Playbook):
    """background: {until: STEP}: a step of the playbook that comes after this one (in its own track:
    later in the list) and is done before resolve."""
    steps = {s.id: s for s in pb.steps}
    for step in pb.steps:
        if not step.background or step.background_until is None:
            continue
        path, target = step.path + ("background", "until"), steps.get(step.background_until)
        if target is None:
            yield _unresolved(doc, path, "step", step.background_until, steps, "steps")
        elif target.track == step.track and target.index <= step.index:
            where = f"comes before '{step.id}'" if target.id != step.id else "is this step itself"
            yield doc.problem(path, f"step '{target.id}' {where}, so the command would be stopped before it "
                                    f"started; name a later step", code="reference")
        elif target.track == FOLLOWUP_TRACK and step.track != FOLLOWUP_TRACK:
            yield doc.problem(path, f"step '{target.id}' is a follow-up step, done only after resolve, and "
                                    "resolving stops the command anyway; name a step of the response or write "
                                    "background: true", code="reference")


def _include(doc, pb: Playbook, step: Step, index: _Index):
    """An include names a known procedure, whose steps fit this playbook: their ids stay unique
    once prefixed, and the roles and degradations they name are this playbook's."""
    procedure = index.procedures.get(step.procedure)
    if procedure is None:
        yield _unresolved(doc, step.path + ("include",), "procedure", step.procedure, index.procedures,
                          "procedures")
        return
    where = step.path + ("include",)
    own = {s.id for s in pb.steps}
    for included in procedure.track.steps:
        name = prefixed(step.id, included.id)
        if name in own:
            yield doc.problem(where, f"the included step '{name}' has the id of a step of this playbook; give "
                                     "the include another id: (its prefix)", code="duplicate")
        for role in (included.role, included.approval.by if included.approval else None):
            if role is not None and role not in pb.roles and role != step.role:
                yield doc.problem(where, f"procedure '{procedure.id}' step '{included.id}' names role '{role}', "
                                         f"which this playbook does not define (under roles:)"
                                         f"{did_you_mean(role, pb.roles)}", code="reference")
        names = [included.degradation] + [o.degradation for o in included.options]
        for name in filter(None, names):
            if name not in pb.degradations:
                yield doc.problem(where, f"procedure '{procedure.id}' step '{included.id}' uses degradation "
                                         f"'{name}', which this playbook does not define (under degradations:)"
                                         f"{did_you_mean(name, pb.degradations)}", code="reference")


def _procedure(doc: Document, procedure: Procedure):
    """A procedure's steps are one track: ids unique, references inside it (next: end returns to the
    playbook), every step reached. Roles and degradations are checked where it is included."""
    track = procedure.track
    seen: dict[str, Step] = {}
    dangling = False
    ids = {s.id for s in track.steps}
    for step in track.steps:
        if step.id in seen:
            yield _duplicate_step(doc, step, seen[step.id])
        seen.setdefault(step.id, step)
        if step.kind == "include":
            yield doc.problem(step.path + ("include",), "a procedure cannot include another procedure; "
                                                        "include both from the playbook", at_key=True)
            continue
        yield from _step_fields(doc, step, None, {}, set())
        for target, path, _via in successors(track, step):
            if target != END and target not in ids:
                dangling = True
                yield doc.problem(path, f"step '{target}' does not exist in this procedure, expected a step id "
                                        f"or 'end' (back to the playbook){did_you_mean(target, ids | {END})}",
                                  code="reference")
    if not dangling:
        yield from _track_flow(doc, track)


IGNORE_DESTRUCTIVE = "destructive-without-approval"


def _captures(doc, pb: Playbook, step: Step):
    """capture: names a value (not a built-in), reads the output of a command, and each regex has
    exactly one group."""
    for capture in step.captures:
        base = step.path + ("capture", capture.name)
        if capture.name in BUILTINS:
            yield doc.problem(base, f"capture '{capture.name}' has the name of the built-in {{{capture.name}}} "
                                    f"({BUILTINS[capture.name]}); choose another name", at_key=True, code="capture")
        if capture.name in step.params:
            yield doc.problem(base, f"capture '{capture.name}' has the name of a with: key of this step, which "
                                    "would hide it in this step's templates; choose another name", at_key=True,
                              code="capture")
        if capture.regex is not None:
            try:
                count = re.compile(capture.regex).groups
            except re.error as exc:
                yield doc.problem(base + ("regex",), f"invalid regular expression: {exc}", code="regex")
                continue
            if count != 1:
                yield doc.problem(base + ("regex",), f"the regex '{capture.regex}' has {count} groups; a capture "
                                                     "takes exactly one group, the value (write (?:...) for a group "
                                                     "that only groups)", code="capture")
        if capture.jmespath is not None:
            import jmespath  # on first use: most catalogs have no JMESPath capture
            from jmespath.exceptions import JMESPathError

            try:
                jmespath.compile(capture.jmespath)
            except JMESPathError as exc:
                why = str(exc).splitlines()[0].removeprefix("Invalid jmespath expression: ").rstrip(":")
                where = getattr(exc, "lex_position", None)
                yield doc.problem(base + ("jmespath",), f"invalid JMESPath expression: {one_line(why)}"
                                                        + (f" at character {where}" if where is not None else ""),
                                  code="capture")
    if step.captures and not step.automated:
        yield doc.problem(step.path + ("capture",), "capture: reads the output of run: or uses:, but this step "
                                                    "has neither", at_key=True, code="capture")


def _conditions(doc, pb: Playbook, step: Step, index: _Index):
    """A step's when: tests the incident (param:, label:, severity:, symptom:); an option's may,
    or else reads the decision's from: (_answer_from). What it names must exist."""
    whens = [(step.path + ("when",), step.when, True)] if step.when is not None else []
    if step.repeat is not None and step.repeat.when is not None:
        whens.append((step.path + ("repeat", "until"), step.repeat.when, True))
    whens += [(step.path + ("options", i, "when"), o.when, False) for i, o in enumerate(step.options)
              if o.when is not None and o.when.subject]
    symptoms = [s.id for s in pb.symptoms]
    names = set(pb.parameters) | set(pb.captures)
    for path, when, on_step in whens:
        if on_step and not when.subject:
            said = "repeat: until:" if path[-1] == "until" else "a step's when:"
            yield doc.problem(path, f"{said} needs what it tests: param: NAME, label: NAME, severity: LEVELS "
                                    "or symptom: IDS", at_key=True, code="when")
            continue
        tests = any(x is not None for x in (when.equals, when.matches, when.above, when.below))
        if when.param and when.label:
            yield doc.problem(path, "when: reads either a parameter (param:) or an alert label (label:), not both",
                              at_key=True, code="when")
        elif tests and not (when.param or when.label):
            yield doc.problem(path, "equals:, matches:, above: and below: test a value: say which with param: NAME "
                                    "or label: NAME", at_key=True, code="when")
        if when.param and when.param not in names:
            yield _unresolved(doc, path + ("param",), "parameter", when.param, sorted(names),
                              "parameters (under parameters:, or captured)")
        for j, level in enumerate(when.severity):
            if level not in index.severities:
                where = path + ("severity",) + ((j,) if isinstance(doc.source.locate_value(path + ("severity",)), list)
                                             else ())
                yield _unresolved(doc, where, "severity", level, index.severities, "severities")
        for j, symptom in enumerate(when.symptom):
            if symptom not in symptoms:
                where = path + ("symptom",) + ((j,) if isinstance(doc.source.locate_value(path + ("symptom",)), list)
                                             else ())
                yield _unresolved(doc, where, "symptom", symptom, symptoms, "symptoms")
        if when.matches is not None:
            try:
                re.compile(when.matches)
            except re.error as exc:
                yield doc.problem(path + ("matches",), f"invalid regular expression: {exc}", code="regex")


def _answer_from(doc, pb: Playbook, step: Step):
    """A decision's from: names a step that runs a command and, with capture:, one of its captures;
    when: appears only on the options of such a decision."""
    path = step.path
    source = step.answer_from
    for i, option in enumerate(step.options):
        if option.when is None or option.when.subject:
            continue
        where = path + ("options", i, "when")
        if source is None:
            yield doc.problem(where, "when: suggests this option from a value, but the step has no from: "
                                     "{step: STEP, capture: NAME} (or exit_code: true) to read it from",
                              at_key=True, code="answer")
        if option.when.matches is not None:
            try:
                re.compile(option.when.matches)
            except re.error as exc:
                yield doc.problem(where + ("matches",), f"invalid regular expression: {exc}", code="regex")
    if source is None:
        return
    base = path + ("from",)
    if (source.capture is None) == (not source.exit_code):
        yield doc.problem(base, "from: reads either a capture (capture: NAME) or the exit code (exit_code: true), "
                                "exactly one of them", code="answer")
    steps = {s.id: s for s in pb.steps}
    target = steps.get(source.step)
    if target is None:
        yield _unresolved(doc, base + ("step",), "step", source.step, steps, "steps")
        return
    if target.id == step.id or not target.automated:
        yield doc.problem(base + ("step",), f"step '{source.step}' runs no command (run: or uses:), so it has no "
                                            "output or exit code to answer from", code="answer")
        return
    if source.capture is not None and source.capture not in {c.name for c in target.captures}:
        names = [c.name for c in target.captures]
        yield doc.problem(base + ("capture",), f"step '{source.step}' captures no '{source.capture}' (it captures: "
                                               f"{', '.join(names) or 'nothing'}){did_you_mean(source.capture, names)}",
                          code="reference")
    if not any(o.when is not None and not o.when.subject for o in step.options):
        yield doc.problem(base, "from: is read, but no option has a when: to be suggested", severity=WARNING,
                          code="answer", at_key=True)
POLLING_ONLY = ("every", "backoff", "max_every", "poll_timeout", "timeout", "on_timeout", "not_yet", "broken",
                "on_broken")


def _wait_fields(doc, step: Step):
    """A wait polls a condition (run: or uses:, with timeout:) or is a plain timed wait (for:)."""
    path = step.path
    raw = doc.source.locate_value(path)
    given = set(raw) if isinstance(raw, dict) else set()
    if step.on_no_data is not None and step.prometheus is None:
        yield doc.problem(path + ("on_no_data",), "on_no_data: says what a prometheus: query with no series means, "
                                                  "but this wait has no prometheus:", at_key=True)
    if step.wait_alert:
        other = [name for name in ("run", "uses", "prometheus", "for") if name in given]
        if other:
            yield doc.problem(path + (other[0],), f"alert: waits on the incident's own alert, but this wait also has "
                                                  f"{other[0]}:; a wait waits on one thing", at_key=True)
        for name in POLLING_ONLY:
            if name in given and name not in ("timeout", "on_timeout"):
                yield doc.problem(path + (name,), f"{name}: applies to a wait that polls; alert: resolved polls "
                                                  "nothing (only timeout: and on_timeout: apply)", at_key=True)
        return
    if step.automated and "for" in given:
        yield doc.problem(path + ("for",), "for: makes a plain timed wait, but this wait polls (run:, uses: or "
                                           "prometheus:); a wait that polls gives up after timeout:", at_key=True)
        return
    if not step.automated:
        if "for" not in given:
            yield doc.problem(path, "a wait step needs a condition to poll: run: [COMMAND...], uses: ACTION or "
                                    "prometheus: {query: ..., expect: ...} (with timeout:), or for: DURATION for "
                                    "a plain timed wait")
            return
        for name in POLLING_ONLY:
            if name in given:
                yield doc.problem(path + (name,), f"{name}: applies to a wait that polls (run:, uses: or "
                                                  "prometheus:); this one is a plain timed wait (for:)", at_key=True)
        return
    if "timeout" not in given:
        yield doc.problem(path, "a wait that polls needs timeout: DURATION, how long to poll before giving up "
                                "(then on_timeout:)")
    every = step.every or 30
    if step.max_every is not None and step.max_every < every:
        yield doc.problem(path + ("max_every",), f"max_every ({format_duration(step.max_every)}) is shorter than "
                                                 f"every ({format_duration(every)}); backoff grows the interval "
                                                 "from every up to max_every")
    if step.max_every is not None and step.backoff == 1:
        yield doc.problem(path + ("max_every",), "max_every: caps an interval that backoff: grows, but this wait "
                                                 "has no backoff (add backoff: 2)", severity=WARNING,
                          code="backoff", at_key=True)
    both = sorted(set(step.not_yet or ()) & set(step.broken))
    if both:
        yield doc.problem(path + ("broken",), f"exit status {', '.join(map(str, both))} is listed both under "
                                              "not_yet: and broken:; each status means one thing")
    for name in ("not_yet", "broken"):
        codes = getattr(step, name) or ()
        if 0 in codes:
            yield doc.problem(path + (name, list(codes).index(0)), "exit status 0 means the condition holds; "
                                                                   f"it cannot be {name.replace('_', ' ')}")
    if step.run is None and (step.not_yet is not None or step.broken):
        what = "a uses: action" if step.uses is not None else "a prometheus: check"
        yield doc.problem(path + ("not_yet" if step.not_yet is not None else "broken",),
                          f"exit statuses classify a run: command; {what} reports no exit status",
                          severity=WARNING, code="exit-codes", at_key=True)


def _automation_key(step: Step) -> str:
    return "run" if step.run is not None else "uses" if step.uses is not None else "prometheus"


def _parameters(doc, pb: Playbook):
    from runbook.catalog.parameters import problem

    for name, parameter in pb.parameters.items():
        base = ("parameters", name)
        if name in BUILTINS:
            yield doc.problem(base, f"parameter '{name}' has the name of the built-in {{{name}}} "
                                    f"({BUILTINS[name]}); choose another name", at_key=True, code="parameter")
        if name in pb.roles:
            yield doc.problem(base, f"parameter '{name}' has the name of the role {name} ({{{name}}} is its "
                                    "holder in templates); choose another name", at_key=True, code="parameter")
        if parameter.pattern is not None:
            try:
                re.compile(parameter.pattern)
            except re.error as exc:
                yield doc.problem(base + ("pattern",), f"invalid regular expression: {exc}", code="regex")
                continue
        if parameter.default is not None and (why := problem(parameter, parameter.default)):
            yield doc.problem(base + ("default",), f"the default {parameter.default!r} {why}", code="parameter")


def _step_templates(doc, pb: Playbook, step: Step):
    """Every template of the step: run:, with:, cwd:, env:, a prometheus: query and communicate
    templates always; titles, instructions, questions and prompts when the playbook declares
    parameters: (before, they were shown as written, and still are)."""
    path = step.path
    local = set(step.params)
    raw = doc.source.locate_value(path)
    texts = []
    if isinstance(raw, dict):
        if pb.templated:
            texts += [(path + (key,), raw[key]) for key in ("title", "instructions", "question")
                      if isinstance(raw.get(key), str)]
            if step.hand_to is not None:
                texts += [(path + ("to", "name"), step.hand_to.name), (path + ("to", "contact"), step.hand_to.contact)]
            if step.approval and step.approval.prompt:
                texts.append((path + ("approval", "prompt"), step.approval.prompt))
    elif pb.templated and isinstance(raw, str):
        texts.append((path, raw))
    if step.template is not None:
        texts.append((path + ("template",), step.template))
    texts += [(path + ("run", i), arg) for i, arg in enumerate(step.run or ())]
    if step.prometheus is not None:
        texts.append((path + ("prometheus", "query"), step.prometheus.query))
    if step.cwd is not None:
        texts.append((path + ("cwd",), step.cwd))
    texts += [(path + ("env", key), value) for key, value in step.env.items() if isinstance(value, str)]
    used: set[str] = set()
    for where, text in texts:
        for problem_or_name in _template(doc, pb, where, text, local):
            if isinstance(problem_or_name, str):
                used.add(problem_or_name)
            else:
                yield problem_or_name
    yield from _captured_later(doc, pb, step, used - local - set(pb.parameters) - set(BUILTINS))
    for name, value in step.params.items():
        if isinstance(value, str):  # a with: value is a template of parameters and built-ins
            yield from (p for p in _template(doc, pb, path + ("with", name), value, set()) if not isinstance(p, str))
    if step.run is not None:
        for name in step.params:
            if name not in used:
                yield doc.problem(path + ("with", name), f"parameter '{name}' is not used by run: (nor by cwd:, "
                                                         "env: or the step's text)"
                                                         f"{did_you_mean(name, used)}", severity=WARNING,
                                  code="argv", at_key=True)


def _captured_later(doc, pb: Playbook, step: Step, names):
    """A captured name used by a step that no capturing step can precede: the capture is in the
    same track, at this step or after it, and nothing else captures it."""
    order = {s.id: s for s in pb.steps}
    for name in sorted(names):
        by = [order[s] for s in pb.captures.get(name, ())]
        if by and all(s.track == step.track and s.index >= step.index for s in by):
            yield doc.problem(step.path, f"{{{name}}} is captured by step '{by[0].id}', which "
                                         f"{'is this step' if by[0].id == step.id else 'comes after this one'}: it "
                                         "has no value when this step runs unless a loop goes back",
                              severity=WARNING, code="capture")


def _template(doc, pb: Playbook, where, text: str, local: set):
    """Problems of one template, then (as plain strings) the names it uses. Playbooks without
    parameters: keep the plain language they were written in (only {name} is a field)."""
    mode = STRICT if pb.templated else PLAIN
    misuse = go_template_misuse(text) if pb.templated else None
    if misuse:
        yield doc.problem(where, misuse, code="template")
        return
    try:
        found = fields(text, mode)
    except TemplateError as exc:
        yield doc.problem(where, str(exc), code="template")
        return
    known = set(pb.parameters) | set(BUILTINS) | set(pb.roles) | local | set(pb.captures)
    reported = set()  # "{x}/{x}" is one problem, said once
    for field in found:
        if field.name not in known and field.name not in reported:
            reported.add(field.name)
            yield doc.problem(where, f"{{{field.name}}} has no value: it is not a with: key of this step, a "
                                     f"parameter (under parameters:){', a role (its holder)' if pb.roles else ''}, "
                                     "a value a step captures, or a built-in "
                                     f"({', '.join(BUILTINS)}){did_you_mean(field.name, known)}",
                              code="template")
        yield field.name


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
        for (a, sa), (b, sb) in pairwise(order):
            if sb < sa:
                yield doc.problem(("levels", i, "targets", b), f"{b} target ({format_duration(sb)}) is shorter "
                                                               f"than the {a} target ({format_duration(sa)})",
                                  severity=WARNING, code="targets")
    yield from _unique_within(doc, "tier", [(("tiers", i, "id"), t.id) for i, t in enumerate(policy.tiers)])


def _escalation(doc: Document, policy: EscalationPolicy, index: _Index):
    default = doc.data.get("defaults", {}).get("escalate_after")
    if default is not None and parse_duration(default) <= 0:
        yield doc.problem(("defaults", "escalate_after"), "escalation delay must be longer than 0s, "
                                                          "expected a duration like 5m")
    for i, level in enumerate(policy.levels):
        if level.escalate_after <= 0 and not level.default_delay:
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
            suggestion = did_you_mean(drill.schedule.timezone, zoneinfo.available_timezones())
            yield doc.problem(("schedule", "timezone"), f"'{drill.schedule.timezone}' is not an IANA time zone, "
                                                        f"expected a name like Europe/Berlin{suggestion}")
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
