"""The values that cross the plugin boundary. Plugin authors import from here.

    from runbook.pluginapi import hookimpl, ActionResult

Each is an immutable record (a NamedTuple: built with positional or keyword arguments, read
by attribute, compared by value; `_replace` makes a changed copy).
"""

from copy import deepcopy
from typing import NamedTuple

__all__ = ["ActionRequest", "ActionResult", "EscalationNotice", "FlagChange", "FlagState", "HookFailure",  # noqa: F822
           "NotifyResult", "PagerAlert", "PagerUpdate", "Recipient", "SubscriberMessage",
           "hookimpl"]  # hookimpl: module __getattr__


def __getattr__(name):
    # `hookimpl` (pluggy's marker) is imported when a plugin asks for it: the engine reads the
    # records below on every command, and most commands never load a plugin (runbook/deferred.py)
    if name == "hookimpl":
        from runbook.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PAGER_SEVERITIES = ("critical", "error", "warning", "info")  # PagerDuty's, most severe first


class FlagState(NamedTuple):
    """What a flag holds: whether it exists, its current value, and the variant that gives it."""

    exists: bool
    value: object = None
    variant: str | None = None
    enabled: bool = True
    share: int | None = None  # a staged degradation: the percentage of contexts given `value` (None: all)

    def to_dict(self) -> dict:
        # spelled out, copying only what could be shared (as asdict did, without its deep walk
        # over every field): this runs for every flag flip recorded
        value = deepcopy(self.value) if isinstance(self.value, (dict, list)) else self.value
        out = {"exists": self.exists, "value": value, "variant": self.variant, "enabled": self.enabled}
        if self.share is not None:
            out["share"] = self.share
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FlagState":
        return cls(bool(data.get("exists")), data.get("value"), data.get("variant"), data.get("enabled", True),
                   data.get("share"))


class FlagChange(NamedTuple):
    name: str
    previous: FlagState
    current: FlagState
    backend: str
    location: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "previous": self.previous.to_dict(), "current": self.current.to_dict(),
                "backend": self.backend, "location": self.location, "notes": list(self.notes)}


class ActionRequest(NamedTuple):
    """An automated step: `argv` for a command (run:), or `action` + `params` for a plugin action (uses:)."""

    argv: tuple[str, ...] | None = None
    action: str | None = None
    params: dict = {}  # shared when empty: read-only, like every field here
    timeout: float = 60.0
    incident: str | None = None
    step: str | None = None
    drill: bool = False
    pidfile: str | None = None  # a runner that starts a process group writes "<pgid> <start time>" here
    cwd: str | None = None  # the command's working directory (None: runbook's own)
    env: dict = {}  # variables added to runbook's environment for the command
    rendered: bool = False  # argv is final (the engine filled its templates): run it as it is
    # a background command (background:): the file its output goes to; the runner starts it in a
    # process group of its own, does not wait for it, and returns its process (ActionResult.process)
    output: str | None = None


class ActionResult(NamedTuple):
    ok: bool
    summary: str
    exit_code: int | None = None
    output: str = ""
    duration: float = 0.0
    handler: str = ""
    process: dict | None = None  # a background command started: {"pid", "pgid", "start"} (process_start)

    def to_dict(self) -> dict:
        """The outcome as an action_finished event records it (a background command's process is
        recorded by its own event)."""
        out = self._asdict()
        del out["process"]
        return out


class Recipient(NamedTuple):
    id: str
    name: str
    email: str = ""
    phone: str = ""
    chat: str = ""
    pager: str = ""
    via: str = ""  # "rotation rtc-primary" or "person"


class EscalationNotice(NamedTuple):
    """One escalation level being notified for one incident.

    `dedup_key` is this page's own key (one per escalation level and round, so a higher level
    opens a new alert at a pager and pages someone new); `pager_severity` is the severity level's
    pager severity (critical, error, warning or info); `sandboxed` is a drill not declared live,
    which must never reach a real pager."""

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
    round: int = 0
    pager_severity: str = "error"
    sandboxed: bool = False
    urgency: str = "high"  # high or low: the severity level's urgency (a SeverityPolicy's urgency:)

    def to_dict(self) -> dict:
        return {**self._asdict(), "recipients": [r._asdict() for r in self.recipients]}


class NotifyResult(NamedTuple):
    """What one plugin did with a notice or an update.

    `retryable`: not delivered, but trying again may work (HTTP 429 or 5xx, a network error);
    runbook retries this plugin alone, with backoff. `dedup_key`: the key under which the pager
    now holds an open alert (or may: a retryable failure), which it must be told about when the
    incident is acknowledged and resolved (`notify_update`). `skipped`: deliberately not sent
    (a drill), not a failure. `plugin` is filled in by runbook."""

    channel: str
    delivered: bool
    detail: str = ""
    retryable: bool = False
    dedup_key: str = ""
    skipped: bool = False
    plugin: str = ""

    def to_dict(self) -> dict:
        return self._asdict()


class PagerAlert(NamedTuple):
    """One alert a plugin opened at a pager: the page's dedup key, its level and round, and who it paged."""

    dedup_key: str
    level: int
    round: int
    recipients: tuple[Recipient, ...] = ()


class PagerUpdate(NamedTuple):
    """The incident was acknowledged or resolved in runbook: `action` is "acknowledge" or
    "resolve", `alerts` the alerts this plugin opened for it (every key it triggered)."""

    incident: str
    action: str
    alerts: tuple[PagerAlert, ...]
    title: str = ""
    severity: str = ""
    pager_severity: str = "error"
    by: str = ""
    service: str = ""
    drill: bool = False
    sandboxed: bool = False


class ChatMessage(NamedTuple):
    """A message for the team's chat, already plain text (runbook sanitises it).

    `txn`: the same txn is the same message (a retry after a crash must not post twice; Matrix's
    transaction id). `thread`: the chat's id of the incident's thread root to post under (None:
    this message starts the incident's thread). `replaces`: the chat's id of a message this one
    edits (a countdown) instead of a new message. `reply_to`: the command this answers."""

    incident: str
    text: str
    txn: str
    thread: str | None = None
    replaces: str | None = None
    reply_to: str | None = None


class ChatReceipt(NamedTuple):
    """What a chat plugin did with a message: `remote` is the chat's id for it."""

    channel: str
    posted: bool
    remote: str = ""
    detail: str = ""


class ChatCommand(NamedTuple):
    """A command someone wrote in the chat (`!ack INC-x`): the chat's id of that message, who
    wrote it (the chat's user id), the text, and the thread it was written in, if any."""

    channel: str
    remote: str
    sender: str
    text: str
    thread: str | None = None


class HookFailure(NamedTuple):
    """A plugin that raised, hung past its timeout or returned nonsense, as data rather than a crash."""

    plugin: str
    hook: str
    message: str
    kind: str = "error"  # "error" or "timeout"

    def format(self) -> str:
        return f"plugin {self.plugin} failed in {self.hook}: {self.message}"

    def to_dict(self) -> dict:
        return self._asdict()


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None when it is not running
    or cannot be read (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


def record_process_group(request: ActionRequest, pgid: int) -> None:
    """For runners that start a process group: write it where the engine can find it, so an
    action orphaned by a crash is killed before the step is settled or retried."""
    if request.pidfile:
        with open(request.pidfile, "w", encoding="ascii") as handle:
            handle.write(f"{pgid} {process_start(pgid)}")


class SubscriberMessage(NamedTuple):
    """One message to one subscriber of the public status page (`notify_subscriber`).

    `kind` is "email" (to `address`: `subject` and `text`, with `unsubscribe` as the
    List-Unsubscribe link when it is an update) or "webhook" (POST `body`, JSON, to `address`,
    signed with `secret`). `key` names the message for that subscriber: "confirm", or the public
    id of the update, the same on every retry."""

    kind: str
    address: str
    key: str
    subject: str = ""
    text: str = ""
    body: bytes = b""
    secret: str = ""
    unsubscribe: str = ""
