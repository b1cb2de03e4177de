"""Alertmanager's webhook payload (version 4) read into alerts, or refused with the reason.

The whole delivery is checked before anything is stored: a body that is not JSON, not version 4,
or holds one malformed alert is refused as a whole (400, nothing recorded), so Alertmanager's
logs show the reason and a fixed configuration re-sends everything.

    {"version": "4", "status": "firing", "receiver": "runbook", "groupKey": "...",
     "alerts": [{"status": "firing", "labels": {"alertname": "..."}, "annotations": {...},
                 "startsAt": "2026-11-30T10:00:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "http://prometheus/graph?...", "fingerprint": "3c9a0f1e2b4d5a6c"}]}
"""

from __future__ import annotations

import hashlib
import json
import re

from runbook.engine.intake import Alert
from runbook.errors import UsageError

MAX_ALERTS = 1000
MAX_LABELS = 64
MAX_TEXT = 4096  # one label or annotation value
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: "no end time yet"


class PayloadError(UsageError):
    """The delivery cannot be read; the message names where and why (answered with 400)."""


def parse(body: bytes) -> tuple[list[Alert], str]:
    """(alerts, receiver) from a webhook body, or PayloadError."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PayloadError(f"the body is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError("malformed JSON: nested too deeply for a webhook payload") from None
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object (Alertmanager's webhook payload), got {_kind(data)}")
    version = data.get("version")
    if version != "4":
        raise PayloadError(f"unsupported webhook payload version {version!r}: runbook reads version \"4\" "
                           "(Alertmanager 0.x webhook_configs)")
    receiver = _text(data.get("receiver", ""), "receiver", required=False)
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: expected a list, got {_kind(alerts)}")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"alerts: {len(alerts)} alerts in one delivery, at most {MAX_ALERTS} (set "
                           "max_alerts in the webhook config)")
    return [_alert(item, f"alerts[{n}]", receiver) for n, item in enumerate(alerts)], receiver


def _alert(item, where: str, receiver: str) -> Alert:
    if not isinstance(item, dict):
        raise PayloadError(f"{where}: expected an object, got {_kind(item)}")
    status = item.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status: expected \"firing\" or \"resolved\", got {_shown(status)}")
    labels = _mapping(item.get("labels"), f"{where}.labels", names=True)
    if not labels:
        raise PayloadError(f"{where}.labels: an alert needs at least one label")
    annotations = _mapping(item.get("annotations", {}), f"{where}.annotations", names=False)
    starts = _time(item.get("startsAt"), f"{where}.startsAt")
    ends = item.get("endsAt")
    ends = None if ends in (None, "", ZERO_TIME) else _time(ends, f"{where}.endsAt")
    fingerprint = item.get("fingerprint")
    if fingerprint is None:  # not from Alertmanager: the same idea, a hash of the labels
        fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    elif not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise PayloadError(f"{where}.fingerprint: expected a hexadecimal hash, got {_shown(fingerprint)}")
    url = _text(item.get("generatorURL", ""), f"{where}.generatorURL", required=False)
    return Alert(fingerprint.lower(), status, starts, labels, annotations, ends, url, receiver)


def _mapping(value, where: str, names: bool) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {_kind(value)}")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where}: {len(value)} entries, at most {MAX_LABELS}")
    for key, item in value.items():
        if names and not _LABEL_NAME.match(key):
            raise PayloadError(f"{where}: {_shown(key)} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        _text(item, f"{where}.{key}" if _LABEL_NAME.match(key) else f"{where}[{_shown(key)}]")
    return dict(value)


def _text(value, where: str, required: bool = True) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string, got {_kind(value)}")
    if len(value) > MAX_TEXT:
        raise PayloadError(f"{where}: {len(value)} characters, at most {MAX_TEXT}")
    return value


def _time(value, where: str) -> str:
    if not isinstance(value, str) or not _TIME.match(value):
        raise PayloadError(f"{where}: expected an RFC 3339 time like 2026-11-30T10:00:00Z, got {_shown(value)}")
    return value


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."
