"""Listing incidents: the summary rows, each checked cheaply against its log, and the incidents
whose summary row is missing."""

from __future__ import annotations


def list_incidents(engine, **filters) -> list[dict]:
    """Summary rows, newest first; each says whether its summary agrees with its log
    (`log_intact`, and `log_problem` saying how not), cheaply: the count of events, the status
    implied by which of acknowledged/mitigated/resolved events exist, and the drill flag,
    severity, title, playbook and opening time the log says (two indexed queries for the rows
    shown). Rows the filters would leave out only because their status or drill column was
    edited ("resolved" with no resolved event) are listed too. `integrity` checks everything."""
    rows = engine.store.incidents(**filters)
    shown = {r["id"] for r in rows}
    if not filters.get("status"):
        hidden = [r for r in engine.store.hidden_by_summary(bool(filters.get("open_only")), filters.get("drills"))
                  if r["id"] not in shown
                  and (not filters.get("playbook") or r["playbook"] == filters["playbook"])
                  and (not filters.get("since") or (r["opened_at"] or "") >= filters["since"])
                  and (not filters.get("resolved_since") or (r["resolved_at"] or "") >= filters["resolved_since"])]
        if hidden:
            rows = sorted(sorted(rows + hidden, key=lambda r: r["id"]), key=lambda r: r["opened_at"] or "",
                          reverse=True)
    facts = engine.store.log_facts([r["id"] for r in rows])
    for row in rows:
        problems = _listing_problems(row, facts.get(row["id"]))
        row["log_intact"] = not problems
        row["log_problem"] = "; ".join(problems)
    return rows


def without_summary(engine) -> list[str]:
    """Incidents whose events or snapshot remain but whose summary row was deleted: no listing
    would show them otherwise."""
    return engine.store.without_summary()


def _listing_problems(row: dict, facts) -> list[str]:
    """How a summary row disagrees with what its log cheaply says (Store.log_facts)."""
    if facts is None:
        return ["the log holds no events"]
    count, last, said = facts
    problems = []
    if row["last_seq"] is None:
        problems.append("the summary has no event count")
    elif not count == last == row["last_seq"]:
        problems.append(f"the log holds {count} events but the summary counts {row['last_seq']}")
    for column, value in said.items():
        if row.get(column) != value:
            problems.append(f"the summary says {column} {row.get(column)!r} but the log says {value!r}")
    return problems
