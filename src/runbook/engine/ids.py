"""Incident ids as people type them: whole or shortened, in any case, with or without the INC-/DRL- head.

`INC-854ABC`, `inc-854abc`, `854` and `inc-85` all name INC-854ABC while no other incident
starts the same way. Text that names nothing is never a prefix of everything: an empty id, or a
head alone (`INC-`), is refused, an ambiguous one lists the incidents it could be, an unknown one suggests close ids.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from runbook.errors import CommandError, NotFoundError, UsageError

HEADS = ("INC-", "DRL-")  # what the engine puts before a new incident's random part
LISTED = 5  # candidates named when a prefix is ambiguous
SUGGESTED = 3
CLOSE = 0.6  # how alike a typed id and a real one must be to be suggested


def resolve_incident_id(store, text: str) -> str:
    """The one incident `text` names; raises UsageError (empty), CommandError (several) or NotFoundError."""
    wanted = text.strip() if isinstance(text, str) else ""
    if not wanted:
        raise UsageError("the incident id is empty; give an id such as INC-854ABC, or its start such as 854 "
                         "(see `runbook incident list`)")
    if wanted.upper() in HEADS:
        raise UsageError(f"the incident id '{wanted}' has nothing after {wanted.upper()}; give an id such as "
                         "INC-854ABC, or its start such as 854 (see `runbook incident list`)")
    if store.incident(wanted) is not None or store.has_record(wanted):
        return wanted  # has_record: the events or snapshot of an incident whose summary row is gone
    matches = store.ids_starting_with(wanted, HEADS) or store.ids_without_summary_starting_with(wanted, HEADS)
    exact = [m for m in matches if _short(m) == _short(wanted)]
    if len(exact) == 1:  # INC-854 is not ambiguous because INC-8541 exists too
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    if matches:
        more = f" and {len(matches) - LISTED} more" if len(matches) > LISTED else ""
        raise CommandError(f"'{wanted}' matches {len(matches)} incidents: {', '.join(matches[:LISTED])}{more}; "
                           "give more of the id")
    recent = [row["id"] for row in store.incidents(limit=50)]
    raise NotFoundError(f"no incident '{wanted}'{_suggestion(wanted, recent)} (see `runbook incident list --all`)")


def _short(incident: str) -> str:
    """The id without its head, upper-cased: what tells incidents apart."""
    upper = incident.upper()
    return next((upper[len(head):] for head in HEADS if upper.startswith(head)), upper)


def _suggestion(wanted: str, ids: list[str]) -> str:
    """"; did you mean 'INC-854ABC'?" for the ids most like what was typed, compared over its length."""
    typed = _short(wanted)
    scored = sorted(((SequenceMatcher(None, typed, _short(i)[:max(len(typed), 1)]).ratio(), i) for i in ids),
                    key=lambda pair: (-pair[0], pair[1]))
    close = [i for score, i in scored if score >= CLOSE][:SUGGESTED]
    if not close:
        return ""
    if len(close) == 1:
        return f"; did you mean '{close[0]}'?"
    return f"; did you mean one of {', '.join(close)}?"
