"""Read models: what faces show, each built from the engine's reads by a function of an engine.

The engine service runs them on its reads lane (`service.read(incident_rows, open_only=True)`);
the CLI's one-shot commands on their service's one lane. Every text in them has been through
runbook.text already.
"""

from __future__ import annotations

from datetime import datetime

from runbook.text import one_line, shown_data


def incident_rows(engine, **filters) -> list[dict]:
    """The incidents summary, filtered (open_only, status, drills, playbook, since...), its
    texts made safe to show."""
    return [{**row, "title": one_line(row["title"] or ""), "severity": one_line(row["severity"] or "")}
            for row in engine.list(**filters)]


def alert_rows(engine, outcome: str | None = None, incident: str | None = None, limit: int | None = None,
               also: tuple[str, ...] = (), after: tuple | None = None) -> list[dict]:
    """The alerts received, the latest first, without the owner record (internal); `also`: the
    latest `limit` of those outcomes too, even behind many newer alerts; `after`: a page cursor
    (last_seen, fingerprint, starts_at of the row before)."""
    rows = engine.alerts(outcome=outcome, incident=incident, limit=limit, after=after)
    for each in also:
        rows += engine.alerts(outcome=each, limit=limit)
    for row in rows:
        row.pop("owner", None)
    return rows


def drill_rows(engine, catalog) -> list[tuple[str, str, str, str]]:
    """Drills for the home screen: id, title, next run (local time; "—" when unscheduled) and the
    last run, whether the scheduler fired it or someone ran it by hand."""
    from runbook.drills.scheduler import next_occurrence

    if catalog is None:
        return []
    out = []
    now = engine.clock.now()
    for drill in catalog.models("Drill").values():
        ran = _last_run(engine, drill)
        if drill.schedule is None and ran is None:
            continue  # a simulation profile, never rehearsed by people
        upcoming = next_occurrence(drill, now) if drill.schedule else None
        state = engine.store.schedule_state(drill.id) if drill.schedule else None
        fired = (datetime.fromisoformat(state["last_scheduled"]), state["last_outcome"]) \
            if state and state["last_scheduled"] else None
        if fired and fired[0].tzinfo is None:
            fired = (fired[0].replace(tzinfo=now.tzinfo), fired[1])
        last = max((r for r in (ran, fired) if r is not None), key=lambda r: r[0], default=None)
        out.append((one_line(drill.id), one_line(drill.title),
                    f"{upcoming:%a %d %b %H:%M %Z}" if upcoming else "—",
                    one_line(f"{last[1]} {last[0]:%a %d %b %H:%M}") if last else "never run"))
    return sorted(out, key=lambda row: row[2])


def _last_run(engine, drill) -> tuple[datetime, str] | None:
    """When the drill was last rehearsed and how it went ("resolved", "open"), from the log."""
    for row in engine.list(drills=True, playbook=drill.playbook, limit=20):
        state = engine.state(row["id"])
        rehearsed = state.snapshot.drill
        if rehearsed is not None and rehearsed.id == drill.id:
            return state.opened_at, f"{state.status} ({state.id})"
    return None


def debrief(engine, incident: str) -> dict:
    """What the debrief shows: times against targets, steps, notes and action items."""
    from runbook.engine.metrics import MEASURES, metrics, step_titles
    from runbook.views import _maybe

    state = engine.state(incident)
    m = metrics(state, engine.clock.now())
    times = []
    for key, name, _ in MEASURES:
        target = m.targets.get(name)
        times.append((f"Time to {name}", getattr(m, key), target["target"] if target else None,
                      bool(target and target["breached"])))
    titles = step_titles(state)  # a step by its title, as the step list shows it
    steps = [{**run, "step": one_line(titles.get(run["step"], run["step"])), "outcome": _maybe(run["outcome"])}
             for run in m.steps]
    return {"id": state.id, "title": one_line(state.title), "drill": state.drill, "times": times, "steps": steps,
            "notes": [(f"{n.at:%H:%M:%S}", one_line(n.actor), one_line(n.data["text"])) for n in state.notes],
            "items": [(one_line(a.data["text"]), one_line(a.data.get("owner") or a.actor))
                      for a in state.action_items]}


def report(engine, include_drills: bool = False) -> dict:
    from runbook.drills.report import build

    return shown_data(build(engine, include_drills=include_drills).to_dict())


def similar_incidents(engine, incident: str, limit: int = 3) -> dict:
    """Past incidents like `incident` with what mitigated them and their open action items, and
    the repeat warning when the closest one has an open item (engine/learning.py)."""
    from runbook.engine.learning import repeat_warning

    matches = engine.similar(incident, limit)
    return shown_data({"incident": engine.resolve_id(incident), "searched": engine.store.features.searches_text,
                       "matches": matches, "repeat": repeat_warning(matches)})


def action_item_rows(engine, incident: str | None = None, owner: str | None = None, open_only: bool = True,
                     overdue: bool = False) -> list[dict]:
    """Action items across incidents, oldest first, as dicts (ActionItem.to_dict), filtered."""
    now = engine.clock.now()
    rows = [item.to_dict(now) for item in engine.action_items()]
    rows = [r for r in rows if (incident is None or r["incident"] == incident)
            and (owner is None or r["owner"] == owner) and (not open_only or r["status"] == "open")
            and (not overdue or r["overdue"])]
    return shown_data(rows)


def action_completion(engine, include_drills: bool = False) -> dict:
    """Completion of action items: how many were added and closed, the share closed, the median
    age of those open and of those closed (days), and how many are overdue."""
    from statistics import median

    now = engine.clock.now()
    items = engine.action_items()
    if not include_drills:
        real = {row["id"] for row in engine.store.incidents(drills=False)}
        items = [i for i in items if i.incident in real]
    closed = [i for i in items if not i.open]
    still = [i for i in items if i.open]
    return {"added": len(items), "closed": len(closed),
            "completion": round(len(closed) / len(items), 3) if items else None,
            "open": len(still), "overdue": sum(1 for i in still if i.overdue(now.date())),
            "median_open_age_days": median(i.age_days(now) for i in still) if still else None,
            "median_days_to_close": median(i.age_days(now) for i in closed) if closed else None}


def learning_view(engine, incident: str) -> dict:
    """What the TUI's learning screen shows of an incident: past incidents like it, the review as
    written, its action items and every other open one (texts made safe to show)."""
    from runbook.engine.clock import iso
    from runbook.engine.learning import REVIEW_SECTIONS, review

    written = review(engine.state(incident))
    items = action_item_rows(engine, open_only=False)
    return {**similar_incidents(engine, incident),
            "review": shown_data([(section, title, written[section][0] if section in written else None,
                                   written[section][1] if section in written else None,
                                   iso(written[section][2]) if section in written else None)
                                  for section, title in REVIEW_SECTIONS.items()]),
            "items": [r for r in items if r["incident"] == incident],
            "elsewhere": [r for r in items if r["incident"] != incident and r["status"] == "open"]}


def similar_lines(found: dict) -> list[str]:
    """`similar_incidents` as lines of text, the repeat warning first (the CLI and the TUI)."""
    from runbook.catalog.durations import format_seconds

    if not found["searched"]:
        return ["this incident store does not search past incidents"]
    if not found["matches"]:
        return [f"no past incident like {found['incident']}"]
    lines = [f"!! {one_line(found['repeat'])}"] if found["repeat"] else []
    for n, match in enumerate(found["matches"], 1):
        fix = match["mitigation"]
        how = (f"mitigated: {one_line(fix['what'])} ({one_line(fix['who'])}, after "
               f"{format_seconds(fix['seconds'])})") if fix["seconds"] is not None else "never marked mitigated"
        drill = " (drill)" if match["drill"] else ""
        lines.append(f"{n}. {match['incident']}{drill}  {match['opened_at'][:10]}  {one_line(match['title'])} "
                     f"[{match['status']}]")
        lines.append(f"   {how}")
        for item in match["open_actions"]:
            lines.append(f"   open action {item['id']}: {one_line(item['text'])} (owner {one_line(item['owner'])}, "
                         f"{item['age_days']} days)")
    return lines


def drill_verified(engine, playbooks: list[str]) -> dict[str, dict]:
    """When a drill last verified each playbook: its latest drill run that ended (resolved),
    whether it passed (no target breached) and what it breached; playbooks never drilled are absent."""
    from runbook.engine.clock import iso
    from runbook.engine.metrics import metrics
    from runbook.errors import RecordError

    out = {}
    for playbook in playbooks:
        for row in engine.list(drills=True, playbook=playbook, limit=20):  # newest first
            try:
                state = engine.state(row["id"])
            except RecordError:
                continue
            if state.resolved_at is None:
                continue
            breached = sorted(name for name, t in metrics(state).targets.items() if t["breached"])
            out[playbook] = {"incident": state.id, "at": iso(state.resolved_at), "passed": not breached,
                             "breached": breached}
            break
    return out


def verified_text(found: dict | None) -> str:
    if found is None:
        return "never verified by a drill"
    verdict = "passed" if found["passed"] else f"breached {', '.join(found['breached'])}"
    return f"last drill {found['at'][:10]} ({found['incident']}, {verdict})"
