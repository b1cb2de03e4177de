"""Durations as people write them in documents: 30s, 5m, 1h30m, 1d, 1w."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"^(?=\d)(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> int:
    """Seconds in `text`; raises ValueError naming the accepted form."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a duration, expected a duration like 30s, 5m or 1h30m")
    return sum(int(part) * unit for part, (_, unit) in zip(match.groups(), _UNITS) if part)


def format_duration(seconds: float) -> str:
    """The shortest readable form: 90 -> '1m30s', 0 -> '0s'; negative values get a '-'."""
    sign = "-" if seconds < 0 else ""
    remaining = int(abs(seconds))
    parts = []
    for suffix, unit in _UNITS:
        if remaining >= unit:
            count, remaining = divmod(remaining, unit)
            parts.append(f"{count}{suffix}")
    return sign + ("".join(parts) or "0s")


def format_seconds(seconds: float | None) -> str:
    """A measured time for tables: rounded to the second, '—' when there is none."""
    return "—" if seconds is None else format_duration(round(seconds))
