"""The values that cross the plugin boundary. Plugin authors import from here.

    from runbook.pluginapi import hookimpl, ActionResult
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from runbook.hookspecs import hookimpl

__all__ = ["ActionRequest", "ActionResult", "EscalationNotice", "FlagChange", "FlagState", "HookFailure",
           "NotifyResult", "Recipient", "hookimpl"]


@dataclass(frozen=True)
class FlagState:
    """What a flag holds: whether it exists, its current value, and the variant that gives it."""

    exists: bool
    value: object = None
    variant: str | None = None
    enabled: bool = True

    def to_dict(self) -> dict:
        # spelled out: asdict's deep walk is most of the cost of recording a flag flip
        value = self.value
        if isinstance(value, (dict, list)):
            value = json.loads(json.dumps(value))  # a copy, as asdict made: the event must not share it
        return {"exists": self.exists, "value": value, "variant": self.variant, "enabled": self.enabled}

    @classmethod
    def from_dict(cls, data: dict) -> "FlagState":
        return cls(bool(data.get("exists")), data.get("value"), data.get("variant"), data.get("enabled", True))


@dataclass(frozen=True)
class FlagChange:
    name: str
    previous: FlagState
    current: FlagState
    backend: str
    location: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "previous": self.previous.to_dict(), "current": self.current.to_dict(),
                "backend": self.backend, "location": self.location, "notes": list(self.notes)}


@dataclass(frozen=True)
class ActionRequest:
    """An automated step: `argv` for a command (run:), or `action` + `params` for a plugin action (uses:)."""

    argv: tuple[str, ...] | None = None
    action: str | None = None
    params: dict = field(default_factory=dict)
    timeout: float = 60.0
    incident: str | None = None
    step: str | None = None
    drill: bool = False


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    summary: str
    exit_code: int | None = None
    output: str = ""
    duration: float = 0.0
    handler: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str
    email: str = ""
    phone: str = ""
    chat: str = ""
    pager: str = ""
    via: str = ""  # "rotation rtc-primary" or "person"


@dataclass(frozen=True)
class EscalationNotice:
    """One escalation level being notified for one incident."""

    incident: str
    title: str
    severity: str
    level: int
    recipients: tuple[Recipient, ...]
    summary: str = ""
    playbook: str = ""
    service: str = ""
    drill: bool = False
    dedup_key: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NotifyResult:
    channel: str
    delivered: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HookFailure:
    """A plugin that raised, hung past its timeout or returned nonsense, as data rather than a crash."""

    plugin: str
    hook: str
    message: str
    kind: str = "error"  # "error" or "timeout"

    def format(self) -> str:
        return f"plugin {self.plugin} failed in {self.hook}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)
