"""Text from a log, a playbook, a flag file or a plugin, made safe to show.

Anything a person or a document wrote may carry terminal control sequences (`ESC ] 0 ; …
BEL` retitles the terminal, OSC 52 writes the clipboard, a C1 CSI recolours it) or Unicode
bidi overrides that make a line read differently from what it says. The log keeps what was
said, byte for byte (its hashes cover it); every place that shows it to a terminal or puts it
in a Markdown export passes it through here first. One notation everywhere: a control or bidi
character becomes its Python escape, `\\x1b`, `\\x9b`, `\\u202e`, visible and never acted on.

`shown` keeps newlines and tabs (instructions, notes printed on their own); `one_line` is for
rows that must stay one line (timeline rows, table cells): a newline shows as ⏎, a tab as ⇥;
`markdown` is `one_line` with Markdown's active characters escaped, for any text put into a
Markdown export (it cannot open a table cell, a link, a code span or raw HTML); `json_shown`
does the same for JSON output. `editable` is for a draft put back into an editing field, where an
escape would be posted as typed text: there the unsafe characters are removed instead.

Actor names are the exception: they are checked on the way in (`check_actor`, called by the
engine for every command and by the CLI for --as), because a name is an identity, not prose.
"""

from __future__ import annotations

import re
import unicodedata

from runbook.errors import CommandError, DocumentError, RunbookError

# C0 except tab and newline, DEL, C1; the bidi controls (marks, embeddings, overrides,
# isolates); the Unicode line and paragraph separators, which some renderers break lines on.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BREAKS = str.maketrans({"\n": "⏎", "\t": "⇥"})
_MARKDOWN = re.compile(r"([\\`\[\]<>|&])")

ACTOR_MAX = 64
# Characters that show as nothing, so a name holding one looks like another person's ("bob\u200b"
# reads "bob"): every Unicode format character (Cf: zero-width space, joiners, word joiner,
# byte-order mark, soft hyphen, invisible operators, tags; the bidi controls are Cf too), the
# combining grapheme joiner, and the Hangul fillers, which are letters that draw nothing.
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u3164\uffa0")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: str) -> str:
    """`text` with every control and bidi character except newline and tab escaped visibly."""
    return _UNSAFE.sub(_escape, text)


def editable(text: str) -> str:
    """`text` to offer in a one-line editing field (a draft to post again): every control and bidi
    character removed rather than escaped, newlines and tabs as spaces. The field holds what will be
    posted; an escape would be posted as its backslash and letters."""
    return _UNSAFE.sub("", text.replace("\n", " ").replace("\t", " ")).strip()


def error_message(exc: RunbookError) -> str:
    """What to print after `runbook: error: `: one line. A DocumentError is the exception, its
    heading followed by one FILE:LINE:COL line per problem (as `runbook validate` prints them);
    any other message's later lines (a plugin's failures, a flag file's problems) are joined
    onto the first with "; "."""
    text = shown(str(exc))  # a name typed on the command line may hold escape sequences
    if isinstance(exc, DocumentError):
        return text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return text.strip()
    head = lines[0].rstrip(":")
    return f"{head}: {'; '.join(lines[1:])}"


def one_line(text: str) -> str:
    """`shown(text)` on one line: newlines as ⏎, tabs as ⇥."""
    return shown(text).translate(_BREAKS)


def markdown(text: str) -> str:
    """`one_line(text)` as literal Markdown inline text: `\\`, backticks, brackets, angle
    brackets, `|` and `&` backslash-escaped, so it renders as written and stays in its table cell."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def json_shown(encoded: str) -> str:
    """JSON text (from `json.dumps`, which escapes C0 itself) with DEL, C1 and the bidi
    characters written as \\u escapes too: still the same JSON, and nothing a terminal acts on.
    These characters can only occur inside JSON strings, where the escape means the same."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def shown_data(value):
    """Every string in `value` (dicts, lists, tuples of them) through `shown`; anything else as is."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown_data(k): shown_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shown_data(v) for v in value)
    return value


class InvalidActor(CommandError):
    """A name to record events under that is blank, too long, or not plain text; a usage error."""

    exit_code = 2


def check_actor(name) -> str:
    """`name` if it can be the actor of an event (every screen and export shows it): plain text,
    not blank, at most 64 characters, without control, bidi or invisible (zero-width, format)
    characters; InvalidActor otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidActor("the actor name is empty; say who you are with --as NAME or RUNBOOK_USER")
    if len(name) > ACTOR_MAX:
        raise InvalidActor(f"the actor name is {len(name)} characters long; at most {ACTOR_MAX} are allowed "
                           "(--as NAME or RUNBOOK_USER)")
    if _UNSAFE.search(name) or "\n" in name or "\t" in name:
        raise InvalidActor(f"the actor name '{one_line(name)}' contains control or bidi characters; "
                           "use plain text (--as NAME or RUNBOOK_USER)")
    hidden = [c for c in name if unicodedata.category(c) == "Cf" or c in _INVISIBLE_EXTRA]
    if hidden:
        visible = "".join(f"\\u{ord(c):04x}" if c in hidden else c for c in name)
        raise InvalidActor(f"the actor name '{visible}' contains an invisible character "
                           f"({', '.join(sorted({f'U+{ord(c):04X}' for c in hidden}))}) that would make it look "
                           "like another name; use plain text (--as NAME or RUNBOOK_USER)")
    return name
