"""Who is on call for a rotation at a given moment. The caller supplies the moment (no clock here)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from runbook.catalog.models import Person, Roster, Rotation


def _aware(text: str, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def on_call(roster: Roster, rotation: Rotation, at: datetime) -> Person | None:
    """The member whose shift covers `at` (an aware datetime); overrides win over the rotation.

    Raises ValueError when the roster's time zone or dates are invalid (lint reports those).
    """
    try:
        zone = ZoneInfo(roster.timezone)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {roster.timezone!r}") from exc
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    for override in roster.overrides:
        if override.rotation == rotation.id and _aware(override.start, zone) <= at < _aware(override.until, zone):
            return roster.person(override.person)
    start = _aware(rotation.start, zone)
    if at < start or not rotation.members:
        return None
    # Count shifts in local wall-clock time so a 09:00 hand-off stays at 09:00 across DST changes.
    local_now = at.astimezone(zone).replace(tzinfo=None)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    shifts = int((local_now - local_start).total_seconds() // rotation.shift)
    return roster.person(rotation.members[shifts % len(rotation.members)])


def find_rotation(rosters, rotation_id: str) -> tuple[Roster, Rotation] | None:
    for roster in rosters:
        for rotation in roster.rotations:
            if rotation.id == rotation_id:
                return roster, rotation
    return None


def find_person(rosters, person_id: str) -> Person | None:
    for roster in rosters:
        person = roster.person(person_id)
        if person:
            return person
    return None


def person_with(rosters, handle: str, value: str) -> Person | None:
    """The person whose contact handle `handle` (matrix, pagerduty...) is `value`; None for an
    empty value, as nobody is reached by nothing."""
    if not value:
        return None
    return next((p for roster in rosters for p in roster.people if getattr(p, handle, "") == value), None)
