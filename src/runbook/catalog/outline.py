"""A readable overview of one document, as lines of text (what `runbook show` prints)."""

from __future__ import annotations

from datetime import datetime

from runbook.catalog import preview
from runbook.catalog.captures import describe_condition, describe_when
from runbook.catalog.document import Document
from runbook.catalog.drill import Drill
from runbook.catalog.durations import format_duration
from runbook.catalog.flow import default_next
from runbook.catalog.loader import Catalog
from runbook.catalog.matching import sibling_group
from runbook.catalog.models import END, EscalationPolicy, Playbook, Procedure, Roster, SeverityPolicy, Step, Track
from runbook.catalog.oncall import find_person, find_rotation, on_call


def outline(doc: Document, catalog: Catalog, now: datetime) -> list[str]:
    model = doc.model
    if isinstance(model, Playbook):
        return _playbook(model, catalog, now)
    if isinstance(model, SeverityPolicy):
        return _severity(model)
    if isinstance(model, EscalationPolicy):
        return [f"{model.title}  (EscalationPolicy {model.id})", ""] + _ladder(model, catalog, now)
    if isinstance(model, Roster):
        return _roster(model, now)
    if isinstance(model, Drill):
        return _drill(model)
    if isinstance(model, Procedure):
        lines = [f"{model.title}  (Procedure {model.id})"]
        if model.description:
            lines += [""] + [f"  {line}" for line in model.description.strip().splitlines()]
        return lines + _section("Steps (then back to the step after the include)") + _steps(model.track)
    return [f"{doc.kind} {doc.id}"]


def _drill(drill: Drill) -> list[str]:
    lines = [f"{drill.title}", f"  drill {drill.id} · playbook {drill.playbook}"
             + (f" · symptom {drill.symptom}" if drill.symptom else "") + f" · mode {drill.mode}"]
    if drill.description:
        lines += [""] + _indented(drill.description, "  ")
    if drill.schedule:
        window = f", may start up to {format_duration(drill.schedule.window)} late" if drill.schedule.window else ""
        lines += _section("Schedule") + [f"  {drill.schedule.cron} ({drill.schedule.timezone}){window}"]
    if drill.targets:
        lines += _section("Targets") + ["  " + ", ".join(f"{name} within {format_duration(s)}"
                                                        for name, s in drill.targets.items())]
    if drill.injects:
        lines += _section("Injects")
        lines += [f"  +{format_duration(i.at)}  {i.message}" for i in drill.injects]
    if drill.participants:
        lines += _section("Participants") + [f"  {', '.join(drill.participants)}"]
    profile = drill.responders
    if profile.levels:
        lines += _section("Simulated responders")
        for n, level in enumerate(profile.levels, 1):
            lines.append(f"  L{n}: answers {level.answer:.0%} of pages; acknowledges after {_latency(level.ack)}")
        for step, latency in profile.steps.items():
            lines.append(f"  step {step}: {_latency(latency)}")
    return lines


def _latency(latency) -> str:
    d = latency.distribution
    if d == "fixed":
        return f"{format_duration(latency.mean or 0)}"
    if d == "exponential":
        return f"exponential, mean {format_duration(latency.mean or 0)}"
    if d == "uniform":
        return f"uniform {format_duration(latency.low or 0)}–{format_duration(latency.high or 0)}"
    return f"lognormal, median {format_duration(latency.median or 0)}, p90 {format_duration(latency.p90 or 0)}"


def _indented(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in text.strip().splitlines()]


def _section(title: str) -> list[str]:
    return ["", title]


def _targets(level) -> str:
    return ", ".join(f"{name} within {format_duration(s)}" for name, s in level.targets.items())


def _playbook(pb: Playbook, catalog: Catalog, now: datetime) -> list[str]:
    lines = [preview.title(pb), f"  playbook {pb.id} · service {pb.service}"
             + (f" · tags {', '.join(pb.tags)}" if pb.tags else "")]
    if pb.description:
        lines += [""] + [f"  {line}" for line in pb.description.strip().splitlines()]

    level = catalog.severity_level(pb.severity)
    lines += _section("Severity")
    if level:
        pages = "pages on-call" if level.pages else "does not page"
        lines.append(f"  {level.id} {level.title} ({pages}): {_targets(level)}")
        if level.meaning:
            lines += _indented(level.meaning, "    ")
    else:
        lines.append(f"  {pb.severity} (not defined in any SeverityPolicy)")
    if pb.severity_from:
        mapped = ", ".join(f"{value} → {level}" for value, level in pb.severity_from.map.items())
        lines.append(f"  from alert label {pb.severity_from.label}: {mapped} (other values: {pb.severity})")

    policies = catalog.models("EscalationPolicy")
    if pb.escalation is None and not pb.escalation_by_severity:
        lines += _section("Escalation") + ["  none: no severity this playbook runs at pages"]
    ladders = [] if pb.escalation is None else [(f"Escalation ({pb.escalation})" if not pb.escalation_by_severity
                else f"Escalation at other severities ({pb.escalation})", pb.escalation)]
    ladders += [(f"Escalation at {level} ({policy_id})", policy_id)
                for level, policy_id in pb.escalation_by_severity.items()]
    for title, policy_id in ladders:
        lines += _section(title)
        policy = policies.get(policy_id)
        lines += _ladder(policy, catalog, now) if policy else ["  (escalation policy not found)"]

    lines += _section("Symptoms")
    for symptom in pb.symptoms:
        lines.append(f"  - {symptom.id}: {symptom.summary}")
        if symptom.labels:
            shown = ", ".join(f"{m.name}={(m.regex and '~' + m.regex) or '|'.join(m.equals)}" for m in symptom.labels)
            lines.append(f"      alert labels: {shown}")
            group = sibling_group(pb, symptom.id)
            lines.append(f"      sibling alerts join one incident per {', '.join(group)}" if group
                         else "      sibling alerts all join one incident")
        for after, to in symptom.severity_rises:
            lines.append(f"      rises to {to} after {format_duration(after)}")
        for fp in symptom.false_positives:
            lines.append(f"      false positive: {fp}")

    if pb.degradations:
        lines += _section("Degradations")
        for name, d in pb.degradations.items():
            flags = ", ".join(f"{flag}={_flag(v)}" for flag, v in d.set.items())
            lines.append(f"  - {name}: {d.summary}  [{flags}]")
            if d.impact:
                lines += _indented(f"impact: {d.impact}", "      ")
            if d.rollout:
                r = d.rollout
                ladder = " → ".join(f"{share}%" + (f" (hold {format_duration(hold)})" if hold != r.stages[0][1] else "")
                                    for share, hold in r.stages)
                lines.append(f"      in stages by {r.by}: {ladder}, each held {format_duration(r.stages[0][1])}")
                for c in r.checks:
                    lines.append(f"      check {c.name} every {format_duration(r.check_every)}: {c.query}  {c.expect}")
                lines.append("      a failed check " + ("rolls back one stage" if r.on_failure == "previous"
                                                          else "restores fully")
                             + "; a check that cannot be evaluated "
                             + ("rolls back too" if r.on_check_broken == "rollback" else "holds the stage"))
    if pb.roles:
        lines += _section("Roles")
        lines += [f"  - {r.id}: {r.title}" + (f" — {r.summary}" if r.summary else "") for r in pb.roles.values()]
    if pb.reminders:
        lines += _section("Reminders")
        for r in pb.reminders:
            who = f" ({r.role})" if r.role else ""
            lines.append(f"  - every {format_duration(r.every)}{who}: {preview.text(pb, r.message)}  "
                         f"[from {r.start} until {r.until}]")
    for track in pb.tracks:
        title = "Steps" if track.id == "main" else f"Track {track.id}: {track.title}"
        if track.role:
            title += f" (role {track.role})"
        lines += _section(title)
        lines += _steps(track, pb)
    return lines


def _flag(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _step_line(step: Step, number: int, pb: Playbook | None) -> str:
    """One step as it will run: its title, prompt and command filled (catalog/preview.py) in a
    playbook; a procedure's steps as written (the playbook that includes one fills them)."""
    def fill(template):
        return preview.text(pb, template, step) if pb is not None else template

    kind = step.kind
    if step.degradation:
        kind += f" {step.degradation}"
    extras = []
    if step.role:
        extras.append(f"role {step.role}")
    if step.timebox:
        extras.append(f"timebox {format_duration(step.timebox)}")
    if step.approval:
        prompt = f": {fill(step.approval.prompt)}" if step.approval.prompt else ""
        extras.append(f"needs approval by {step.approval.by}{prompt}")
    if step.run is not None:
        extras.append("runs " + (preview.command(pb, step) if pb is not None else " ".join(step.run)))
    if step.uses:
        extras.append(f"uses {step.uses}")
    if step.prometheus is not None:
        extras.append(f"checks {step.prometheus._replace(query=fill(step.prometheus.query))}")
    if step.kind == "handoff" and step.hand_to is not None:
        then = "resolving the incident" if step.resolves else "the incident staying open"
        extras.append(f"hands off to {fill(step.hand_to.name)} (contact: {fill(step.hand_to.contact)}), {then}")
    elif step.kind == "handoff":
        extras.append(f"hands off to playbook {step.playbook}")
    if step.kind == "ask":
        extras.append(f"asks for {step.parameter}")
    if step.expect is not None:
        tests = describe_when(step.expect.tests)
        if tests or step.expect.json:
            extras.append(f"expects {step.expect.json or 'output'} {tests or 'present'}")
        if step.expect.findings:
            extras.append(f"exit status {', '.join(map(str, step.expect.findings))} is a finding")
    if step.when is not None and step.when.subject:
        extras.append(f"only when {describe_condition(step.when)}")
    if step.procedure and step.kind != "include":
        extras.append(f"from procedure {step.procedure}")
    if step.kind == "wait" and step.wait_alert:
        extras.append("waits until the incident's alert resolves"
                      + (f", for up to {format_duration(step.timeout)}" if step.timeout else ""))
    elif step.kind == "wait" and step.wait_time is not None:
        extras.append(f"timed wait: due {format_duration(step.wait_time)} after it starts")
    elif step.kind == "wait":
        backoff = f", backing off ×{step.backoff:g} up to {format_duration(step.max_every)}" if step.backoff != 1 and \
            step.max_every else ""
        extras.append(f"poll every {format_duration(step.every or 30)}{backoff} for up to "
                      f"{format_duration(step.timeout or 0)}")
        if step.on_no_data:
            extras.append(f"no data means {step.on_no_data}")
        if step.on_broken not in ("keep-polling", None):
            extras.append(f"a broken check → {step.on_broken}")
    if step.mitigates:
        extras.append("MITIGATES")
    tail = f"  ({'; '.join(extras)})" if extras else ""
    return f"  {number:>2}. [{kind}] {fill(step.title)}  #{step.id}{tail}"


def _steps(track: Track, pb: Playbook | None = None) -> list[str]:
    lines = []
    for number, step in enumerate(track.steps, 1):
        lines.append(_step_line(step, number, pb))
        if step.kind in ("decision", "choose"):
            if step.question and step.question != step.title:
                lines.append(f"        ? {preview.text(pb, step.question, step) if pb is not None else step.question}")
            for i, option in enumerate(step.options):
                branch = "└─" if i == len(step.options) - 1 else "├─"
                target = option.next or (f"apply {option.degradation}, then {default_next(track, step)}"
                                         if option.degradation else default_next(track, step))
                mark = "  MITIGATES" if option.mitigates else ""
                if option.when is not None and option.when.subject:
                    mark += f"  (offered when {describe_condition(option.when)})"
                lines.append(f"        {branch} {option.label} → {target}{mark}")
        else:
            following = default_next(track, step)
            natural = track.steps[step.index + 1].id if step.index + 1 < len(track.steps) else END
            if following != natural:
                lines.append(f"        → {following}")
        if step.on_fail:
            lines.append(f"        on failure → {step.on_fail}")
        if step.on_timeout:
            lines.append(f"        on timeout → {step.on_timeout}")
    return lines


def _ladder(policy: EscalationPolicy, catalog: Catalog, now: datetime) -> list[str]:
    rosters = list(catalog.models("Roster").values())
    lines, elapsed = [], 0
    for i, level in enumerate(policy.levels, 1):
        names = []
        for target in level.notify:
            if target.kind == "rotation":
                found = find_rotation(rosters, target.id)
                person = _on_call(found, now)
                names.append(f"rotation {target.id} (now: {person.name if person else 'nobody'})")
            else:
                person = find_person(rosters, target.id)
                names.append(f"{person.name if person else target.id}")
        lines.append(f"  L{i} at +{format_duration(elapsed)}: {', '.join(names)}; "
                     f"next level after {format_duration(level.escalate_after)}"
                     f"{' (default)' if level.default_delay else ''} without an ack")
        elapsed += level.escalate_after
    if policy.repeat:
        lines.append(f"  then the ladder repeats {policy.repeat} more time(s)")
    return lines


def _severity(policy: SeverityPolicy) -> list[str]:
    lines = [f"{policy.title}  (SeverityPolicy {policy.id})"]
    if policy.tiers:
        lines += _section("Business tiers")
        for tier in policy.tiers:
            avail = f" {tier.availability}" if tier.availability else ""
            services = f" — {', '.join(tier.services)}" if tier.services else ""
            lines.append(f"  - {tier.id}: {tier.title}{avail}{services}")
    lines += _section("Levels")
    for level in policy.levels:
        tier = f" [{level.tier}]" if level.tier else ""
        pages = "" if level.pages else " (no page)"
        lines.append(f"  - {level.id} {level.title}{tier}{pages}: {_targets(level)}")
        if level.meaning:
            lines += _indented(level.meaning, "      ")
    return lines


def _roster(roster: Roster, now: datetime) -> list[str]:
    lines = [f"{roster.title}  (Roster {roster.id}, time zone {roster.timezone})"]
    lines += _section("People")
    for person in roster.people:
        contact = ", ".join(x for x in (person.email, person.chat, person.phone) if x)
        lines.append(f"  - {person.id}: {person.name}" + (f" ({contact})" if contact else ""))
    if roster.rotations:
        lines += _section("Rotations")
        for rotation in roster.rotations:
            current = _on_call((roster, rotation), now)
            lines.append(f"  - {rotation.id}: {', '.join(rotation.members)}; shifts of "
                         f"{format_duration(rotation.shift)} from {rotation.start}; on call now: "
                         f"{current.name if current else 'nobody'}")
    return lines


def _on_call(found, now):
    if not found:
        return None
    try:
        return on_call(found[0], found[1], now)
    except ValueError:
        return None
