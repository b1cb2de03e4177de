"""Opening an incident: the playbook (never a broken or ambiguous one), the severity (given, from
the alert's labels, or the playbook's), the parameters (checked before anything is recorded), the
snapshot of the documents it runs on, and the first events; setting a parameter later."""

from __future__ import annotations

from runbook.catalog import parameters
from runbook.catalog.suggest import did_you_mean
from runbook.engine import transition
from runbook.engine.clock import iso
from runbook.engine.effects import SYSTEM
from runbook.engine.events import Event, NoteAdded, Opened, ParametersSet
from runbook.engine.snapshot import Snapshot, documents_hash, take
from runbook.engine.state import IncidentState, new_state
from runbook.errors import CommandError, DocumentError, NotFoundError
from runbook.text import check_actor


class MissingParameters(parameters.ParameterError):
    """Required parameters nobody gave; carries what was resolved, so a form can ask for the rest."""

    def __init__(self, message: str, playbook: str, resolved: parameters.Resolved):
        super().__init__(message)
        self.playbook, self.resolved = playbook, resolved


def escalation_by(engine) -> str | None:
    """"pager" when the settings leave the levels after the first to the pager (recorded at open,
    so the incident keeps its mode whatever the settings of a later command say)."""
    settings = getattr(engine.plugins, "settings", None)
    return "pager" if getattr(settings, "escalation", "runbook") == "pager" else None


def open_incident(engine, playbook: str, actor: str, symptom: str | None = None, severity: str | None = None,
         drill: bool = False, incident: str | None = None, rehearse: str | None = None,
         live: bool = False, params: dict | None = None, labels: dict | None = None,
         form: dict | None = None, from_incident: str | None = None) -> IncidentState:
    """Open an incident on `playbook`; `rehearse` names a Drill whose injects and targets apply.

    `labels` are the alert's labels: the playbook's `severity_from` maps one of them to the
    severity, unless `severity` is given (an explicit severity wins). The playbook's parameters
    come from `params` (--param), `form` (the TUI), the labels (through each parameter's label:)
    and defaults; every value is checked before anything is recorded (ParameterError,
    MissingParameters). `from_incident` is the incident handing off to this one."""
    check_actor(actor)
    if engine.catalog is None:
        raise CommandError("opening an incident needs the playbook catalog")
    _refuse_if_broken(engine.catalog, playbook, "Playbook")
    doc = engine.catalog.find(playbook, "Playbook")
    if doc is None:
        left_out = " or `runbook validate`: invalid documents are left out" if engine.catalog.errors else ""
        raise NotFoundError(f"no playbook '{playbook}'{did_you_mean(playbook, engine.catalog.ids('Playbook'))} "
                            f"(see `runbook list --kind Playbook`{left_out})")
    drill_doc = None
    if rehearse is not None:
        _refuse_if_broken(engine.catalog, rehearse, "Drill")
        drill_doc = engine.catalog.find(rehearse, "Drill")
        if drill_doc is None:
            raise NotFoundError(f"no drill '{rehearse}'{did_you_mean(rehearse, engine.catalog.ids('Drill'))}")
        drill = True
    key = (id(engine.catalog), id(doc), id(drill_doc))
    if key not in engine._taken:
        stored = take(engine.catalog, doc, drill_doc)
        engine._taken[key] = (engine.catalog, doc, drill_doc, stored, Snapshot.load(stored),
                            documents_hash(stored["documents"]))
    stored, snapshot, digest = engine._taken[key][3:]
    pb = snapshot.playbook
    if symptom is not None and symptom not in {s.id for s in pb.symptoms}:
        raise CommandError(f"playbook {pb.id} has no symptom '{symptom}'"
                           f"{did_you_mean(symptom, [s.id for s in pb.symptoms])}; symptoms: "
                           f"{', '.join(s.id for s in pb.symptoms) or 'none'}")
    severity, source = _opening_severity(pb, severity, labels or {})
    if snapshot.levels and snapshot.level(severity) is None:
        raise CommandError(f"unknown severity '{severity}', expected one of: "
                           f"{', '.join(lv.id for lv in snapshot.levels)}")
    if symptom is None and pb.symptoms:
        symptom = pb.symptoms[0].id
    given = parameters.resolve(pb, params, labels, form)
    if given.missing:
        raise MissingParameters(parameters.missing_message(pb, given.missing), pb.id, given)
    chosen = incident is not None
    incident = incident or new_incident_id(drill)
    now = iso(engine.clock.now())
    from runbook.store import ConflictError

    for attempt in range(5):
        title = pb.title
        if pb.templated:  # "Disk filling up on {host}": the incident's title says which host (‹host› if not known yet)
            from runbook.catalog.preview import later
            from runbook.catalog.templates import for_people

            known = {"incident": incident, "severity": severity, "service": pb.service, "playbook": pb.id,
                     **{name: str(value) for name, value in given.values.items()}}
            title = for_people(pb.title, known, later(pb))
        first = [(actor, Opened(pb.id, title, severity, pb.service, symptom, drill, stored["hash"], rehearse,
                                bool(live and drill), digest, source, from_incident, escalation_by(engine),
                                {str(k): str(v) for k, v in (labels or {}).items()}))]
        if given.values:
            first.append((actor, ParametersSet(given.values, given.sources)))
        for name, why in given.ignored:  # said on the timeline, so nobody wonders why it is unset
            first.append((SYSTEM, NoteAdded(f"parameter {name} left unset: the label did not fit ({why})")))
        first += [(SYSTEM, record) for track in pb.response_tracks if track.steps
                  for record in opening_steps(snapshot, track, severity, symptom, labels, given.values)]
        try:
            engine.store.create_incident(incident, stored, {"playbook": pb.id, "title": title, "service": pb.service,
                                                          "severity": severity, "drill": drill},
                                       [{"ts": now, "actor": who, "type": r.type, "data": r.to_data()}
                                        for who, r in first])
            break
        except ConflictError:
            if chosen or attempt == 4:
                raise
            incident = new_incident_id(drill)  # a random id some incident already has: draw again
    state = engine.state(incident)
    engine._observe(state, state.events)
    if engine.plugins is not None:
        engine._record_observer_failures(engine.plugins.take_observer_failures())
    from runbook.engine import safeguards

    if not drill:
        safeguards.stop_drills_for(engine, state)  # a real incident on a drill's service ends the drill
    elif state.snapshot.drill is not None and state.snapshot.drill.automatic:
        safeguards.auto_degrade(engine, incident)
        state = engine.state(incident)
    return state


def opening_steps(snapshot, track, severity: str, symptom: str | None, labels: dict | None, values: dict) -> list:
    """The first step of `track` started, or the first whose when: holds, those before it skipped
    saying why (the state does not exist yet: the facts a condition reads are given)."""
    facts = new_state("", snapshot)
    facts.severity, facts.symptom, facts.labels, facts.parameters = severity, symptom, dict(labels or {}), values
    return transition.start(facts, track, track.steps[0].id)


def new_incident_id(drill: bool = False) -> str:
    """A new random incident id, INC-854ABC (DRL- for drills): short to type, so it can collide;
    whoever stores it checks that no incident has it yet."""
    import secrets

    return f"{'DRL' if drill else 'INC'}-{secrets.token_hex(3).upper()}"


def set_parameter(engine, incident: str, actor: str, name: str, value: str) -> list[Event]:
    """Set (or change) one parameter mid-incident, checked like the values given at open:
    the next server of a "drain the next server" loop. Allowed in the follow-up phase too, where
    a follow-up message may need a value only known then (the postmortem's address)."""
    def build(state):
        if not state.in_followup:
            engine.require_live(state)
        if name == "severity" and name not in state.playbook.parameters:
            raise CommandError("severity is not a parameter; change it with `runbook incident severity ID LEVEL`")
        checked = parameters.check(state.playbook, name, value, "set")
        if state.parameters.get(name) == checked:
            raise CommandError(f"parameter {name} is already {checked!r}")
        return [ParametersSet({name: checked}, {name: "param"})]
    return engine.command(incident, actor, build)


def _refuse_if_broken(catalog, doc_id: str, kind: str) -> None:
    """DocumentError listing them when the catalog has errors about `doc_id` itself: a document of
    that id left out for failing its schema, or several documents sharing the id. Opening must
    never pick whichever of them happens to load, nor say "no playbook" when one is broken."""
    problems = catalog.problems_with(doc_id, kind) if hasattr(catalog, "problems_with") else []
    if problems:
        what = "drill" if kind == "Drill" else "playbook"
        count = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        raise DocumentError(problems, f"cannot open an incident on {what} '{doc_id}': the catalog has {count} "
                                      f"about documents with that id (fix them; `runbook validate` checks the "
                                      "catalog):")


def _opening_severity(pb, severity: str | None, labels: dict) -> tuple[str, str | None]:
    """The severity an incident opens at and where it came from (None: the playbook's default,
    with no alert label to say otherwise)."""
    if severity is not None:
        return severity, "given at open"
    rule = pb.severity_from
    if rule is None or not labels:
        return pb.severity, None
    if rule.label not in labels:
        return pb.severity, f"playbook default; no {rule.label} label"
    label = f"label {rule.label}={labels[rule.label]}"
    mapped = rule.severity(labels)
    if mapped is not None:
        return mapped, f"from {label}"
    return pb.severity, f"playbook default; {label} is not mapped"
