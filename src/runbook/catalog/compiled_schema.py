"""A compiled validator (jsonschema-rs) that says which documents pass their schema, quickly.

Most documents pass, and for those jsonschema's walk of the step dispatch was most of
`runbook validate`'s time. jsonschema-rs checks the same published schema natively; only a
document it does not pass goes through jsonschema (validate.schema_problems), which finds and
words every error as before. So the problems reported cannot change; what must hold is that
jsonschema-rs passes nothing jsonschema would reject. The differences found between the two
all make jsonschema-rs the stricter, except regular expressions (`\\s` and `\\d` are other
character sets in Rust's regex), so `pattern` is checked with Python's `re`, as jsonschema does;
`format` is an annotation in both. A value jsonschema-rs cannot take (a key that is not text)
counts as not passed. RUNBOOK_COMPILED_SCHEMA=0 turns this off.
"""

from __future__ import annotations

import os
import re
from functools import cache

from runbook.catalog import kinds


def enabled() -> bool:
    return os.environ.get("RUNBOOK_COMPILED_SCHEMA", "1") != "0"


class PythonPattern:
    """The `pattern` keyword with `re.search`, jsonschema's reading of it."""

    def __init__(self, parent_schema, value, schema_path):
        self.search = re.compile(value).search

    def validate(self, instance):
        if isinstance(instance, str) and not self.search(instance):
            raise ValueError("does not match")


@cache
def _validator(kind_name: str):
    try:
        import jsonschema_rs
    except ImportError:  # a platform without its wheel: every document takes the exact path
        return None
    return jsonschema_rs.validator_for(kinds.schema(kind_name), validate_formats=False,
                                       keywords={"pattern": PythonPattern})


def passes(kind_name: str, value) -> bool:
    """True when `value` certainly passes the schema of `kind_name`; False means "ask jsonschema"."""
    if not enabled():
        return False
    validator = _validator(kind_name)
    if validator is None:
        return False
    try:
        return validator.is_valid(value)
    except Exception:  # a value it cannot convert (ValueError, UnicodeEncodeError...): jsonschema judges
        return False
