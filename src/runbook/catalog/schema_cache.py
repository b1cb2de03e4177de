"""Remembers which document texts passed their JSON Schema, so everyday commands skip jsonschema.

Importing jsonschema and validating costs a few hundred milliseconds on every start; a text
that passed once passes again as long as it and the schemas are unchanged. Entries are keyed
by the SHA-256 of the file's text and of all shipped schemas, and only passing texts are
remembered. `runbook validate` always validates in full (and refreshes the cache). The cache
lives in $XDG_CACHE_HOME/runbook (or ~/.cache/runbook); RUNBOOK_SCHEMA_CACHE=0 turns it off.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from runbook.settings import read_cache, write_cache

LIMIT = 5000
FILE = "schema-passed.json"
# the shipped schemas, read from the package directory (importlib.resources would cost a
# one-run drill its import and tempfile's for the same files)
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def enabled() -> bool:
    return os.environ.get("RUNBOOK_SCHEMA_CACHE", "1") != "0"


@cache
def _schemas_digest() -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(SCHEMAS)):
        digest.update(name.encode())
        with open(os.path.join(SCHEMAS, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


def key(text: str) -> str:
    return hashlib.sha256((_schemas_digest() + "\0" + text).encode("utf-8")).hexdigest()


class SchemaCache:
    def __init__(self):
        self.passed: set[str] = set()
        self.added: set[str] = set()
        if enabled():
            try:
                self.passed = set(read_cache(FILE) or ())
            except TypeError:  # not a list of keys
                self.passed = set()

    def __contains__(self, text_key: str) -> bool:
        return text_key in self.passed

    def remember(self, text_key: str) -> None:
        if text_key not in self.passed:
            self.added.add(text_key)

    def save(self) -> None:
        """Write new entries atomically; a cache that cannot be written is simply not used."""
        if not self.added or not enabled():
            return
        write_cache(FILE, list(self.passed | self.added)[-LIMIT:])
