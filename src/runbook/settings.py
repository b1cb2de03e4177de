"""Where things live: one small object built from options and environment, passed to plugins."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from runbook.errors import UsageError

DEFAULT_FLAGS_FILE = "flags.json"
DEFAULT_PLUGINS_DIR = "plugins"
# How long an exiting command waits for event observers still working: short, because a
# command must not feel a hung observer, and the wait is paid by every command.
DEFAULT_OBSERVER_GRACE = 0.01
# Who pages the levels after the first: runbook's ladder timers, or the pager's own escalation policy.
ESCALATION_BY = ("runbook", "pager")


def cache_dir() -> Path:
    """Where runbook keeps what it can recompute: $XDG_CACHE_HOME/runbook or ~/.cache/runbook."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runbook"


def data_dir() -> Path:
    """Where runbook keeps files an incident makes (a background command's output):
    $RUNBOOK_DATA_DIR, else $XDG_DATA_HOME/runbook (~/.local/share/runbook)."""
    if os.environ.get("RUNBOOK_DATA_DIR"):
        return Path(os.path.expanduser(os.environ["RUNBOOK_DATA_DIR"]))
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "runbook"


def postmortem_dir() -> Path:
    """Where the TUI offers to write postmortems: $RUNBOOK_POSTMORTEMS, else
    $XDG_DATA_HOME/runbook/postmortems (~/.local/share/...): outside any working tree, so an export
    never lands in the git checkout runbook happened to be started from."""
    if os.environ.get("RUNBOOK_POSTMORTEMS"):
        return Path(os.path.expanduser(os.environ["RUNBOOK_POSTMORTEMS"]))
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "runbook" / "postmortems"


def read_cache(name: str):
    """The JSON kept in the cache file `name`, or None when there is none or it is unreadable."""
    import json

    try:
        return json.loads((cache_dir() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_cache(name: str, data) -> None:
    """Replace the cache file `name` with `data` as JSON, atomically; a cache that cannot be
    written is simply not used."""
    import json
    import tempfile

    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return


def sandbox_path(flags_file: str) -> str:
    """The drill sandbox beside a flag file: flags.json -> flags.sandbox.json."""
    path = Path(flags_file)
    return str(path.with_name(f"{path.stem}.sandbox{path.suffix or '.json'}"))


class Settings(NamedTuple):
    flags_file: str = DEFAULT_FLAGS_FILE
    sandbox_flags_file: str | None = None
    plugins_dir: str | None = DEFAULT_PLUGINS_DIR
    action_timeout: float = 60.0
    notify_timeout: float = 10.0
    observer_grace: float = DEFAULT_OBSERVER_GRACE
    escalation: str = "runbook"  # "pager": runbook pages level 1 only, the pager escalates
    public_url: str | None = None  # where people reach runbook (links from a page back to the incident)
    prometheus_url: str | None = None  # where prometheus: checks query (RUNBOOK_PROMETHEUS_URL)
    smtp: str | None = None  # HOST:PORT of the mail server subscribers' email goes through (RUNBOOK_SMTP)
    mail_from: str | None = None  # the From of that email (RUNBOOK_MAIL_FROM)

    def incident_url(self, incident: str) -> str | None:
        """The incident's page under the public URL (RUNBOOK_PUBLIC_URL), or None when unset."""
        return f"{self.public_url.rstrip('/')}/incidents/{incident}" if self.public_url else None

    @property
    def sandbox_file(self) -> str:
        return self.sandbox_flags_file or sandbox_path(self.flags_file)

    def flag_file(self, drill: bool) -> str:
        return self.sandbox_file if drill else self.flags_file

    @classmethod
    def from_environment(cls, **overrides) -> Settings:
        values = {
            "flags_file": os.environ.get("RUNBOOK_FLAGS") or DEFAULT_FLAGS_FILE,
            "sandbox_flags_file": os.environ.get("RUNBOOK_SANDBOX_FLAGS") or None,
            "plugins_dir": os.environ.get("RUNBOOK_PLUGINS_DIR") or DEFAULT_PLUGINS_DIR,
            "observer_grace": _seconds("RUNBOOK_OBSERVER_GRACE", DEFAULT_OBSERVER_GRACE),
            "escalation": _escalation_by(),
            "public_url": os.environ.get("RUNBOOK_PUBLIC_URL") or None,
            "prometheus_url": os.environ.get("RUNBOOK_PROMETHEUS_URL") or None,
            "smtp": os.environ.get("RUNBOOK_SMTP") or None,
            "mail_from": os.environ.get("RUNBOOK_MAIL_FROM") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UsageError(f"{variable}={raw!r} is not a number of seconds (e.g. 0.5)")
    return value


def _escalation_by() -> str:
    raw = (os.environ.get("RUNBOOK_ESCALATION") or "runbook").strip().lower()
    if raw not in ESCALATION_BY:
        raise UsageError(f"RUNBOOK_ESCALATION={raw!r} is not one of: {', '.join(ESCALATION_BY)} "
                         "(runbook: its ladder pages every level; pager: runbook pages level 1, the pager escalates)")
    return raw
