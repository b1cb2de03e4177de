"""The free text a responder records (notes, action items, reasons, outcomes) has a size limit.

A note is shown in the TUI, printed by `show`, exported into the postmortem and hashed into the
chain; a pasted log of megabytes would make every one of them unusable. Long output belongs in
a file the note points at.
"""

from __future__ import annotations

from runbook.errors import CommandError

MAX_TEXT_BYTES = 64 * 1024


def check_size(what: str, text: str) -> str:
    """`text` as given, or CommandError when its UTF-8 encoding is over MAX_TEXT_BYTES."""
    if len(text) * 4 > MAX_TEXT_BYTES:  # a UTF-8 character is at most 4 bytes: short texts skip encoding
        size = len(text.encode("utf-8", "surrogateescape"))
        if size > MAX_TEXT_BYTES:
            raise CommandError(f"{what} is {size:,} bytes, over the limit of {MAX_TEXT_BYTES:,} bytes (64 KiB); "
                               "put long output in a file and say where it is")
    return text
