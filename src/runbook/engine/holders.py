"""Who else holds a flag changed: other degradations of this incident and of the other open
incidents (on the same flag file). A flag two degradations changed keeps the value from before
the first of them, and goes back to it only when the last one is restored; until then it holds
what its holders hold, recomputed from their records (`held`).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from runbook.engine.state import IncidentState
from runbook.errors import RunbookError


class Holder(NamedTuple):
    incident: str
    degradation: str
    old: dict | None  # the flag's state before this holder changed it
    at: str  # when it changed it
    new: Any = None  # the value it gave the flag
    share: int | None = None  # ...to this percentage of users (a staged degradation short of 100%); None: all
    by: str = "targetingKey"  # the context key a share is bucketed on
    normal: Any = None  # what the other users keep: its playbook's restore: value, else the value before it

    def __str__(self) -> str:
        return f"{self.degradation} of {self.incident}"


class Held(NamedTuple):
    """What a flag holds for its holders: the latest holder's value, for the widest share any of
    them gives that value (a share is the same users growing, on the same context key)."""

    value: Any
    share: int | None  # None: every user
    by: str
    normal: Any
    holder: Holder  # the one whose share it is


def same_value(a, b) -> bool:
    return type(a) is type(b) and a == b


def wider(share: int | None, than: int | None) -> bool:
    """Whether `share` reaches more users than `than` (None: every user)."""
    return than is not None and (share is None or share > than)


def held(others: list[Holder]) -> Held:
    """What `others` (earliest first, at least one) hold the flag at together."""
    latest = others[-1]
    widest = latest
    for holder in others:
        if same_value(holder.new, latest.new) and wider(holder.share, widest.share):
            widest = holder
    return Held(latest.new, widest.share, widest.by, latest.normal, widest)


def normal_of(old: dict | None):
    """A flag's value before a degradation changed it (None when it did not exist)."""
    return old.get("value") if old and old.get("exists") else None


def _holder(incident: IncidentState, name: str, deg, entry: dict, flag: str) -> Holder:
    spec = incident.playbook.degradations.get(name)
    rollout = spec.rollout if spec is not None else None
    share = deg.share if rollout is not None and deg.share is not None and deg.share < 100 else None
    restores = spec is not None and spec.restore and flag in spec.restore
    normal = spec.restore[flag] if restores else normal_of(entry["old"])
    return Holder(incident.id, name, entry["old"], entry.get("at", ""), entry.get("new"), share,
                  rollout.by if rollout is not None else "targetingKey", normal)


def _same_place(a: str | None, b: str | None) -> bool:
    """Two recorded locations name the same flag file (unknown or relative ones are assumed to)."""
    if not a or not b or not os.path.isabs(a) or not os.path.isabs(b):
        return True
    return os.path.realpath(a) == os.path.realpath(b)


def holders(engine, state: IncidentState, name: str, flag: str, location: str | None = None) -> list[Holder]:
    """Every degradation other than `name` of `state` holding `flag` changed, earliest first."""
    found = [_holder(state, other, deg, deg.flags[flag], flag)
             for other, deg in state.degradations.items() if other != name and flag in deg.flags]
    if engine.store.features.persistent:  # simulations: each incident is alone with its sandbox
        # open by the log, not only by a summary row (one edited to say "resolved" is listed too)
        for row in engine.list(open_only=True):
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
                    found.append(_holder(other, deg_name, deg, entry, flag))
    return sorted(found, key=lambda h: h.at)


def wrong_file(state: IncidentState, name: str, current: str | None) -> str | None:
    """A restore that would write another flag file than the one the degradation changed."""
    if not current:
        return None
    for entry in state.degradations[name].flags.values():
        recorded = entry.get("location")
        if recorded and os.path.isabs(recorded) and not _same_place(recorded, os.path.abspath(current)):
            return (f"degradation '{name}' changed the flags in {recorded}, but this runbook uses "
                    f"{os.path.abspath(current)} "
                    f"(RUNBOOK_FLAGS, or the directory it runs in); run it with RUNBOOK_FLAGS={recorded}")
    return None
