"""Alerts in: each alert a monitoring system sends becomes exactly one incident, or stays visible.

An alert is keyed on its fingerprint (a hash of its labels: the same every time that alert fires)
and its start time (new each time it fires again), so a repeated or retried delivery finds its
row in the store's alert ledger and adds nothing, while a new occurrence of the same alert gets
a row of its own. What happens to an alert the first time runbook hears of it:

- firing, and an earlier occurrence of the same alert belongs to an incident still open: it is
  linked to that incident ("attached"), which hears that the alert fires again;
- firing, and a playbook's symptom matches its labels: an incident id is reserved in the same
  transaction that records the alert ("pending"), then the incident is opened with the severity
  and parameters the labels give, its alert recorded on it and its automatic degradation applied
  ("opened"). A crash in between leaves the row pending with its owner; once the owner is gone
  (its process dead, or its lease run out: engine/owner.py) the next delivery of that alert, or
  `recover` on any server, opens it under the reserved id (an incident that already exists
  under that id is the one) and finishes what the owner left;
- firing, and no playbook matches (or two match equally well, or the playbook cannot open from
  these labels): kept as "unmatched" or "failed" with the reason, listed by `runbook alerts` and
  on the TUI home, never dropped;
- firing, matched, inside a scheduled maintenance window over a component its playbook affects
  and below the window's paging threshold: kept as "maintenance" with the window named, no
  incident opened (engine/maintenance.py); it can be opened by hand like an unmatched one;
- resolved: recorded on its incident (severity rises stop counting); once every alert linked to
  the incident has resolved, a playbook with `on_alert_resolved: resolve` resolves the incident
  too. Nothing resolves an incident on its own otherwise;
- malformed (the source checks each alert on its own, serve/alertmanager.py): kept as "rejected"
  with where and why, under a key of its own, and never acted on.

An alert is the same alert only when its labels are the same too: a sender that reuses a known
fingerprint for other labels (a bug, or a forgery) gets a row of its own, never the other
alert's incident.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import NamedTuple

from runbook.engine import maintenance
from runbook.engine import owner as owners
from runbook.engine.clock import iso, parse
from runbook.engine.events import AlertReceived
from runbook.engine.events.alerts import FIRING, RESOLVED
from runbook.engine.limits import check_size
from runbook.engine.opening import new_incident_id
from runbook.errors import RunbookError

ACTOR = "alertmanager"
# incidents of new alerts created in one transaction at most, and for how long at most (seconds)
BATCH, BATCH_SECONDS = 25, 0.02
# how long a process that holds no server lease (a CLI command, the TUI) is trusted to open a
# pending alert's incident; a server's own lease decides for it (engine/owner.py)
OPEN_LEASE = timedelta(seconds=60)


class Alert(NamedTuple):
    """One alert as its source reports it (Alertmanager's webhook fields)."""

    fingerprint: str
    status: str  # firing or resolved
    starts_at: str
    labels: dict
    annotations: dict = {}
    ends_at: str | None = None
    generator_url: str = ""
    receiver: str = ""
    rejected: str | None = None  # malformed: where and why (kept in the ledger as "rejected", never acted on)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Outcome(NamedTuple):
    """What one delivered alert did: opened, attached, repeat, resolved, unmatched, failed."""

    fingerprint: str
    alertname: str
    status: str
    outcome: str
    incident: str | None = None
    playbook: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return self._asdict()


def match(catalog, labels: dict) -> tuple[str | None, str | None, str | None]:
    """(playbook, symptom, reason): the playbook whose symptom the labels match best, or None with
    why not. Only label evidence counts here; two playbooks matching equally well is no match."""
    from runbook.catalog.matching import LABEL_SCORE, rank

    if catalog is None:
        return None, None, "no playbook catalog loaded"
    found = [m for m in rank(list(catalog.models("Playbook").values()), labels=labels)
             if m.score >= LABEL_SCORE * 0.01 and any(r.startswith("alert labels") for r in m.reasons)]
    if not found:
        return None, None, "no playbook symptom matches these labels"
    if len(found) > 1 and found[1].score == found[0].score:
        tied = [m.playbook for m in found if m.score == found[0].score]
        return None, None, f"matches {' and '.join(tied)} equally well; open one by hand"
    return found[0].playbook, found[0].symptom, None


class Received(NamedTuple):
    """An alert as the ledger took it: its row (as it was before, when seen already) and whether it is new."""

    alert: Alert
    stored: dict
    new: bool

    def answer(self) -> Outcome:
        """What the sender is told once the alert is durable, before anything acts on it: a new
        matched alert is "pending" with the incident id reserved for it."""
        stored, alert = self.stored, self.alert
        if self.new or stored["outcome"] in ("pending", "rejected"):
            return _outcome(stored, alert, stored["outcome"])
        if alert.status == RESOLVED and stored["status"] != RESOLVED:
            return _outcome(stored, alert, "resolved")
        return _outcome(stored, alert, "repeat")


def receive(engine, alerts: list[Alert], actor: str = ACTOR) -> list[Outcome]:
    """Record each alert by its own status (one delivery can mix firing and resolved ones) and act
    on it; store failures propagate (the sender should retry), everything else is an outcome."""
    owner = owners.claim()
    try:
        return act(engine, record(engine, alerts, owner), owner, actor)
    finally:
        owners.release(owner)


def record(engine, alerts: list[Alert], owner: dict) -> list[Received]:
    """Match each alert and store the whole delivery in the ledger in one transaction: once this
    returns every alert is durable, and a new matched one holds a reserved incident id and
    `owner` (who is to open it; a crash leaves it to `recover`). Nothing calls a plugin here."""
    from runbook.catalog.matching import sibling_group

    rows = []
    windows_now = maintenance.running(engine) if engine.catalog.models("StatusPage") else []
    playbooks = engine.catalog.models("Playbook")
    for alert in alerts:
        playbook, symptom, reason = (None, None, alert.rejected) if alert.rejected else match(engine.catalog,
                                                                                                  alert.labels)
        held = maintenance.holding(engine, playbook, symptom, alert.labels, windows_now) \
            if playbook and alert.status == FIRING else None
        group = sibling_group(playbooks[playbook], symptom) if playbook else None
        rows.append({**alert._asdict(), "alertname": alert.name, "playbook": playbook, "symptom": symptom,
                     "reason": reason, "held": held, "group": group,
                     "sibling_key": sibling_key(playbook, symptom, group, alert.labels)})
    stored = engine.store.receive_alerts(rows, iso(engine.clock.now()), new_incident_id, _leased(engine, owner))
    # the ledger may have kept an alert under a key of its own (a known fingerprint, other labels)
    return [Received(alert._replace(fingerprint=row["fingerprint"]), row, new)
            for alert, (row, new) in zip(alerts, stored)]


def sibling_key(playbook: str | None, symptom: str | None, group: tuple | None, labels: dict) -> str | None:
    """The ledger's key of an alert's group of siblings: its playbook, symptom and the values of
    the labels that make the group (None for an alert no playbook took)."""
    if group is None:
        return None
    said = json.dumps([playbook, symptom, [[name, labels.get(name)] for name in group]], ensure_ascii=True)
    return hashlib.sha256(said.encode()).hexdigest()[:32]


def act(engine, received: list[Received], owner: dict, actor: str = ACTOR) -> list[Outcome]:
    """Act on recorded alerts in order: open the incidents reserved for them (`owner` is the one
    `record` was given; new alerts next to each other opened together, see `_open_together`),
    tell open incidents of alerts firing again or resolved."""
    out, run = [], []
    for each in received:
        if each.new and each.stored["outcome"] == "pending":
            run.append(each.stored)
            continue
        out += _open_together(engine, run, actor)
        run = []
        out.append(_act(engine, each, owner, actor))
    return out + _open_together(engine, run, actor)


def _open_together(engine, rows: list[dict], actor: str) -> list[Outcome]:
    """Open the incidents of new pending alerts, BATCH at a time: created and their alerts
    recorded on them in one transaction (engine.batch: an alert storm's thousands of incidents
    wait for a commit a batch, not several an incident); then, once that is committed, each
    one's automatic degradation (what calls plugins); their rows settled in one transaction;
    then each one's first timers (pages). A batch ends after BATCH_SECONDS, or as soon as
    another writer waits (a delivery being recorded goes first). While a drill is open, or when
    an alert cannot be opened in a batch, each is opened on its own (opening a real incident
    stops the drills on its service, which restores their flags)."""
    from time import monotonic

    from runbook.store import StoreError

    if len(rows) < 2 or not engine.store.features.batches_writes or engine.list(open_only=True, drills=True):
        return [_open(engine, row, actor) for row in rows]
    out = []
    while rows:
        created, began = [], monotonic()
        try:
            with engine.batch():
                for row in rows[:BATCH]:
                    created.append(_create(engine, row, actor))
                    if monotonic() - began >= BATCH_SECONDS or engine.store.writers_waiting():
                        break  # a delivery being recorded waits for the batch: let it go first
        except StoreError:
            raise
        except RunbookError:  # one alert that cannot be opened holds up no other: each on its own
            return out + [_open(engine, row, actor) for row in rows]
        opened = [(row, made) for row, made in zip(rows, created) if not isinstance(made, Outcome)]
        for row, incident in opened:
            _prepare(engine, row, incident, actor)
        with engine.batch():
            for row, _ in opened:
                engine.store.settle_alert(row["fingerprint"], row["starts_at"], "opened")
        done = {id(row): _settled(engine, row, incident, actor) for row, incident in opened}
        out += [done.get(id(row), made) for row, made in zip(rows, created)]
        rows = rows[len(created):]
    return out


def _act(engine, received: Received, owner: dict, actor: str) -> Outcome:
    alert, stored = received.alert, received.stored
    if received.new:
        if stored["outcome"] == "pending":
            return _open(engine, stored, actor)
        if stored["outcome"] == "attached":
            _attached(engine, stored, alert, actor)
            return _outcome(stored, alert, "attached")
        return _outcome(stored, alert, stored["outcome"])
    if stored["outcome"] == "rejected":
        return _outcome(stored, alert, "rejected")
    if stored["outcome"] == "pending" and _take_over(engine, stored, owner):
        return _open(engine, {**stored, "owner": owner}, actor)
    if alert.status == RESOLVED and stored["status"] != RESOLVED:
        return _resolved(engine, stored, alert, actor)
    return _outcome(stored, alert, "repeat")


def recover(engine, actor: str = ACTOR) -> list[Outcome]:
    """Open the incidents of alerts left pending by a process that is gone (a crash between
    recording an alert and opening its incident). `runbook serve` calls it at start."""
    out = []
    for stored in engine.store.alerts(pending=True):
        owner = owners.claim()
        try:
            if _take_over(engine, stored, owner):
                out.append(_open(engine, {**stored, "owner": owner}, actor))
        finally:
            owners.release(owner)
    return out


def open_by_hand(engine, alert: str, playbook: str, actor: str, **options):
    """Open an incident on `playbook` for an alert no playbook took (unmatched, failed), with the
    alert's own labels (severity, parameters); the alert is linked to it, so it is no longer
    listed as needing a human. `alert` is its fingerprint (the latest occurrence) or
    fingerprint@startsAt. Two responders doing it at once get one incident: the second is told."""
    from runbook.errors import CommandError, NotFoundError

    if not alert.strip():
        from runbook.errors import UsageError

        raise UsageError("the alert's fingerprint is empty; give one from `runbook alerts --unmatched`")
    fingerprint, _, starts = alert.strip().partition("@")
    rows = [r for r in engine.store.alerts(fingerprint=fingerprint.lower()) if not starts or r["starts_at"] == starts]
    if not rows:
        raise NotFoundError(f"no alert {alert!r} received (see `runbook alerts`)")
    row = rows[0]
    if row["outcome"] not in ("unmatched", "failed", "resolved", "maintenance"):
        raise CommandError(f"alert {row['alertname'] or row['fingerprint']} already has incident {row['incident']} "
                           f"({row['outcome']})")
    owner = owners.claim()
    try:
        incident = engine.store.claim_alert_by_hand(row["fingerprint"], row["starts_at"], playbook, new_incident_id,
                                                    _leased(engine, owner))
        if incident is None:
            now = engine.store.alerts(fingerprint=row["fingerprint"])
            raise CommandError(f"alert {row['alertname'] or row['fingerprint']} was just taken: incident "
                               f"{next((r['incident'] for r in now if r['starts_at'] == row['starts_at']), '?')}")
        try:
            engine.open(playbook, actor, labels=row["labels"], incident=incident, **options)
        except BaseException:
            engine.store.settle_alert_by_hand(row["fingerprint"], row["starts_at"], incident, row["outcome"],
                                              row["reason"])
            raise
        record = AlertReceived(row["fingerprint"], row["starts_at"], row["alertname"] or "", dict(row["labels"]),
                               (row["annotations"] or {}).get("summary", ""), row["generator_url"] or "", True)
        engine.command(incident, actor, lambda s: [record])
        engine.store.settle_alert_by_hand(row["fingerprint"], row["starts_at"], incident, "opened",
                                          f"opened by hand by {actor} on {playbook}")
        return engine.state(incident)
    finally:
        owners.release(owner)


def _leased(engine, owner: dict) -> dict:
    """`owner` with the time until which it is trusted without a server lease ("until")."""
    if "until" not in owner:
        owner["until"] = owners.lease_end(engine, OPEN_LEASE.total_seconds())
    return owner


def _take_over(engine, stored: dict, owner: dict) -> bool:
    previous = stored["owner"]
    until = (previous or {}).get("until")
    if owners.status(previous, parse(until) if until else None, engine.clock.now(), engine.store) == owners.LIVE:
        return False
    return engine.store.take_over_alert(stored["fingerprint"], stored["starts_at"], previous, _leased(engine, owner))


def _open(engine, stored: dict, actor: str) -> Outcome:
    """Open the reserved incident of a pending alert; an incident already there under that id is
    the one (opened before a crash)."""
    made = _create(engine, stored, actor)
    if isinstance(made, Outcome):
        return made
    _prepare(engine, stored, made, actor)
    engine.store.settle_alert(stored["fingerprint"], stored["starts_at"], "opened")
    return _settled(engine, stored, made, actor)


def _create(engine, stored: dict, actor: str) -> str | Outcome:
    """The first part of opening a pending alert's incident, which calls no plugin that acts: the
    incident created under its reserved id (an incident already there under that id is the one,
    opened before a crash) and its alert recorded on it. The incident's id, or the outcome when
    it did not open."""
    from runbook.store import ConflictError, StoreError

    alert = _stored_alert(stored)
    incident = stored["incident"]
    try:
        try:
            engine.open(stored["playbook"], actor, symptom=stored["symptom"], labels=alert.labels, incident=incident)
        except ConflictError:
            if not _opened_for(engine, incident, stored, actor):  # someone else's incident took the id
                incident = engine.store.reserve_again(alert.fingerprint, alert.starts_at, incident, new_incident_id)
                if incident is None:
                    return _outcome(stored, alert, "repeat")
                engine.open(stored["playbook"], actor, symptom=stored["symptom"], labels=alert.labels,
                            incident=incident)
    except StoreError:
        raise
    except RunbookError as exc:  # the playbook cannot open from these labels: kept, with why
        reason = f"could not open {stored['playbook']}: {exc}"
        engine.store.settle_alert(alert.fingerprint, alert.starts_at, "failed", reason, incident=None)
        for sibling in engine.store.alerts(incident=incident, outcome="attached"):  # they joined what never opened
            engine.store.settle_alert(sibling["fingerprint"], sibling["starts_at"], "failed", reason, incident=None)
        return Outcome(alert.fingerprint, alert.name, alert.status, "failed", None, stored["playbook"], reason)
    record = _received(alert, opened=True)
    engine.command(incident, actor, lambda state: [] if _linked(state, alert) else [record])
    return incident


def _prepare(engine, stored: dict, incident: str, actor: str) -> None:
    """Once `_create` is committed: the siblings that joined the incident while it was reserved,
    and its automatic degradation. Then the row is settled "opened" (by the caller)."""
    for sibling in engine.store.alerts(incident=incident, outcome="attached"):  # joined while it was reserved
        if _sibling(engine, sibling):
            _join(engine, sibling, _stored_alert(sibling), actor)
    from runbook.engine import safeguards

    # The row stays pending until the automatic degradation is done: an owner killed before
    # that leaves it to whoever takes the alert over, who first settles a flag change the dead
    # owner left in flight, then applies what is still not applied.
    engine.effects.reconcile(incident, flags_only=True)
    safeguards.auto_degrade(engine, incident)  # a symptom's auto_degrade:, at the severities it names


def _settled(engine, stored: dict, incident: str, actor: str) -> Outcome:
    """Once the row says "opened": the incident's first timers, and its alert's resolving if that
    came meanwhile."""
    alert = _stored_alert(stored)
    engine.tick(incident)
    now = {r["starts_at"]: r for r in engine.store.alerts(incident=incident)}.get(alert.starts_at)
    if now is not None and now["status"] == RESOLVED:  # resolved while it was being opened
        _resolved(engine, {**now, "outcome": "opened"}, alert._replace(status=RESOLVED), actor)
    return Outcome(alert.fingerprint, alert.name, alert.status, "opened", incident, stored["playbook"])


def _opened_for(engine, incident: str, stored: dict, actor: str) -> bool:
    """Whether the incident under a pending alert's reserved id is the one this alert opened (a
    crash came between the open and the row saying so) rather than another that drew the id."""
    events = engine.state(incident).events
    if not events or events[0].actor != actor or events[0].record.playbook != stored["playbook"]:
        return False
    received = [e.record for e in events if e.type == "alert_received"]
    return not received or any(r.fingerprint == stored["fingerprint"] and r.starts_at == stored["starts_at"]
                               for r in received)


def _linked(state, alert: Alert) -> bool:
    """Whether the incident already records this alert (its occurrence) as the one it opened for."""
    return any(e.type == "alert_received" and e.record.fingerprint == alert.fingerprint
               and e.record.starts_at == alert.starts_at for e in state.events)


def _stored_alert(stored: dict) -> Alert:
    return Alert(stored["fingerprint"], stored["status"], stored["starts_at"], stored["labels"],
                 stored["annotations"] or {}, stored["ends_at"], stored["generator_url"] or "",
                 stored["receiver"] or "")


def _attached(engine, stored: dict, alert: Alert, actor: str) -> None:
    incident = stored["incident"]
    if _sibling(engine, stored):
        if engine.store.incident(incident) is not None:  # else still to open: its opener records this one
            _join(engine, stored, alert, actor)
        return
    record = _received(alert, opened=False)
    engine.command(incident, actor, lambda state: [record])
    if alert.status == FIRING:
        engine.alert_firing(incident, actor, alert.name or alert.fingerprint)
    else:
        _resolved(engine, stored, alert, actor)


def _sibling(engine, stored: dict) -> bool:
    """Whether an attached row joined as a sibling (another alert of the group), not as a new
    occurrence of an alert already linked to the incident."""
    return not any(row["fingerprint"] == stored["fingerprint"] and row["starts_at"] != stored["starts_at"]
                   for row in engine.store.alerts(incident=stored["incident"]))


def _join(engine, stored: dict, alert: Alert, actor: str) -> None:
    """Record a sibling alert on the incident it joined, once, and raise the incident's severity
    in the same command when the sibling's labels map to a higher one (severity_from)."""
    from runbook.catalog.matching import sibling_group
    from runbook.engine.events import SeverityChanged

    def build(state):
        if _linked(state, alert):
            return []
        group = sibling_group(state.playbook, stored["symptom"]) or ()
        out = [_received(alert, opened=False, sibling={name: alert.labels.get(name, "") for name in group})]
        rule = state.playbook.severity_from
        severity = rule.severity(alert.labels) if rule is not None else None
        if severity is not None and not state.resolved \
                and state.snapshot.rank(severity) < state.snapshot.rank(state.severity):
            out.append(SeverityChanged(state.severity, severity, f"sibling alert {alert.name or alert.fingerprint} "
                                                                 f"joined with label {rule.label}="
                                                                 f"{alert.labels[rule.label]}"))
        return out
    engine.command(stored["incident"], actor, build)
    if alert.status == FIRING:
        engine.alert_firing(stored["incident"], actor, alert.name or alert.fingerprint)


def _resolved(engine, stored: dict, alert: Alert, actor: str) -> Outcome:
    """The alert resolved at its source: recorded once every alert of the incident has; the
    incident resolved too when its playbook says so."""
    incident = stored["incident"]
    if not incident or stored["outcome"] == "pending":  # nothing to tell yet; the opener will
        return _outcome(stored, alert, "resolved")
    linked = engine.store.alerts(incident=incident)
    if any(r["status"] != RESOLVED for r in linked):
        return _outcome(stored, alert, "resolved", reason="other alerts of the incident still fire")
    engine.alert_resolved(incident, actor, alert.name or alert.fingerprint)
    state = engine.state(incident)
    if state.playbook.on_alert_resolved != "resolve" or state.resolved:
        return _outcome(stored, alert, "resolved")
    try:
        engine.resolve(incident, actor)
    except RunbookError as exc:
        engine.note(incident, actor, f"the alert resolved at its source, but the incident could not be resolved "
                                     f"automatically: {exc}")
        return _outcome(stored, alert, "resolved", reason=str(exc))
    return _outcome(stored, alert, "resolved", reason="incident resolved (on_alert_resolved: resolve)")


def _received(alert: Alert, opened: bool, sibling: dict | None = None) -> AlertReceived:
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    check_size("the alert's summary", summary)
    return AlertReceived(alert.fingerprint, alert.starts_at, alert.name, dict(alert.labels), summary,
                         alert.generator_url, opened, sibling)


def _outcome(stored: dict, alert: Alert, outcome: str, reason: str | None = None) -> Outcome:
    return Outcome(alert.fingerprint, alert.name, alert.status, outcome, stored.get("incident"),
                   stored.get("playbook"), reason or stored.get("reason"))
