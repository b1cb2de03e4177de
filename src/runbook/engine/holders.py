"""Who else holds a flag changed: other degradations of this incident and of the other open
incidents (on the same flag file). A flag two degradations changed keeps the value from before
the first of them, and goes back to it only when the last one is restored.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from runbook.engine.state import IncidentState
from runbook.errors import RunbookError


class Holder(NamedTuple):
    incident: str
    degradation: str
    old: dict | None  # the flag's state before this holder changed it
    at: str  # when it changed it

    def __str__(self) -> str:
        return f"{self.degradation} of {self.incident}"


def _same_place(a: str | None, b: str | None) -> bool:
    """Two recorded locations name the same flag file (unknown or relative ones are assumed to)."""
    if not a or not b or not os.path.isabs(a) or not os.path.isabs(b):
        return True
    return os.path.realpath(a) == os.path.realpath(b)


def holders(engine, state: IncidentState, name: str, flag: str, location: str | None = None) -> list[Holder]:
    """Every degradation other than `name` of `state` holding `flag` changed, earliest first."""
    found = [Holder(state.id, other, deg.flags[flag]["old"], deg.flags[flag].get("at", ""))
             for other, deg in state.degradations.items() if other != name and flag in deg.flags]
    if engine.store.path != ":memory:":  # simulations: each incident is alone with its sandbox
        for row in engine.store.incidents(open_only=True):
            if row["id"] == state.id:
                continue
            try:
                other = engine.state(row["id"])
            except RunbookError:
                continue  # an incident that cannot be read holds nothing this one can see
            if other.sandboxed != state.sandboxed:
                continue
            for deg_name, deg in other.degradations.items():
                entry = deg.flags.get(flag)
                if entry and _same_place(entry.get("location"), location):
                    found.append(Holder(other.id, deg_name, entry["old"], entry.get("at", "")))
    return sorted(found, key=lambda h: h.at)


def wrong_file(state: IncidentState, name: str, current: str | None) -> str | None:
    """A restore that would write another flag file than the one the degradation changed."""
    if not current:
        return None
    for entry in state.degradations[name].flags.values():
        recorded = entry.get("location")
        if recorded and os.path.isabs(recorded) and not _same_place(recorded, os.path.abspath(current)):
            return (f"degradation '{name}' changed the flags in {recorded}, but this runbook uses {os.path.abspath(current)} "
                    f"(RUNBOOK_FLAGS, or the directory it runs in); run it with RUNBOOK_FLAGS={recorded}")
    return None
