"""The incident engine: commands checked against state, appended as events, side effects in two phases.

The TUI, the CLI, drills and simulations all drive this API; nothing else appends events.
Every command checks itself against the incident's current state and appends with the expected
sequence number; when another writer got there first it re-reads and tries again, so a command
that became invalid meanwhile ("already acknowledged by ana") fails with a clear message instead
of being recorded twice. The state is read first, unless the engine holds it and either its store
can tell that nobody else has written since (SQLite) or the append names the event the state
ends at and the store refuses it if the log moved on (PostgreSQL; `_held`).

Commands and reads live here; each command builds event records (`engine/events.py`), and every
command that finishes a step takes its events from the one step transition
(`engine/transition.py`). Side effects in two phases (flag flips, actions, pages, reconcile) are
in `engine/effects.py`.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import TYPE_CHECKING

from runbook.catalog.suggest import did_you_mean
from runbook.engine import (
    background,
    cadence,
    checkpoint,
    integrity,
    learning,
    lifecycle,
    listing,
    opening,
    pages,
    roles,
    timers,
    transition,
)
from runbook.engine.clock import SystemClock, iso, parse
from runbook.engine.effects import SYSTEM, Effects, plugin_errors
from runbook.engine.events import (
    Acknowledged,
    ActionItemAdded,
    AlertStateChanged,
    Event,
    EventFormatError,
    EventRecord,
    Mitigated,
    NoteAdded,
    ReviewWritten,
    SeverityChanged,
    apply,
    fold,
)
from runbook.engine.events.alerts import FIRING, RESOLVED
from runbook.engine.lifecycle import drill_over
from runbook.engine.limits import check_size
from runbook.engine.opening import MissingParameters
from runbook.engine.roles import waiting_for
from runbook.engine.snapshot import Snapshot
from runbook.engine.state import ACTIVE, IncidentState
from runbook.engine.step_commands import StepCommands
from runbook.engine.ticks import fire_due
from runbook.errors import CommandError, ReasonNeeded, RecordError
from runbook.store import ConflictError, FencedError, IncidentStore, StoreError
from runbook.text import check_actor, one_line

if TYPE_CHECKING:  # the loader pulls in PyYAML; only its types are needed here
    from runbook.catalog.loader import Catalog

log = logging.getLogger("runbook.engine")

RETRIES = 20
RESOLVE_WAIT = 10.0  # seconds `resolve` waits for a flag change in flight before refusing

__all__ = ["SYSTEM", "CommandError", "Engine", "MissingParameters", "ReasonNeeded"]


def _pause_after_conflict(attempt: int) -> None:
    """A short random wait before retrying a command that lost a race (up to 1, 2, 4... 32 ms):
    writers that collided spread out instead of colliding again, so none loses every retry.
    Real time on purpose: it spaces processes apart, it is not a timer of the incident."""
    import random
    import time

    time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt - 1, 5)))


class Engine(StepCommands):
    def __init__(self, store: IncidentStore, clock=None, plugins=None, catalog: Catalog | None = None):
        self.store = store
        self.clock = clock or SystemClock()
        self.plugins = plugins
        self.catalog = catalog
        self.catalog_loader = None  # loads the catalog when a command needs it and none was given (a handoff)
        self.effects = Effects(self)
        self.metrics_source = None  # where prometheus: checks read (metric_checks.MetricSource); None: the settings'
        self.resolve_wait = RESOLVE_WAIT
        # a record of why the next command runs (engine/chat.py: the chat message that asked for
        # it), appended in the same transaction as that command's first events
        self.receipt = None
        self._states: dict[str, IncidentState] = {}
        # the store's count of other connections' commits when each state was last caught up
        self._caught_at: dict[str, int | None] = {}
        # Snapshots taken and loaded per (catalog, playbook, drill): simulations open thousands of
        # incidents on one playbook, and a loaded Snapshot is immutable.
        self._taken: dict[tuple, tuple] = {}  # values keep the keyed objects alive, so ids stay unique
        # each append's request id is "<requests>.<n>": a store that may lose a connection with an
        # append in flight keeps it, so that append is settled, and a command run again with the same
        # `requests` (RUNBOOK_REQUEST, runtime.py) finds what its first run recorded
        self.requests = uuid.uuid4().hex[:16]
        self.retried = False  # True: `requests` are those of a run told it failed; look for what it recorded
        # this process's hold on incidents' timers (owner.IncidentLeases; every face's engine has
        # one): set, `tick` fires only what this process holds, each write fenced by the epoch it
        # holds it at; None (a simulation's engine, alone on its store): every tick fires
        self.timer_leases = None
        self._fences: dict[str, tuple[str, int]] = {}  # incident -> (holder, epoch) of the tick running
        self._request_numbers = itertools.count(1)
        self._observed_later: list | None = None  # inside `batch()`: what the observers hear at its end

    # reading ------------------------------------------------------------------------------

    def resolve_id(self, incident: str) -> str:
        """The full incident id from what was typed: a unique start, any case, INC- optional (854: INC-854ABC)."""
        from runbook.engine.ids import resolve_incident_id

        return resolve_incident_id(self.store, incident)

    def state(self, incident: str) -> IncidentState:
        """The incident's state, caught up with every event appended so far (by anyone).

        A record too damaged to load (its snapshot or its opened event gone, an event of an unknown
        type) is a `RecordError` naming what is missing; `integrity` names every problem."""
        version = self._others_commits()  # before reading: a commit landing during the read shows next time
        cached = self._states.get(incident)
        if cached is None:
            stored, found, events, row = self.store.read_recent(incident, checkpoint.WINDOW)
            if stored is None and not events and row is None:
                full = self.resolve_id(incident)  # a unique prefix, or NotFoundError with suggestions
                if full != incident:
                    return self.state(full)
            if stored is None:
                raise RecordError(f"the record of {incident} is damaged: the playbook snapshot it runs on "
                                            f"is missing; `runbook incident verify {incident}` names every problem")
            start = integrity.first_event(events)
            if start:
                raise RecordError(f"the record of {incident} is damaged: {start}; "
                                            f"`runbook incident verify {incident}` names every problem")
            loaded = next((entry[4] for entry in self._taken.values() if entry[3] is stored), None)
            snapshot = loaded or Snapshot.load(stored)
            cached, problem = self._from_checkpoint(incident, found, events, snapshot) if found else (None, None)
            if found is not None and cached is None:  # not usable: fold the whole log instead
                stored, events, row = self.store.read_record(incident)
            left_out = None
            try:
                if cached is None:
                    cached = fold(incident, events, snapshot)
            except EventFormatError:  # what verifies still holds: its degradations can be restored
                stored, events, row = self.store.read_record(incident)
                cached, left_out = integrity.verified_fold(incident, events, snapshot)
            if left_out is not None:
                cached.tampered = "; ".join(
                    [f"only what verifies is read ({'; '.join(left_out)}: left out)"]
                    + integrity.quick(self.store, incident, row, stored, events))
            elif loaded is None and self.store.features.persistent:
                problems = integrity.quick(self.store, incident, row, stored, events, cached, columns=False)
                cached.tampered = "; ".join(([problem] if problem else []) + problems)
            self._states[incident] = cached
            self._caught_at[incident] = version
            self._keep_checkpoint(cached)
            return cached
        try:
            for stored_event in self.store.events(incident, after=cached.last_seq):
                apply(cached, Event.from_stored(stored_event))
        except EventFormatError:  # an event it cannot read came in: read again, what verifies
            self._states.pop(incident, None)
            return self.state(incident)
        self._caught_at[incident] = version
        self._keep_checkpoint(cached)
        return cached

    def _others_commits(self) -> int | None:
        """The store's count of commits by other connections (SQLite's data_version), or None
        where it cannot tell (features.counts_commits)."""
        return self.store.data_version() if self.store.features.counts_commits else None

    def _held(self, incident: str) -> IncidentState | None:
        """The incident's state as this engine holds it, if a command may be checked against it
        without reading the log first, or None: read first. Where the store counts other
        connections' commits (SQLite), only while none has committed since it was caught up;
        elsewhere (PostgreSQL, the memory store) it is tried as it is: the append names the event
        the state ends at, and a log that moved on refuses it, after which the command reads."""
        held = self._states.get(incident)
        if held is None:
            return None
        version = self._others_commits()
        if version is not None and self._caught_at.get(incident) != version:
            return None  # someone else wrote (the TUI's ticker, another responder): read, do not guess
        return held

    def _from_checkpoint(self, incident: str, found: dict, events: list, snapshot: Snapshot):
        """The state from a stored checkpoint and the events read with it (the opened event, then
        from the window before the checkpoint on), or (None, what is wrong with it) when it cannot
        be used: altered, of another format, or no longer matching the log."""
        key = self.store.key
        problem = checkpoint.altered(found, incident, key, events)
        if problem or checkpoint.unsigned(found, key):
            return None, problem
        seq = prev_seq = found["seq"]
        prev = found["chain_hash"]
        for event in events:
            if event.seq > seq:
                if event.prev_hash != prev or event.seq != prev_seq + 1:
                    return None, f"event {event.seq} does not link to event {event.seq - 1} after the checkpoint"
                prev, prev_seq = event.hash, event.seq
        upto = [e for e in events if e.seq <= seq]
        if len(upto) > 1 and upto[1].seq != 2:
            upto = upto[1:]  # the opened event, read apart from the window
        if [e.seq for e in upto] != list(range(upto[0].seq, seq + 1)):
            return None, f"events before the checkpoint at event {seq} are missing from the log"
        try:
            window = [Event.from_stored(e) for e in upto]
            head = window[0] if window[0].seq == 1 else Event.from_stored(events[0])
            state, _ = checkpoint.load(found["body"], incident, snapshot, head, window,
                                       lambda: [Event.from_stored(e) for e in self.store.events(incident)])
            for event in events:
                if event.seq > seq:
                    apply(state, Event.from_stored(event))
        except (checkpoint.CheckpointError, EventFormatError):
            return None, None  # another format, or an event this runbook cannot read: the full fold says
        return state, None

    def _keep_checkpoint(self, state: IncidentState) -> None:
        """Store a checkpoint once EVERY events came after the last (not for a record that does not
        verify, nor where the store cannot be written); a failure only costs the next open time."""
        if state.last_seq - state.base_seq < checkpoint.every() or state.tampered or not state.events:
            return
        store = self.store
        if not store.features.persistent or store.features.readonly:
            return
        base = state.base_seq if state.base_summary is not None else 0
        # what is folded into the checkpoint must be what the chain holds: the load's quick checks
        # leave the hashes to `incident verify`, and a signed checkpoint over an event edited in
        # place would hide the edit from every screen from then on (they check from it on)
        altered = integrity.altered_since(state.id, state.events[base:], state.events[base - 1].hash if base else None)
        if altered:
            state.tampered = altered
            return
        summary = integrity.folded_summary([(e.ts or iso(e.at), e.record) for e in state.events[base:]],
                                           state.base_summary if base else None)
        last = state.events[-1]
        state.base_seq, state.base_summary = last.seq, summary  # tried once per EVERY events, kept or not
        try:
            body = checkpoint.body(state, summary)
            digest = checkpoint.digest(state.id, last.seq, last.hash, body)
            store.save_checkpoint(state.id, last.seq, last.hash, body, digest,
                                  checkpoint.sign(store.key, digest))
        except (checkpoint.CheckpointError, StoreError):
            pass  # not kept (a role without the grant, a busy database): the next open folds more

    def list(self, **filters) -> list[dict]:
        """Summary rows, newest first, each checked cheaply against its log (engine/listing.py)."""
        return listing.list_incidents(self, **filters)

    def without_summary(self) -> list[str]:
        """Incidents with events or a snapshot but no summary row (engine/listing.py)."""
        return listing.without_summary(self)

    def integrity(self, incident: str, full: bool = True) -> integrity.Integrity:
        """Every check of the incident's record: hash chain, events, summary, snapshot, chain key,
        checkpoint. Works on a record too damaged to load (no snapshot, no summary row, unknown
        events). With full=False (what screens use) the chain is walked from the incident's
        checkpoint on (engine/checkpoint.py): a big incident shows at once; `incident verify` is full."""
        incident = self.resolve_id(incident)
        return integrity.check(self.store, incident) if full else integrity.recent(self.store, incident)

    # appending ----------------------------------------------------------------------------

    def _append(self, state: IncidentState, actor: str, records: list[EventRecord], held: bool) -> list[Event]:
        """Append `records` after the last event of `state`; a `held` state (not read for this
        command) names that event's hash, so the store checks the log still ends there instead
        of reading it (PostgreSQL: the append is then one round trip)."""
        for rec in records:
            if not isinstance(rec, EventRecord):
                raise TypeError(f"the engine appends event records (runbook.engine.events), not {rec!r}")
        now = iso(self.clock.now())
        stored = self.store.append(state.id, state.last_seq, [
            {"ts": now, "actor": actor, "type": r.type, "data": r.to_data(), "summary": r.project(now)}
            for r in records], after_hash=state.events[-1].hash if held and state.events else None,
            request=f"{self.requests}.{next(self._request_numbers)}", retried=self.retried,
            fence=self._fences.get(state.id))
        if stored and stored[0].seq <= state.last_seq:
            return []  # a command run again after a lost connection: its first run's events are in the log
        at = parse(now)
        appended = [Event(e.seq, at, e.actor, r, e.data, e.hash, e.ts) for e, r in zip(stored, records)]
        for event in appended:
            apply(state, event)
        self._observe(state, appended)
        return appended

    def command(self, incident: str, actor: str, build) -> list[Event]:
        """Check-and-append with optimistic concurrency: on a conflict re-read, re-check, retry.
        The one way events are appended: every command of the engine and of its feature modules
        (steps, effects, stages, intake...) is a `build` passed here.

        `build(state)` returns the event records to append (or none), or raises CommandError.

        A state this engine holds may be used as it is, without reading the log first (`_held`:
        nobody else has committed since it was caught up). If another writer appended after all,
        the append fails its check and the command is checked again at once on the caught-up
        state (no pause: it was not a race lost, only news). A refusal or a "nothing to do"
        decided on the held state stands only once the log is known to hold nothing newer."""
        check_actor(actor)
        held = self._held(incident)
        races = 0
        for _ in range(RETRIES):
            if races:
                _pause_after_conflict(races)
            try:
                with self._writing(incident, held):
                    state = held if held is not None else self.state(incident)
                    try:
                        records = build(state)
                    except CommandError:
                        if held is not None and self._caught_up(held):
                            held = None
                            continue  # the log had moved on: check again on what it holds now
                        raise
                    if not records:
                        if held is not None and self._caught_up(held):
                            held = None
                            continue
                        return []
                    if self.receipt is not None:
                        records = [*self.receipt(state), *records]
                    appended = self._append(state, actor, records, held is not None)
                    self.receipt = None
            except ConflictError:
                if held is None:
                    races += 1
                held = None
                continue
            except StoreError:  # not recorded (a lost commit): the state held here may have folded it
                self._states.pop(incident, None)
                raise
            try:  # as a read would have: a command on the held state reads nothing
                self._keep_checkpoint(state)
            except Exception:  # the command is recorded: a checkpoint not kept costs only open time
                pass
            if learning.changes_words(state, appended):
                learning.index(self, state, after_command=True)
            if self.plugins is not None:
                self._record_observer_failures(self.plugins.take_observer_failures())
            if state.background and any(e.type in background.ENDINGS for e in appended):
                # a step that ended or a resolve may be what a background command runs until
                appended += background.settle(self, incident)
            return appended
        raise ConflictError(f"incident {incident} kept changing under this command; try again")

    def _caught_up(self, state: IncidentState) -> bool:
        """Catch the held `state` up with the log; whether the log held anything newer."""
        seen = state.last_seq
        return self.state(state.id) is not state or state.last_seq != seen

    def _writing(self, incident: str, held: IncidentState | None):
        """A command that reads first, on a store that can hold an incident for a writer
        (PostgreSQL), holds it from the read to the append: writers that had to read queue
        instead of racing. A held state is not read, and elsewhere the sequence check alone
        arbitrates (SQLite's appends are short)."""
        if held is None and self.store.features.holds_writers:
            return self.store.writing(incident)
        return nullcontext()

    def _observe(self, state: IncidentState, appended: list[Event]) -> None:
        """Hand appended events to the plugins' observers, which run on the host's own threads."""
        if self.plugins is not None:
            for event in appended:
                if self._observed_later is not None:
                    self._observed_later.append((state.id, event))
                else:
                    self.plugins.observe(state.id, event)

    @contextmanager
    def batch(self):
        """The commands inside committed together at its end, on a store that batches writes
        (store.batch; elsewhere each as usual). The observers hear of their events once they are
        committed; an error out of the block undoes them all, and the states they had changed are
        read again. Inside, nothing may call a plugin that acts (a flag, a page, an action): it
        would act on a record that may yet be undone."""
        if self._observed_later is not None or not self.store.features.batches_writes:
            yield
            return
        later = self._observed_later = []
        try:
            with self.store.batch():
                yield
        except BaseException:
            self._states.clear()
            raise
        finally:
            self._observed_later = None
        if self.plugins is not None:
            for incident, event in later:
                self.plugins.observe(incident, event)

    def _record_observer_failures(self, failures) -> None:
        """Observers never write (their threads would interleave with this connection's
        transactions); what they failed is appended here, to the incident each was observing."""
        by_incident: dict[str, list] = {}
        for incident, failure in failures:
            by_incident.setdefault(incident, []).extend(plugin_errors([failure]))
        for incident, records in by_incident.items():
            self.command(incident, SYSTEM, lambda s, records=records: records)

    def close(self, grace: float | None = None) -> None:
        """Before exit: give event observers still working up to `grace` seconds (default: the
        plugin settings'), then record what failed or did not finish. The store stays open."""
        if self.plugins is not None:
            self._record_observer_failures(self.plugins.drain(grace))

    # opening ------------------------------------------------------------------------------

    def open(self, playbook: str, actor: str, symptom: str | None = None, severity: str | None = None,
             drill: bool = False, incident: str | None = None, rehearse: str | None = None,
             live: bool = False, params: dict | None = None, labels: dict | None = None,
             form: dict | None = None, from_incident: str | None = None, alert: str | None = None) -> IncidentState:
        """Open an incident on `playbook` (engine/opening.py says how); `alert` (a fingerprint)
        opens it for an alert `runbook serve` kept unmatched, with its labels (engine/intake.py)."""
        if alert is not None:
            from runbook.engine import intake

            return intake.open_by_hand(self, alert, playbook, actor, symptom=symptom, severity=severity,
                                       drill=drill, params=params, form=form)
        state = opening.open_incident(self, playbook, actor, symptom=symptom, severity=severity, drill=drill,
                                      incident=incident, rehearse=rehearse, live=live, params=params, labels=labels,
                                      form=form, from_incident=from_incident)
        learning.index(self, state)
        return state

    def set_parameter(self, incident: str, actor: str, name: str, value: str) -> list[Event]:
        """Set or change one parameter, checked like at open."""
        return opening.set_parameter(self, incident, actor, name=name, value=value)

    # checks -------------------------------------------------------------------------------

    @staticmethod
    def require_live(state: IncidentState) -> None:
        if state.closed:
            raise CommandError(f"incident {state.id} is closed; only notes and action items can be added")
        if state.in_followup:
            raise CommandError(f"incident {state.id} is resolved and in its follow-up phase; only follow-up steps, "
                               "roles, parameters, notes, action items and restoring leftover degradations are "
                               "allowed")
        if state.resolved:
            raise CommandError(f"incident {state.id} is resolved; only notes can be added")


    # commands -----------------------------------------------------------------------------

    def acknowledge(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self.require_live(state)
            if state.acknowledged_at:
                raise CommandError(f"incident {state.id} was already acknowledged by {state.acknowledged_by} "
                                   f"at {state.acknowledged_at:%H:%M:%S}")
            return [Acknowledged()]
        acknowledged = self.command(incident, actor, build)
        return acknowledged + pages.tell_pagers(self, incident, "acknowledge", actor)  # the pagers stop paging too


    def pager_report(self, report: pages.PagerReport) -> tuple[str, str, list[Event]]:
        """What a pager's own app did with an alert runbook opened (engine/pages.py from_pager)."""
        return pages.from_pager(self, report)

    def severity(self, incident: str, actor: str, severity: str, reason: str = "") -> list[Event]:
        check_size("the reason", reason)

        def build(state):
            self.require_live(state)
            levels = [lv.id for lv in state.snapshot.levels]
            if levels and severity not in levels:
                raise CommandError(f"unknown severity '{severity}', expected one of: {', '.join(levels)}"
                                   f"{did_you_mean(severity, levels)}")
            if severity == state.severity:
                raise CommandError(f"incident {state.id} is already {severity}")
            if not reason.strip() and state.snapshot.rank(severity) > state.snapshot.rank(state.severity):
                raise ReasonNeeded(f"lowering the severity of {state.id} from {state.severity} to {severity} "
                                   "needs a reason")
            return [SeverityChanged(state.severity, severity, reason.strip())]
        return self.command(incident, actor, build)


    def alert_resolved(self, incident: str, actor: str, alert: str = "") -> list[Event]:
        """The alert stopped firing at its source: severity rises wait (their clock stops)."""
        return self.alert_state(incident, actor, RESOLVED, alert)

    def alert_firing(self, incident: str, actor: str, alert: str = "") -> list[Event]:
        """The alert fires again: severity rises count on from where they stopped."""
        return self.alert_state(incident, actor, FIRING, alert)

    def alert_state(self, incident: str, actor: str, state_name: str, alert: str = "") -> list[Event]:
        """Record what the alert's source says. Saying what is already so records nothing (an
        intake may repeat itself); allowed after resolve, like a note: it is what the source said."""
        if state_name not in (FIRING, RESOLVED):
            raise CommandError(f"an alert is {FIRING} or {RESOLVED}, not '{state_name}'"
                               f"{did_you_mean(state_name, [FIRING, RESOLVED])}")
        check_size("the alert name", alert)

        def build(state):
            if state.alert_firing == (state_name == FIRING):
                return []
            out = [AlertStateChanged(state_name, alert)]
            if state_name == RESOLVED and not state.resolved:  # a wait on it (alert: resolved) holds now
                for step_id in state.current_steps():
                    step = state.playbook.step(step_id)
                    if step.wait_alert and state.steps[step_id].status == ACTIVE and waiting_for(state, step) is None:
                        out += transition.finish(state, step, transition.Done(transition.ALERT_RESOLVED))
            return out
        return self.command(incident, actor, build)

    def receive_alerts(self, alerts: list, actor: str = "alertmanager") -> list:
        """Alerts from a monitoring system: each opens, joins or resolves its incident exactly
        once, or is kept as unmatched (engine/intake.py)."""
        from runbook.engine import intake

        return intake.receive(self, alerts, actor)

    def recover_alerts(self, actor: str = "alertmanager") -> list:
        """Open the incidents of alerts a crashed intake left pending (engine/intake.py)."""
        from runbook.engine import intake

        return intake.recover(self, actor)

    def alerts(self, outcome: str | None = None, incident: str | None = None, limit: int | None = None,
               after: tuple | None = None) -> list[dict]:
        """The alerts received, the latest seen first: all, by outcome (unmatched...), or one
        incident's; `after`: from the row after this (last_seen, fingerprint, starts_at) on."""
        return self.store.alerts(outcome=outcome, incident=incident, limit=limit, after=after)

    def prune_alerts(self, older_than: float, dry_run: bool = False) -> tuple[int, str]:
        """Forget the alerts last heard of more than `older_than` seconds ago, but for those
        still pending or linked to an open incident: (how many (would) go, the time before which).
        The leases on the timers of incidents resolved before then go too (nobody ticks them)."""
        before = iso(self.clock.now() - timedelta(seconds=older_than))
        if not dry_run:  # with the ledger's retention: the timers' leases of incidents resolved before then
            self.store.prune_incident_leases(before)
        return self.store.prune_alerts(before, dry_run), before

    def record_simulation(self, drill: str, playbook: str, runs: int, seed: int, created_at: str,
                          summary: dict) -> int:
        """Keep a simulated drill's summary (its runs' events are not kept); its id."""
        return self.store.record_simulation(drill, playbook, runs, seed, created_at, summary)

    def simulations(self, drill: str | None = None) -> list[dict]:
        """The simulation summaries kept, oldest first (all, or one drill's)."""
        return self.store.simulations(drill)

    def note(self, incident: str, actor: str, text: str) -> list[Event]:
        if not text.strip():
            raise CommandError("a note needs text")
        check_size("the note", text)
        return self.command(incident, actor, lambda state: [NoteAdded(text)])

    def add_action_item(self, incident: str, actor: str, text: str, owner: str = "", due: str | None = None,
                        priority: str | None = None, kind: str | None = None,
                        ticket: str | None = None) -> list[Event]:
        """An action item from the debrief or postmortem; allowed after resolve, like notes."""
        if not text.strip():
            raise CommandError("an action item needs text")
        check_size("the action item", text)
        learning.check_item_fields(due, priority, kind)
        return self.command(incident, actor,
                            lambda state: [ActionItemAdded(text, owner, due, priority, kind, ticket or None)])

    def close_action_item(self, item: str, actor: str, evidence: str, evidence_kind: str = "link") -> list[Event]:
        """Close action item `item` (INC-…#2) with the evidence that it is done."""
        incident, number = learning.parse_item_id(item)
        check_size("the evidence", evidence)
        if evidence_kind == "drill":
            self._check_drill_passed(evidence)
        return self.command(self.resolve_id(incident), actor,
                            lambda state: learning.close_records(state, number, evidence, evidence_kind))

    def _check_drill_passed(self, drill: str) -> None:
        """Evidence of kind "drill" names a drill run that passed: resolved, no target breached."""
        from runbook.engine.metrics import metrics

        state = self.state(self.resolve_id(drill))
        if not state.drill:
            raise CommandError(f"{state.id} is not a drill; evidence of kind drill names a drill run that passed")
        breached = [name for name, t in metrics(state).targets.items() if t["breached"]]
        if not state.resolved or breached:
            why = "it is not resolved" if not state.resolved else f"it breached {', '.join(breached)}"
            raise CommandError(f"drill {state.id} did not pass ({why}); close the item with a drill run that did")

    def write_review(self, incident: str, actor: str, section: str, text: str) -> list[Event]:
        """One postmortem section as a person wrote it (learning.REVIEW_SECTIONS)."""
        learning.check_section(section)
        if not text.strip():
            raise CommandError(f"the review's {section} needs text")
        check_size(f"the review's {section}", text)
        return self.command(incident, actor, lambda state: [ReviewWritten(section, text)])

    def remind_overdue(self, actor: str = SYSTEM) -> list[dict]:
        """Remind the owners of overdue action items (engine/learning.py)."""
        return learning.remind_overdue(self, actor)

    def action_items(self) -> list:
        """Every action item of every incident, from the log."""
        return learning.all_items(self)

    def similar(self, incident: str, limit: int = learning.TOP) -> list[dict]:
        """Past incidents like this one, best first (engine/learning.py)."""
        return learning.similar(self, self.resolve_id(incident), limit)

    def reindex(self) -> int:
        """Rebuild the search words of incidents whose index is behind their log."""
        return learning.reindex(self)

    def mitigate(self, incident: str, actor: str) -> list[Event]:
        def build(state):
            self.require_live(state)
            if state.mitigated_at:
                raise CommandError(f"incident {state.id} was already marked mitigated at {state.mitigated_at:%H:%M:%S}")
            return [Mitigated()]
        return self.command(incident, actor, build)

    def resolve(self, incident: str, actor: str, keep_degradations: bool = False) -> list[Event]:
        """Resolve, restoring every degradation unless kept (engine/lifecycle.py)."""
        return lifecycle.resolve(self, incident, actor, keep_degradations=keep_degradations)

    def close_incident(self, incident: str, actor: str, reason: str = "") -> list[Event]:
        """End the follow-up phase (engine/lifecycle.py)."""
        return lifecycle.close_incident(self, incident, actor, reason=reason)

    def assign(self, incident: str, actor: str, role: str, person: str) -> list[Event]:
        """Give a role to a person; a handoff when someone held it (the event names both)."""
        def build(state):
            if not state.in_followup:
                self.require_live(state)
            return [roles.assignment(state, role, person)]
        return self.command(incident, actor, build)

    def leave(self, incident: str, actor: str, role: str, person: str | None = None) -> list[Event]:
        """`person` (the actor when None) leaves a role held by several; the others hold it on."""
        def build(state):
            if not state.in_followup:
                self.require_live(state)
            return [roles.leaving(state, role, (person or actor).strip())]
        return self.command(incident, actor, build)

    def post(self, incident: str, actor: str, step_id: str, message: str | None = None,
             posted_before: int | None = None) -> list[Event]:
        """Post a repeating communicate step's next update now (engine/cadence.py)."""
        return cadence.post(self, incident, actor, step_id, message, posted_before)

    def signal(self, incident: str, actor: str, name: str) -> list[Event]:
        """Give the signal steps wait for (wait_for: {signal: NAME}): "the commander says go"."""
        return roles.give_signal(self, incident, actor, name)

    def escalate_now(self, incident: str, actor: str) -> list[Event]:
        state = self.state(incident)
        self.require_live(state)
        policy = timers.ladder(state)
        if policy is None or not policy.levels:
            raise CommandError(f"incident {state.id} has no escalation policy at {state.severity}")
        esc = state.escalation
        if esc.by_pager and esc.paged:
            raise CommandError(f"escalation of {state.id} is by the pager (RUNBOOK_ESCALATION=pager when it opened): "
                               "level 1 was paged; escalate it in the pager")
        level, rnd = (1, 0) if esc.paged == 0 else (esc.level + 1, esc.round)
        if level > len(policy.levels):
            level, rnd = 1, rnd + 1
        return pages.escalate(self, incident, actor, level, rnd, self.clock.now(), "manual")

    def degrade(self, incident: str, actor: str, name: str, step: str | None = None,
                option: int | None = None, expect: tuple[str, ...] | None = None) -> list[Event]:
        """Apply degradation `name` (a staged one at its first stage). `expect`: the lines of its
        plan the responder was shown; refused when the plan now says something else."""
        state = self.state(incident)
        if step is None:
            self._gate_of(state, name)
        else:  # on a step's behalf: that step's gate must be open
            self._approved(state, self._step(state, step))
        return self.effects.flip(incident, actor, name, "apply", step, option, expect=expect)

    def plan_degrade(self, incident: str, name: str):
        """What `degrade` writes now (engine/flips.py): the plan every face states before it flips."""
        from runbook.engine.flips import plan_flip

        state = self.state(incident)
        self._gate_of(state, name)
        return plan_flip(self, state, name, "apply")

    def plan_restore(self, incident: str, name: str):
        """What `restore` writes now: the restore values, or what another holder keeps."""
        from runbook.engine.flips import plan_flip

        return plan_flip(self, self.state(incident), name, "restore")

    def plan_resolve(self, incident: str) -> tuple:
        """What `resolve` writes: the plan of each degradation it restores, in the order it restores
        them (engine/lifecycle.py), each made as that restore will make it: a flag two of this
        incident's degradations changed is kept by the second only until it is restored too."""
        from runbook.engine.flips import plan_flip

        state = self.state(incident)
        names = lifecycle.to_restore(state)
        return tuple(plan_flip(self, state, name, "restore", restored_first=frozenset(names[:i]))
                     for i, name in enumerate(names))

    def plan_stage(self, incident: str, name: str, action: str, full: bool = False):
        """What steering a staged degradation writes (None for hold, resume and unwind)."""
        from runbook.engine import stages

        return stages.plan(self, incident, name, action, full)

    def _gate_of(self, state: IncidentState, name: str) -> None:
        """Applying a degradation by hand must not get round the approval gate of a current step
        (or a current step's option) that would apply the same degradation."""
        for step_id in state.current_steps():
            step = state.playbook.step(step_id)
            if (step.kind == "degrade" and step.degradation == name) or \
                    any(option.degradation == name for option in step.options):
                self._approved(state, step)

    def stage(self, incident: str, actor: str, name: str, action: str, reason: str = "",
              full: bool = False, expect: tuple[str, ...] | None = None) -> list[Event]:
        """Steer a staged degradation: hold, resume, advance, rollback (engine/stages.py)."""
        from runbook.engine import stages

        return stages.steer(self, incident, actor, name, action, reason, full, expect)

    def restore(self, incident: str, actor: str, name: str, step: str | None = None,
                expect: tuple[str, ...] | None = None) -> list[Event]:
        if step is not None:  # on a step's behalf: that step's gate must be open
            state = self.state(incident)
            self._approved(state, self._step(state, step))
        return self.effects.flip(incident, actor, name, "restore", step, None, expect=expect)


    def stop_background(self, incident: str, actor: str, step: str, pid: int | None = None) -> list[Event]:
        """Stop step `step`'s background command now (engine/background.py)."""
        return background.stop(self, incident, actor, step, pid)

    def reconcile(self, incident: str, force: bool = False) -> list[Event]:
        """Settle side effects a crash left half-done: flag intents, actions, unsent pages and
        pager updates.

        Only intents older than a minute are touched unless `force` (another process may still
        be in the middle of them).
        """
        # the pages and pager updates left unsent are the timers' work: sent only under the
        # incident's lease, or a server paging now would have its page sent twice
        return self.effects.reconcile(incident, force) + \
            self._leased(incident, lambda: pages.settle(self, incident, force)) + background.settle(self, incident)

    # time ---------------------------------------------------------------------------------

    def health(self) -> None:
        """StoreError when the store could not take an append now (serve's /healthz)."""
        self.store.health()

    def change_cursor(self) -> int:
        """Where the log of every incident ends now: live views wait for changes after it."""
        return self.store.change_cursor()

    def changes_since(self, cursor: int, limit: int = 500) -> list:
        """(position, incident id, seq, the Event) for each event appended after `cursor`, oldest first,
        whoever appended it (another process, another machine's note), read in one query without
        folding any incident; an event that does not verify on its own (integrity.one_event_verifies)
        or cannot be read comes as None in its place, for the caller to say so."""
        out = []
        for position, stored in self.store.changed_events(cursor, limit):
            event = None
            if integrity.one_event_verifies(self.store, stored):
                try:
                    event = Event.from_stored(stored)
                except EventFormatError:
                    pass
            out.append((position, stored.incident, stored.seq, event))
        return out

    def appended_since(self, cursor: int, limit: int = 500) -> list[tuple[int, str, int]]:
        """(position, incident id, seq) of each event appended after `cursor`, oldest first:
        which logs moved, without reading the events."""
        return self.store.changes_since(cursor, limit)

    def forget(self, keep) -> None:
        """Drop the folded states of incidents not in `keep` (a long-running server keeps only
        those it still works on; any other is read again from the log when asked for)."""
        for incident in [i for i in self._states if i not in keep]:
            del self._states[incident]
            self._caught_at.pop(incident, None)

    def discard(self, incident: str) -> None:
        """Drop a simulated run's incident altogether: its records from the memory store (the one
        store that forgets; simulations keep summaries, not events) and its folded state."""
        self.store.forget(incident)
        self._states.pop(incident, None)
        self._caught_at.pop(incident, None)

    def next_due(self, incident: str):
        """When the incident's next timer falls due (an escalation, a reminder, a retry...), or None."""
        from runbook.engine import timers

        return min((t.at for t in timers.pending(self.state(incident))), default=None)

    def tick(self, incident: str) -> list[Event]:
        """Fire everything that is due by now, earliest first (a late tick catches up in order);
        a rehearsal whose end conditions hold is then over: noted and resolved. With
        `timer_leases`, only on an incident whose lease this process holds or takes now, every
        write fenced: when another process took it over meanwhile, one line says so and this one
        stands down from it (nothing fired)."""
        return self._leased(incident, lambda: self._tick(incident))

    def _leased(self, incident: str, work) -> list[Event]:
        """`work()` under `incident`'s timer lease (see `tick`); [] while another process holds it."""
        leases = self.timer_leases
        if leases is None or incident in self._fences:  # no leases, or inside a pass that holds it
            return work()
        fence = leases.take(self, incident)
        if fence is None:
            return []  # another process's lease holds its timers
        self._fences[incident] = fence
        try:
            return work()
        except FencedError as exc:
            leases.lost(incident)
            self._states.pop(incident, None)
            log.warning("%s; standing down from its timers", one_line(str(exc)))
            return []
        finally:
            self._fences.pop(incident, None)

    def _tick(self, incident: str) -> list[Event]:
        fired = fire_due(self, incident)
        if self.state(incident).background:  # one that ended by itself is noticed here
            fired += background.settle(self, incident)
        state = self.state(incident)
        over = drill_over(state)
        if over:
            try:
                fired += self.note(incident, SYSTEM, f"drill over: {over}")
                fired += self.resolve(incident, SYSTEM)
            except CommandError:
                pass  # another responder's tick ended it first
        return fired


