"""What every incident store shares: the errors, the stored event, the hash chain and the optional
chain key, the summary projection's rules and the alert ledger's columns. No SQL here."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC
from pathlib import Path
from typing import NamedTuple

from runbook.errors import RunbookError, UsageError

GENESIS = "0" * 64


class StoreError(RunbookError):
    """The incident database cannot be used: damaged, read-only, locked, or not reachable."""

    exit_code = 7


class ConflictError(RunbookError):
    """Another writer appended first; re-read the incident and try again."""

    exit_code = 6


class FencedError(StoreError):
    """A write guarded by an incident's lease, refused: another server took the lease over (its
    epoch moved on) while this one stalled; this one stands down from that incident."""


def lease_shift(moment: str, seconds: float) -> str:
    """The ISO time `seconds` after `moment` (lease times: UTC, microseconds, a Z)."""
    from datetime import datetime, timedelta

    later = datetime.fromisoformat(moment.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return later.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def lease_seconds(later: str, earlier: str) -> float:
    """Seconds from lease time `earlier` to `later`."""
    from datetime import datetime

    return (datetime.fromisoformat(later.replace("Z", "+00:00"))
            - datetime.fromisoformat(earlier.replace("Z", "+00:00"))).total_seconds()


class StoredEvent(NamedTuple):
    incident: str
    seq: int
    ts: str
    actor: str
    type: str
    data: dict
    prev_hash: str
    hash: str
    mac: str = ""  # HMAC-SHA256 of `hash` under the chain key, when one is configured


def event_hash(incident: str, seq: int, ts: str, actor: str, type_: str, data: dict, prev_hash: str) -> str:
    body = json.dumps([incident, seq, ts, actor, type_, data, prev_hash], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ChainKeyError(UsageError):
    """The chain key cannot be used as it is (others can read it, too short, already exists)."""


def chain_key_path() -> str:
    """The optional chain key: `RUNBOOK_CHAIN_KEY`, else runbook/chain.key in the config directory."""
    if os.environ.get("RUNBOOK_CHAIN_KEY"):
        return os.environ["RUNBOOK_CHAIN_KEY"]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "runbook", "chain.key")


class ChainKey(NamedTuple):
    """The chain key's bytes and when it was created (UTC, as events keep times): every event
    appended from then on must be signed with it."""

    key: bytes
    created: str


def _utc(seconds: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def read_chain_key(path: str | None = None) -> ChainKey | None:
    """The chain key and its creation time, or None when there is none at the default path.

    The file holds the key on its first line and its creation time on the second (as written by
    `create_chain_key`); a key without that line counts as created at the file's modification
    time. A key named by `RUNBOOK_CHAIN_KEY` that does not exist is not "no key": it is returned
    as None here too, and `missing_chain_key()` says so, so that writes refuse it."""
    path = path or chain_key_path()
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            content = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ChainKeyError(f"{path}: cannot read the chain key: {exc.strerror or exc}") from None
    if info.st_mode & 0o077:
        raise ChainKeyError(f"{path}: the chain key is readable by others; make it private (chmod 600 {path})")
    lines = content.strip().split(b"\n")
    key = lines[0].strip()
    if len(key) < 32:
        raise ChainKeyError(f"{path}: the chain key is too short ({len(key)} bytes, expected at least 32)")
    created = _utc(info.st_mtime)
    if len(lines) > 1:
        text = lines[1].strip().decode("ascii", "replace")
        text = text.removeprefix("created ").strip()
        try:
            from datetime import datetime

            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError
        except ValueError:
            raise ChainKeyError(f"{path}: the chain key's second line should be its creation time in UTC "
                                f"(e.g. created 2026-01-31T09:00:00.000000Z), got {text[:40]!r}") from None
        created = _utc(moment.timestamp())
    return ChainKey(key, created)


def load_chain_key(path: str | None = None) -> bytes | None:
    """The chain key's bytes, or None when there is none. A key others can read is refused."""
    found = read_chain_key(path)
    return found.key if found else None


def missing_chain_key() -> str | None:
    """Why writing must stop when `RUNBOOK_CHAIN_KEY` names a key that does not exist (an explicitly
    configured key that went missing would otherwise leave events silently unsigned)."""
    path = os.environ.get("RUNBOOK_CHAIN_KEY")
    if path and not os.path.exists(path):
        return (f"the chain key {path} named by RUNBOOK_CHAIN_KEY does not exist; restore it, create it with "
                "`runbook incident verify --init-key`, or unset RUNBOOK_CHAIN_KEY")
    return None


def create_chain_key(path: str | None = None) -> str:
    """Create a new random chain key (0600) with its creation time; refuses to replace one."""
    import secrets
    import time

    path = path or chain_key_path()
    Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ChainKeyError(f"{path}: a chain key already exists; keep it (events signed with it need it)") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n" + f"created {_utc(time.time())}\n")
    return path


def event_mac(key: bytes, digest: str) -> str:
    import hmac

    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def anchor_mac(key: bytes, incident: str, last_seq: int, last_hash: str) -> str:
    """The summary's signed anchor: the incident's event count and last hash under the chain key,
    so that stripping signatures or deleting the last events shows wherever the key is present."""
    return event_mac(key, f"{incident}|{last_seq}|{last_hash}")


def default_path() -> str:
    if os.environ.get("RUNBOOK_DB"):
        return os.environ["RUNBOOK_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "runbook", "runbook.db")


# How the incidents summary takes each column an event's projection sets: the first time wins
# for the *_at columns, status only moves forward, the rest take the latest value.
FIRST_COLUMNS = ("acknowledged_at", "mitigated_at", "resolved_at")
LATEST_COLUMNS = ("severity",)
STATUS_RANK = {"open": 0, "acknowledged": 1, "mitigated": 2, "resolved": 3, "follow-up": 3, "closed": 4}


def like_prefix(text: str) -> str:
    """A LIKE pattern (escape character backslash) for upper-cased ids starting with `text`, taken literally."""
    return text.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


ALERT_COLUMNS = ("fingerprint", "starts_at", "status", "ends_at", "alertname", "labels", "annotations",
                 "generator_url", "receiver", "first_seen", "last_seen", "deliveries", "playbook", "symptom",
                 "incident", "outcome", "reason", "owner")
ALERT_JSON = ("labels", "annotations", "owner")
STILL_OPEN = ("open", "acknowledged", "mitigated")


def alert_row(values) -> dict:
    row = dict(zip(ALERT_COLUMNS, values))
    for name in ALERT_JSON:
        row[name] = json.loads(row[name]) if row[name] else ({} if name != "owner" else None)
    return row



def is_postgres_url(location: str | None) -> bool:
    return bool(location) and location.startswith(("postgresql://", "postgres://"))


def chain_events(incident: str, seq: int, prev: str, events: list[dict], key: bytes | None) -> list[StoredEvent]:
    """`events` (dicts with ts, actor, type, data) as they are stored after event `seq` whose hash is
    `prev`: numbered, each hash chained to the one before, signed when there is a chain key."""
    stored = []
    for event in events:
        seq += 1
        digest = event_hash(incident, seq, event["ts"], event["actor"], event["type"], event["data"], prev)
        stored.append(StoredEvent(incident, seq, event["ts"], event["actor"], event["type"], event["data"],
                                  prev, digest, event_mac(key, digest) if key else ""))
        prev = digest
    return stored


def summary_updates(events: list[dict]) -> dict:
    """What the events' projections set in the incidents summary, combined by the summary's rules."""
    updates: dict = {}
    for event in events:
        for column, value in (event.get("summary") or {}).items():
            if column in FIRST_COLUMNS:
                updates.setdefault(column, value)
            elif column == "status":
                updates[column] = max(updates.get(column, "open"), value, key=STATUS_RANK.__getitem__)
            elif column in LATEST_COLUMNS:
                updates[column] = value
            else:
                raise StoreError(f"an event's summary sets unknown column '{column}'")
    return updates


def data_json(data) -> str:
    """An event's data as stored: the hash covers the data, not this text, so any stable encoding does."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


STATUS_TYPES = ("acknowledged", "mitigated", "resolved", "closed")


def log_facts_from(counts, typed, marked) -> dict[str, tuple[int, int, dict]]:
    """What each incident's log says its summary should be, from three indexed reads: (incident,
    count, highest seq) rows; the (incident, type, data) rows of the events whose type moves the
    status; and the (incident, seq, ts, type, data) rows of the opened event and the severity
    changes. A 100,000-event incident costs a count of its keys, not a read of every event."""
    seen: dict[str, set] = {}
    for incident, type_, data in typed:
        kinds = seen.setdefault(incident, set())
        kinds.add(type_)
        if type_ == "resolved":
            try:
                followup = json.loads(data).get("followup") if data else None
            except (ValueError, AttributeError):
                followup = None
            if followup:  # as the fold reads it (Resolved.project): truthy, [] and {} not
                kinds.add("followup")
    facts = {}
    for incident, count, last in counts:
        kinds = seen.get(incident, set())
        facts[incident] = (count, last, {"status": log_status("acknowledged" in kinds, "mitigated" in kinds,
                                                              "resolved" in kinds, "followup" in kinds,
                                                              "closed" in kinds)})
    for incident, seq, ts, type_, data in sorted(marked, key=lambda r: (r[0], r[1])):
        if incident not in facts:
            continue
        said = facts[incident][2]
        try:
            data = json.loads(data)
        except ValueError:
            continue  # the full check says what is wrong with it
        if not isinstance(data, dict):
            continue
        if seq == 1 and type_ == "opened":
            said.update(drill=int(bool(data.get("drill"))), severity=data.get("severity"),
                        title=data.get("title"), playbook=data.get("playbook"), opened_at=ts)
        elif type_ == "severity_changed" and "severity" in said:
            said["severity"] = data.get("to")
    return facts


EVENT_COLUMNS = "incident, seq, ts, actor, type, data, prev_hash, hash, mac"


def stored_events(rows) -> list[StoredEvent]:
    """StoredEvents from rows of EVENT_COLUMNS."""
    return [StoredEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8] or "") for r in rows]


def recent_events_sql(mark: str) -> str:
    """The opened event and the events from a position on, oldest first (parameters: incident,
    start, incident, start; `mark` the driver's placeholder), as two ranges of the key: one OR
    would walk every key of the incident."""
    return (f"SELECT {EVENT_COLUMNS} FROM events WHERE incident = {mark} AND seq = 1 AND seq < {mark} UNION ALL "
            f"SELECT {EVENT_COLUMNS} FROM events WHERE incident = {mark} AND seq >= {mark} ORDER BY seq")


CHECKPOINT_COLUMNS = ("seq", "chain_hash", "body", "digest", "mac")


def checkpoint_upsert(mark: str) -> str:
    """The statement that keeps a checkpoint in place of the incident's last one (`mark`: the
    driver's placeholder)."""
    return (f"INSERT INTO checkpoints (incident, {', '.join(CHECKPOINT_COLUMNS)}) VALUES ({', '.join([mark] * 6)}) "
            "ON CONFLICT (incident) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in CHECKPOINT_COLUMNS))


def checkpoint_from(row) -> dict | None:
    """A checkpoint as the engine reads it, from a row of CHECKPOINT_COLUMNS (None: none kept)."""
    return None if row is None else {**dict(zip(CHECKPOINT_COLUMNS, row)), "mac": row[4] or ""}


def log_status(acked, mitigated, resolved, followup, closed) -> str:
    """The status a log's event types say the summary should show."""
    return ("closed" if closed else "follow-up" if followup else "resolved" if resolved else
            "mitigated" if mitigated else "acknowledged" if acked else "open")
