"""The alerts `runbook serve` received, in either database: one row per occurrence of an alert,
keyed on its fingerprint (a hash of its labels) and its start time, so a repeat or a retry of the
same delivery finds its row and a new occurrence of the same alert gets a new one.

Its writes are serialised across every process (`_write("ledger")`: SQLite's write lock, an
advisory lock on PostgreSQL), so a check and the write it decides on (a new row, an incident id
no one holds) are one step."""

from __future__ import annotations

import hashlib
import json

from runbook.store.common import ALERT_COLUMNS, ALERT_JSON, STILL_OPEN, ConflictError, alert_row
from runbook.store.core import guarded, where


def other_fingerprint(fingerprint: str, labels: dict) -> str:
    """The ledger's key for an alert whose fingerprint is already another alert's (other labels):
    a hash of both, the same at every delivery of it."""
    said = json.dumps([fingerprint, labels], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(said.encode()).hexdigest()[:16]


class SqlAlertLedger:
    """The alert ledger's SQL, for `SqlStore` (core.py)."""

    @guarded
    def receive_alert(self, alert: dict, now: str, new_incident, owner: dict | None) -> tuple[dict, bool]:
        """Record one delivery of `alert`: `receive_alerts` of that one alert."""
        return self.receive_alerts([alert], now, new_incident, owner)[0]

    @guarded
    def receive_alerts(self, alerts: list[dict], now: str, new_incident,
                       owner: dict | None) -> list[tuple[dict, bool]]:
        """Record one delivery of `alerts` (each a dict of ALERT_COLUMNS: fingerprint, starts_at,
        status, labels... and the playbook/symptom it matched, if any) all in one transaction (an
        alert storm's delivery is one commit, not one per alert); for each alert, in order:

        Seen before (the same key and the same labels; a known key with other labels is another
        alert, kept under `other_fingerprint`): its row is updated (last_seen, deliveries, a move
        from firing to resolved) and returned as it was before, with False. New: a malformed
        alert (`rejected`: why) is kept as 'rejected'; when an earlier occurrence of the same
        alert is linked to an incident still open, the new one is linked to it
        (outcome 'attached'); so is a firing sibling (`sibling_key`: its group, None for none;
        `group`: the label names whose values make it) of an alert whose incident is open or
        reserved; else a firing alert with a playbook reserves an incident id drawn from
        `new_incident()` that no incident and no other alert holds (outcome 'pending',
        `owner` recorded until the incident exists); else it is kept as 'unmatched' (or
        'resolved' when runbook first hears of it resolved). Returns (row, True)."""
        with self._write("ledger"):
            return [self._receive_one(alert, now, new_incident, owner) for alert in alerts]

    def _receive_one(self, alert: dict, now: str, new_incident, owner: dict | None) -> tuple[dict, bool]:
        found = self._alert_row(alert["fingerprint"], alert["starts_at"])
        if found is not None and not alert.get("rejected") and found["labels"] != alert["labels"]:
            # a known fingerprint with other labels is another alert: a key of its own
            alert = {**alert, "fingerprint": other_fingerprint(alert["fingerprint"], alert["labels"])}
            found = self._alert_row(alert["fingerprint"], alert["starts_at"])
        key = [alert["fingerprint"], alert["starts_at"]]
        if found is not None:
            before = found
            resolving = alert["status"] == "resolved" and before["status"] != "resolved"
            self._run("UPDATE alerts SET last_seen = ?, deliveries = deliveries + 1, "
                      "status = CASE WHEN ? THEN 'resolved' ELSE status END, "
                      "ends_at = CASE WHEN ? THEN ? ELSE ends_at END "
                      "WHERE fingerprint = ? AND starts_at = ?",
                      [now, resolving, resolving, alert.get("ends_at"), *key])
            return before, False
        row = {name: alert.get(name) for name in ALERT_COLUMNS}
        row.update(first_seen=now, last_seen=now, deliveries=1, owner=None)
        linked = None if alert.get("rejected") else self._open_incident_of(alert["fingerprint"], alert["labels"])
        sibling = None if linked or alert.get("rejected") or alert["status"] == "resolved" \
            else self._sibling_incident_of(alert)
        if alert.get("rejected"):
            row.update(incident=None, outcome="rejected", reason=alert["rejected"])
        elif linked:
            row.update(incident=linked, outcome="attached")
        elif sibling:
            row.update(incident=sibling[0], outcome="attached", reason=sibling[1])
        elif alert["status"] == "resolved":
            row.update(incident=None, outcome="resolved",
                       reason=row.get("reason") or "resolved before runbook saw it fire")
        elif alert.get("held"):  # inside a maintenance window, below the severity that pages
            row.update(incident=None, outcome="maintenance", reason=alert["held"])
        elif alert.get("playbook") and new_incident:
            row.update(incident=self._unused_id(new_incident), outcome="pending", owner=owner)
        else:
            row.update(incident=None, outcome="unmatched")
        values = [json.dumps(row[n], ensure_ascii=False) if n in ALERT_JSON and row[n] is not None else row[n]
                  for n in ALERT_COLUMNS]
        self._run(f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}, sibling_key) VALUES "
                  f"({', '.join('?' * len(ALERT_COLUMNS))}, ?)", [*values, alert.get("sibling_key")])
        return row, True

    def _alert_row(self, fingerprint: str, starts_at: str) -> dict | None:
        found = self._run(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE fingerprint = ? AND starts_at = ?",
                          [fingerprint, starts_at]).fetchone()
        return alert_row(found) if found is not None else None

    def _open_incident_of(self, fingerprint: str, labels: dict) -> str | None:
        """The still open incident of the latest earlier occurrence of the same alert: the same
        fingerprint (or the key of its own it was given) and the same labels."""
        keys = [fingerprint, other_fingerprint(fingerprint, labels)]
        for incident, stored in self._run(
                "SELECT a.incident, a.labels FROM alerts a JOIN incidents i ON i.id = a.incident WHERE "
                f"a.fingerprint IN (?, ?) AND i.status IN ({', '.join('?' * len(STILL_OPEN))}) "
                "ORDER BY a.starts_at DESC", [*keys, *STILL_OPEN]):
            if json.loads(stored or "{}") == labels:
                return incident
        return None

    def _sibling_incident_of(self, alert: dict) -> tuple[str, str] | None:
        """(incident, why) of a sibling of a firing alert: an alert of the same group
        (`sibling_key`: its playbook, symptom and the values of the labels named by `group`)
        linked to an incident still open or reserved for one about to open (a warning and its
        critical in one delivery); the latest. None without a group."""
        if alert.get("sibling_key") is None:
            return None
        open_ = ", ".join("?" * len(STILL_OPEN))
        found = self._run(
            "SELECT a.incident, a.alertname FROM alerts a LEFT JOIN incidents i ON i.id = a.incident "
            "WHERE a.sibling_key = ? AND a.incident IS NOT NULL AND "
            f"(i.status IN ({open_}) OR (i.id IS NULL AND a.outcome = 'pending')) ORDER BY a.starts_at DESC LIMIT 1",
            [alert["sibling_key"], *STILL_OPEN]).fetchone()
        if found is None:
            return None
        shown = ", ".join(f"{key}={alert['labels'][key]}" for key in alert["group"] if key in alert["labels"])
        return found[0], f"a sibling of {found[1] or 'an alert'} ({shown or 'same symptom'}) joins its incident"

    def _unused_id(self, draw) -> str:
        for _ in range(100):
            candidate = draw()
            if not self._run("SELECT 1 FROM incidents WHERE id = ? UNION ALL SELECT 1 FROM alerts "
                             "WHERE incident = ? LIMIT 1", [candidate, candidate]).fetchone():
                return candidate
        raise ConflictError("could not draw an unused incident id in 100 tries")

    @guarded
    def reserve_again(self, fingerprint: str, starts_at: str, taken: str, draw) -> str | None:
        """A pending alert's reserved id turned out to be taken by an incident opened elsewhere:
        reserve another (None when the row no longer holds `taken`)."""
        with self._write("ledger"):
            fresh = self._unused_id(draw)
            cursor = self._run("UPDATE alerts SET incident = ? WHERE fingerprint = ? AND starts_at = ? "
                               "AND incident = ? AND outcome = 'pending'", [fresh, fingerprint, starts_at, taken])
            return fresh if cursor.rowcount == 1 else None

    @guarded
    def take_over_alert(self, fingerprint: str, starts_at: str, previous: dict | None, owner: dict) -> bool:
        """Make `owner` the one to open a pending alert's incident, if `previous` still holds it
        (its owner is gone); False when someone else took it or it is no longer pending."""
        with self._write("ledger"):
            cursor = self._run(
                "UPDATE alerts SET owner = ? WHERE fingerprint = ? AND starts_at = ? AND outcome = 'pending' "
                "AND coalesce(owner, '') = ?", [json.dumps(owner), fingerprint, starts_at,
                                                json.dumps(previous) if previous is not None else ""])
            return cursor.rowcount == 1

    @guarded
    def settle_alert(self, fingerprint: str, starts_at: str, outcome: str, reason: str | None = None,
                     incident: str | None = "keep") -> None:
        """Set a row's outcome (and reason); the owner is cleared."""
        sets, params = ["outcome = ?", "reason = ?", "owner = NULL"], [outcome, reason]
        if incident != "keep":
            sets.append("incident = ?")
            params.append(incident)
        with self._write("ledger"):
            self._run(f"UPDATE alerts SET {', '.join(sets)} WHERE fingerprint = ? AND starts_at = ?",
                      [*params, fingerprint, starts_at])

    @guarded
    def claim_alert_by_hand(self, fingerprint: str, starts_at: str, playbook: str, draw, owner: dict) -> str | None:
        """A responder opens an incident for an alert no playbook took: reserve an incident id for
        it, as the intake does (outcome 'pending'), only while it is still unmatched or failed.
        `owner` is recorded as a claim made by hand ("by_hand"; engine/owner.py: trusted until its
        "until", whatever process it names). The id, or None when it already has an incident
        (someone was quicker)."""
        with self._write("ledger"):
            fresh = self._unused_id(draw)
            cursor = self._run(
                "UPDATE alerts SET outcome = 'pending', incident = ?, playbook = ?, owner = ?, reason = NULL "
                "WHERE fingerprint = ? AND starts_at = ? AND outcome IN ('unmatched', 'failed', 'resolved')",
                [fresh, playbook, json.dumps({**owner, "by_hand": True}), fingerprint, starts_at])
            return fresh if cursor.rowcount == 1 else None

    @guarded
    def settle_alert_by_hand(self, fingerprint: str, starts_at: str, incident: str, outcome: str,
                             reason: str | None = None) -> bool:
        """Settle what `claim_alert_by_hand` reserved for `incident`, while that claim made by hand
        still holds the row (not once a server took it over): "opened" (its incident opened and
        linked to the alert: PostgreSQL checks the log), or back to what it was (unmatched, failed,
        resolved) while no incident of that id exists. Whether the row moved."""
        if outcome == "opened":
            sets, check = "outcome = 'opened', reason = ?, owner = NULL", ""
        elif outcome in ("unmatched", "failed", "resolved"):
            sets, check = "outcome = ?, reason = ?, owner = NULL, incident = NULL", \
                " AND NOT EXISTS (SELECT 1 FROM incidents WHERE id = ?)"
        else:
            return False
        params = ([reason] if outcome == "opened" else [outcome, reason]) + [fingerprint, starts_at, incident]
        with self._write("ledger"):
            held = self._run("SELECT owner FROM alerts WHERE fingerprint = ? AND starts_at = ? AND incident = ? "
                             "AND outcome = 'pending'", [fingerprint, starts_at, incident]).fetchone()
            if held is None or not (json.loads(held[0] or "null") or {}).get("by_hand"):
                return False
            return self._run(f"UPDATE alerts SET {sets} WHERE fingerprint = ? AND starts_at = ? AND incident = ? "
                             f"AND outcome = 'pending' AND owner = ?{check}",
                             params + [held[0]] + ([incident] if check else [])).rowcount == 1

    @guarded
    def alerts(self, outcome: str | None = None, incident: str | None = None, pending: bool = False,
               limit: int | None = None, fingerprint: str | None = None, after: tuple | None = None) -> list[dict]:
        """Received alerts, the latest seen first; filtered by outcome, by incident, by fingerprint,
        or only those still 'pending' (an incident reserved, not yet opened). `after`: a page
        cursor, (last_seen, fingerprint, starts_at) of the last row of the page before."""
        later = None
        if after is not None:
            seen, fingerprint_, starts = after
            later = ("(last_seen < ? OR (last_seen = ? AND (fingerprint > ? OR (fingerprint = ? AND starts_at < ?))))",
                     [seen, seen, fingerprint_, fingerprint_, starts])
        sql, params = where(("fingerprint = ?", fingerprint) if fingerprint else None,
                            ("outcome = ?", outcome) if outcome else None,
                            ("outcome = 'pending'",) if pending else None,
                            ("incident = ?", incident) if incident else None)
        if later:
            sql += (" AND " if sql else " WHERE ") + later[0]
            params += later[1]
        sql = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts{sql} ORDER BY last_seen DESC, fingerprint, starts_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [alert_row(r) for r in self._run(sql, params).fetchall()]

    @guarded
    def prune_alerts(self, before: str, dry_run: bool = False, batch: int = 1000) -> int:
        """Forget the ledger rows last heard of before `before` (an ISO time), except what still
        matters: a pending alert (its incident is still to open) and an alert of an incident still
        open (its resolved delivery must find it). The number of rows (that would be) removed.
        `batch` rows a transaction, so a delivery never waits long on the ledger's lock."""
        open_ = ", ".join("?" * len(STILL_OPEN))
        condition = (f"last_seen < ? AND outcome <> 'pending' AND (incident IS NULL OR incident NOT IN "
                     f"(SELECT id FROM incidents WHERE status IN ({open_})))")
        params = [before, *STILL_OPEN]
        if dry_run:
            return self._run(f"SELECT count(*) FROM alerts WHERE {condition}", params).fetchone()[0]
        gone = 0
        while True:
            with self._write("ledger"):
                done = self._run(f"DELETE FROM alerts WHERE (fingerprint, starts_at) IN (SELECT fingerprint, "
                                 f"starts_at FROM alerts WHERE {condition} LIMIT {int(batch)})", params).rowcount
            gone += done
            if done < batch:
                return gone


class SqlMaintenance:
    """Scheduled maintenance windows' SQL, for `SqlStore` (core.py)."""

    @guarded
    def add_maintenance(self, window: dict) -> int:
        """Record a window (title, body, components, starts_at, ends_at, page_at, created_by,
        created_at); its id."""
        with self._write():
            self._run("INSERT INTO maintenance (title, body, components, starts_at, ends_at, page_at, created_by, "
                      "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      [window["title"], window.get("body") or "", json.dumps(list(window["components"])),
                       window["starts_at"], window["ends_at"], window.get("page_at"), window.get("created_by"),
                       window["created_at"]])
            return self._run(f"SELECT {self.last_id}").fetchone()[0]

    @guarded
    def maintenance(self, ending_after: str | None = None, window: int | None = None,
                    cancelled: bool = True) -> list[dict]:
        """Windows by start time: those ending after `ending_after`, or the one numbered `window`;
        cancelled ones too unless `cancelled` is False."""
        sql, params = where(("ends_at > ?", ending_after) if ending_after else None,
                            ("id = ?", window) if window is not None else None,
                            ("cancelled_at IS NULL",) if not cancelled else None)
        rows = self._query("SELECT * FROM maintenance" + sql + " ORDER BY starts_at, id", params)
        for row in rows:
            row["components"] = json.loads(row["components"])
        return rows

    @guarded
    def cancel_maintenance(self, window: int, by: str, at: str) -> bool:
        """Cancel a window not cancelled yet; False when there is none such."""
        with self._write():
            cursor = self._run("UPDATE maintenance SET cancelled_at = ?, cancelled_by = ? WHERE id = ? "
                               "AND cancelled_at IS NULL", [at, by, window])
            return cursor.rowcount == 1


class SqlSubscribers:
    """Subscribers to the public page and the deliveries to them, for `SqlStore` (core.py)."""

    @guarded
    def add_subscriber(self, row: dict) -> dict:
        """Record a subscriber (kind, address, components, token, secret, created_at, confirmed_at);
        an address already subscribed (not unsubscribed) of the same kind is returned as it is."""
        with self._write():
            found = self._query("SELECT * FROM subscribers WHERE kind = ? AND address = ? AND unsubscribed_at IS NULL",
                                [row["kind"], row["address"]])
            if found:
                return _subscriber(found[0])
            self._run("INSERT INTO subscribers (kind, address, components, token, secret, created_at, confirmed_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [row["kind"], row["address"], json.dumps(list(row["components"])), row["token"],
                       row.get("secret"), row["created_at"], row.get("confirmed_at")])
            return _subscriber(self._query("SELECT * FROM subscribers WHERE token = ?", [row["token"]])[0])

    @guarded
    def subscribers(self, token: str | None = None, active: bool = False) -> list[dict]:
        """Subscribers by id: the one holding `token`, or those confirmed and not unsubscribed."""
        sql, params = where(("token = ?", token) if token else None,
                            ("confirmed_at IS NOT NULL AND unsubscribed_at IS NULL",) if active else None)
        return [_subscriber(r) for r in self._query("SELECT * FROM subscribers" + sql + " ORDER BY id", params)]

    @guarded
    def set_subscriber(self, subscriber: int, field: str, at: str) -> bool:
        """Mark a subscriber confirmed_at or unsubscribed_at `at` (once); False when it was already."""
        if field not in ("confirmed_at", "unsubscribed_at"):
            raise ValueError(field)
        with self._write():
            return self._run(f"UPDATE subscribers SET {field} = ? WHERE id = ? AND {field} IS NULL",
                             [at, subscriber]).rowcount == 1

    @guarded
    def deliveries(self, subscriber: int | None = None) -> list[dict]:
        sql, params = where(("subscriber = ?", subscriber) if subscriber is not None else None)
        return self._query("SELECT * FROM deliveries" + sql + " ORDER BY created_at, subscriber", params)

    @guarded
    def plan_deliveries(self, rows: list[tuple[int, str]], now: str) -> None:
        """Add (subscriber, message) deliveries not recorded yet, due now."""
        with self._write():
            for subscriber, message in rows:
                if not self._run("SELECT 1 FROM deliveries WHERE subscriber = ? AND message = ?",
                                 [subscriber, message]).fetchone():
                    self._run("INSERT INTO deliveries (subscriber, message, attempts, next_at, created_at) "
                              "VALUES (?, ?, 0, ?, ?)", [subscriber, message, now, now])

    @guarded
    def due_deliveries(self, now: str) -> list[dict]:
        return self._query("SELECT * FROM deliveries WHERE delivered_at IS NULL AND next_at IS NOT NULL "
                           "AND next_at <= ? ORDER BY next_at", [now])

    @guarded
    def settle_delivery(self, subscriber: int, message: str, attempts: int, delivered_at: str | None,
                        next_at: str | None, error: str | None) -> None:
        with self._write():
            self._run("UPDATE deliveries SET attempts = ?, delivered_at = ?, next_at = ?, error = ? "
                      "WHERE subscriber = ? AND message = ?", [attempts, delivered_at, next_at, error, subscriber,
                                                               message])


def _subscriber(row: dict) -> dict:
    return {**row, "components": json.loads(row["components"])}
