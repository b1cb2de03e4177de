"""Did-you-mean suggestions for misspelled names, shared by the validator, linter, engine and CLI."""

from __future__ import annotations

import difflib


def did_you_mean(word, candidates) -> str:
    """"; did you mean 'x'?" when one candidate is clearly closest; nothing when several tie."""
    if not isinstance(word, str):
        return ""
    names = [c for c in candidates if isinstance(c, str)]
    same_but_case = [c for c in names if c.lower() == word.lower() and c != word]
    if same_but_case:
        return f"; did you mean '{same_but_case[0]}'?"
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in names), reverse=True)
    if not scored or scored[0][0] < 0.6 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return ""
    return f"; did you mean '{scored[0][1]}'?"
