"""Durations as written in documents, and who is on call at a moment (hand-offs keep local time)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbook.catalog.durations import format_duration, parse_duration
from runbook.catalog.models import Override, Person, Roster, Rotation
from runbook.catalog.oncall import on_call


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400),
                                           ("1w", 604800), ("2h0m5s", 7205)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "1.5h", "m5", "5m1h", "-5m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="expected a duration like 30s, 5m or 1h30m"):
        parse_duration(text)


def test_format_duration():
    assert format_duration(0) == "0s"
    assert format_duration(90) == "1m30s"
    assert format_duration(-3600) == "-1h"


ROSTER = Roster(
    id="r", timezone="Europe/Berlin",
    people=(Person("ana", "Ana"), Person("ben", "Ben"), Person("cy", "Cy")),
    rotations=(Rotation("primary", ("ana", "ben"), 7 * 86400, "2026-03-23T09:00"),),
    overrides=(Override("primary", "cy", "2026-04-10T00:00", "2026-04-11T00:00"),),
)


def who(utc_text):
    person = on_call(ROSTER, ROSTER.rotations[0], datetime.fromisoformat(utc_text).replace(tzinfo=UTC))
    return person.id if person else None


def test_rotation_before_start_has_nobody():
    assert who("2026-03-23T07:59") is None


def test_rotation_hands_off_weekly():
    assert who("2026-03-23T08:00") == "ana"  # 09:00 CET
    assert who("2026-03-30T06:59") == "ana"
    assert who("2026-04-06T07:00") == "ana"  # third week wraps around


def test_handoff_stays_at_local_nine_across_daylight_saving():
    # Berlin moves to CEST on 2026-03-29, so the 09:00 hand-off is at 07:00 UTC afterwards.
    assert who("2026-03-30T06:59") == "ana"
    assert who("2026-03-30T07:00") == "ben"


def test_override_wins():
    assert who("2026-04-10T12:00") == "cy"
    assert who("2026-04-11T12:00") == "ana"
