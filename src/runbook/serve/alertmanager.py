"""Alertmanager's webhook payload (version 4) read into alerts, each alert on its own.

A body that cannot be read as a delivery at all (not UTF-8, not JSON, not an object, not version
4, no list of alerts) is refused as a whole (400, nothing recorded): there is no alert in it to
keep. The number of alerts is not limited (Alertmanager's `max_alerts` is 0, no limit, by
default): the body limit (`runbook serve --max-body`) bounds a delivery, and all its alerts are
stored in one transaction. Inside a readable delivery every alert is checked on its own: a malformed
one becomes an Alert whose `rejected` says where and why (recorded in the ledger as "rejected")
and the valid ones next to it are taken as usual, because Alertmanager does not retry a 4xx and
a refused delivery would lose them.

Bounds (an alert over one is rejected): at most MAX_LABELS labels and as many annotations; a label
name matches [A-Za-z_][A-Za-z0-9_]* and an annotation name is text, both at most MAX_NAME
characters; a value at most MAX_TEXT characters, and all names and values of one alert together
at most MAX_ALERT_TEXT (what reaches the event log and the ledger stays small); all text valid
Unicode (no lone surrogate such as \\udc80) without NUL; no number where text is expected (a
number of more than MAX_DIGITS digits is never converted, so 100,000 digits cost nothing).

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

MAX_LABELS = 64  # labels, and annotations
MAX_NAME = 128  # one label or annotation name
MAX_TEXT = 4096  # one label or annotation value, the generator URL, the receiver
MAX_ALERT_TEXT = 32 * 1024  # the names and values of one alert's labels and annotations, together
MAX_DIGITS = 32  # a longer number in the body is kept as a `Number` that says how long it was
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{1,64}$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: "no end time yet"


class PayloadError(UsageError):
    """The delivery, or one alert in it, cannot be read; the message names where and why."""


class Number:
    """A number of more than MAX_DIGITS digits, as JSON gave it: never converted (Python refuses
    to convert one of over 4,300 digits, and converting is quadratic below that)."""

    def __init__(self, text: str):
        self.digits = sum(ch.isdigit() for ch in text)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]


def _number(text: str, convert):
    return Number(text) if len(text) > MAX_DIGITS else convert(text)


def parse(body: bytes) -> tuple[list[Alert], str]:
    """(alerts, receiver) from a webhook body, or PayloadError when it is not a delivery at all.
    A malformed alert comes back as an Alert whose `rejected` says where and why."""
    try:
        data = json.loads(body.decode("utf-8"), parse_int=lambda t: _number(t, int),
                          parse_float=lambda t: _number(t, float))
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
        said = repr(version) if isinstance(version, str) and len(version) <= 20 else _shown(version)
        raise PayloadError(f"unsupported webhook payload version {said}: runbook reads version \"4\" "
                           "(Alertmanager 0.x webhook_configs)")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: expected a list, got {_kind(alerts)}")
    try:
        receiver, bad_receiver = _text(data.get("receiver", ""), "receiver"), None
    except PayloadError as exc:  # every alert is kept, rejected with the reason
        receiver, bad_receiver = "", str(exc)
    return [_checked(item, f"alerts[{n}]", receiver, bad_receiver) for n, item in enumerate(alerts)], receiver


def _checked(item, where: str, receiver: str, bad_receiver: str | None) -> Alert:
    try:
        if bad_receiver:
            raise PayloadError(bad_receiver)
        return _alert(item, where, receiver)
    except PayloadError as exc:
        return _rejected(item, str(exc), receiver)


def _rejected(item, reason: str, receiver: str) -> Alert:
    """A malformed alert as the ledger keeps it: what of it is valid (to recognise it by) and why it
    was rejected, under a key of its own (a hash of all it said: a repeat of it finds its row, and
    the valid alert a fixed sender sends later is not taken for it)."""
    key = _digest(item, reason)
    item = item if isinstance(item, dict) else {}
    labels = _valid(item.get("labels"), names=True)
    status = item.get("status") if item.get("status") in ("firing", "resolved") else "unknown"
    starts = item.get("startsAt") if _is_time(item.get("startsAt")) else ""
    ends = item.get("endsAt") if _is_time(item.get("endsAt")) and item.get("endsAt") != ZERO_TIME else None
    url = item.get("generatorURL") if _is_text(item.get("generatorURL")) else ""
    return Alert(key, status, starts, labels, _valid(item.get("annotations"), names=False), ends,
                 url, receiver, rejected=reason)


def _digest(item, reason: str) -> str:
    try:
        said = json.dumps(item, sort_keys=True, ensure_ascii=True, default=lambda n: f"number:{n.key}")
    except (ValueError, TypeError, RecursionError):  # cannot be written back: the reason must do
        said = reason
    return hashlib.sha256(said.encode()).hexdigest()[:16]


def _valid(value, names: bool) -> dict:
    """The entries of a labels or annotations object that are valid, within the bounds."""
    if not isinstance(value, dict):
        return {}
    kept, total = {}, 0
    for key, item in value.items():
        if len(kept) == MAX_LABELS:
            break
        if _is_name(key, names) and _is_text(item) and total + len(key) + len(item) <= MAX_ALERT_TEXT // 2:
            kept[key] = item
            total += len(key) + len(item)
    return kept


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
    total = sum(len(k) + len(v) for mapping in (labels, annotations) for k, v in mapping.items())
    if total > MAX_ALERT_TEXT:
        raise PayloadError(f"{where}: its labels and annotations hold {total:,} characters together, at most "
                           f"{MAX_ALERT_TEXT:,}")
    starts = _time(item.get("startsAt"), f"{where}.startsAt")
    ends = item.get("endsAt")
    ends = None if ends in (None, "", ZERO_TIME) else _time(ends, f"{where}.endsAt")
    fingerprint = item.get("fingerprint")
    if fingerprint is None:  # not from Alertmanager: the same idea, a hash of the labels
        fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    elif not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise PayloadError(f"{where}.fingerprint: expected a hexadecimal hash, got {_shown(fingerprint)}")
    url = _text(item.get("generatorURL", ""), f"{where}.generatorURL")
    return Alert(fingerprint.lower(), status, starts, labels, annotations, ends, url, receiver)


def _mapping(value, where: str, names: bool) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {_kind(value)}")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where}: {len(value)} entries, at most {MAX_LABELS}")
    for key, item in value.items():
        if not _is_name(key, names):
            raise PayloadError(f"{where}: {_shown(key)} is not {'a label' if names else 'an annotation'} name ("
                               + ("[A-Za-z_][A-Za-z0-9_]*, " if names else "text without NUL or lone surrogates, ")
                               + f"1 to {MAX_NAME} characters)")
        if not _is_text(item):  # (the place is spelled out only for the message)
            _text(item, f"{where}.{key}" if _LABEL_NAME.match(key) else f"{where}[{_shown(key)}]")
    return dict(value)


def _is_name(key: str, label: bool) -> bool:
    if not 0 < len(key) <= MAX_NAME:
        return False
    return bool(_LABEL_NAME.match(key)) if label else not _NUL_OR_SURROGATE.search(key)


def _is_text(value) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT and not _NUL_OR_SURROGATE.search(value)


def _is_time(value) -> bool:
    return isinstance(value, str) and bool(_TIME.match(value))


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string, got {_kind(value)}")
    if len(value) > MAX_TEXT:
        raise PayloadError(f"{where}: {len(value)} characters, at most {MAX_TEXT}")
    found = _NUL_OR_SURROGATE.search(value)
    if found:
        what = "a NUL character" if found.group() == "\x00" else f"a lone surrogate (\\u{ord(found.group()):04x})"
        raise PayloadError(f"{where}: holds {what} at character {found.start() + 1}; send valid UTF-8 text")
    return value


def _time(value, where: str) -> str:
    if not _is_time(value):
        raise PayloadError(f"{where}: expected an RFC 3339 time like 2026-11-30T10:00:00Z, got {_shown(value)}")
    return value


def _kind(value) -> str:
    if isinstance(value, Number):
        return f"a number of {value.digits:,} digits"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _shown(value) -> str:
    if isinstance(value, Number):
        return _kind(value)
    if isinstance(value, str) and len(value) > 60:
        value = value[:60]  # not the whole of a megabyte-long name
    try:
        text = json.dumps(value, ensure_ascii=True, default=_kind)
    except (ValueError, RecursionError):
        text = _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."
