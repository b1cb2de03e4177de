"""Fire drills by their cron schedule, in their own time zone, without ever firing one twice.

One pass (`run_once`) looks at every scheduled drill: the most recent occurrence at or before
now that has not been handled fires, unless it is older than the drill's starting window
(after downtime only the latest missed run counts, and only while it is fresh). Concurrency
is "forbid": while the drill's previous incident is still open, an occurrence is skipped.
Claiming an occurrence is one write transaction in the database, so two schedulers on one
database never fire the same occurrence. Human drills (with participants) open a drill
incident, which pages through the notify hook and waits on the home screen; automated drills
(responder profiles only) run their simulation and store its summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from runbook.catalog.drill import Drill
from runbook.engine.clock import iso
from runbook.errors import RunbookError

DEFAULT_WINDOW = 3600
LOOKBACK = timedelta(days=8)
AUTO_RUNS = 200


@dataclass(frozen=True)
class Decision:
    drill: str
    scheduled: datetime | None
    action: str  # "fire", "skip-running", "skip-late", "none"
    detail: str = ""


def latest_occurrence(drill: Drill, after: datetime | None, now: datetime) -> datetime | None:
    """The most recent occurrence in (after, now], in the drill's time zone (DST-correct via cronsim)."""
    zone = ZoneInfo(drill.schedule.timezone)
    lookback = max(LOOKBACK, timedelta(seconds=drill.schedule.window or 0))
    start = max(after, now - lookback) if after else now - lookback
    latest = None
    for moment in CronSim(drill.schedule.cron, start.astimezone(zone)):
        if moment > now:
            break
        if after is None or moment > after:
            latest = moment
    return latest


def next_occurrence(drill: Drill, now: datetime) -> datetime | None:
    """When the drill runs next, in its own time zone."""
    try:
        return next(iter(CronSim(drill.schedule.cron, now.astimezone(ZoneInfo(drill.schedule.timezone)))))
    except StopIteration:
        return None


def decide(drill: Drill, last: datetime | None, running: bool, now: datetime) -> Decision:
    occurrence = latest_occurrence(drill, last, now)
    if occurrence is None:
        return Decision(drill.id, None, "none")
    window = drill.schedule.window if drill.schedule.window is not None else DEFAULT_WINDOW
    if (now - occurrence).total_seconds() > window:
        return Decision(drill.id, occurrence, "skip-late",
                        f"missed by {int((now - occurrence).total_seconds() // 60)} min, window "
                        f"{window // 60} min")
    if running:
        return Decision(drill.id, occurrence, "skip-running", "the previous run is still open (concurrency forbid)")
    return Decision(drill.id, occurrence, "fire")


def run_once(engine, catalog, actor: str = "scheduler") -> list[Decision]:
    """One pass over every scheduled drill; returns what was decided for each."""
    store = engine.store
    now = engine.clock.now()
    decisions = []
    for drill in catalog.models("Drill").values():
        if drill.schedule is None:
            continue
        state = store.schedule_state(drill.id)
        last = datetime.fromisoformat(state["last_scheduled"]) if state and state["last_scheduled"] else None
        running = bool(state and state["incident"] and (store.incident(state["incident"]) or {}).get("status")
                       not in (None, "resolved"))
        decision = decide(drill, last, running, now)
        if decision.action == "none":
            continue
        # claimed in UTC: occurrences compare in real time, across offsets, DST and zone changes
        claimed = decision.scheduled.astimezone(UTC).isoformat()
        if not store.claim_occurrence(drill.id, claimed, decision.action, iso(now)):
            continue  # another scheduler handled this occurrence
        if decision.action == "fire":
            try:
                decision = _fire(engine, catalog, drill, decision, actor, iso(now))
            except RunbookError as exc:  # one broken drill must not stop the others
                store.set_schedule_outcome(drill.id, "failed", None, iso(now))
                decision = Decision(drill.id, decision.scheduled, "failed", str(exc))
        decisions.append(decision)
    return decisions


def _fire(engine, catalog, drill: Drill, decision: Decision, actor: str, now: str) -> Decision:
    store = engine.store
    if drill.participants or not drill.responders.levels:
        state = engine.open(drill.playbook, actor, symptom=drill.symptom, severity=drill.severity, drill=True,
                            rehearse=drill.id)
        engine.tick(state.id)  # pages escalation level 1 through the notify hook: the announcement
        store.set_schedule_outcome(drill.id, "fired", state.id, now)
        return Decision(drill.id, decision.scheduled, "fire", f"opened {state.id}; participants paged")
    from runbook.drills.simulate import simulate

    summary = simulate(catalog, drill, AUTO_RUNS, seed=int(decision.scheduled.timestamp()))
    store.record_simulation(drill.id, drill.playbook, AUTO_RUNS, int(decision.scheduled.timestamp()), now, summary)
    store.set_schedule_outcome(drill.id, "simulated", None, now)
    ack = summary["breach_probability"].get("acknowledge")
    miss = f", ack target missed {ack:.1%}" if ack is not None else ""
    return Decision(drill.id, decision.scheduled, "fire", f"simulated {AUTO_RUNS} runs{miss}")
