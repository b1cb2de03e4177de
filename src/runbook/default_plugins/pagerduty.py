"""Built-in PagerDuty notifier: the incident's life as PagerDuty Events API v2 events.

A page triggers an alert, acknowledging the incident in runbook acknowledges every alert it
triggered, resolving resolves them. Active only when RUNBOOK_PAGERDUTY_ROUTING_KEY is set.

Environment (read at call time; routing keys are secrets and never logged or returned):
  RUNBOOK_PAGERDUTY_ROUTING_KEY   integration key of the PagerDuty service pages go to
  RUNBOOK_PAGERDUTY_URL           the Events API endpoint (default https://events.pagerduty.com/v2/enqueue)
  RUNBOOK_PUBLIC_URL              where runbook is reached: each alert links to its incident there

Each escalation level (and round) has its own dedup key, `runbook-INC-x-L2` (engine/pages.py),
so a higher level opens a new alert and pages someone new. A recipient whose roster `pager:`
handle is a 32-character integration key is paged on that service; the others on the routing
key's. HTTP 429, 5xx and network errors are reported as retryable (runbook tries again with
backoff); 400, 401 and 403 are permanent. A drill not declared live is never sent.
"""

from __future__ import annotations

import json
import logging
import os
import re
from urllib.parse import urlsplit

from runbook.pluginapi import NotifyResult, hookimpl
from runbook.text import one_line

ROUTING_KEY = "RUNBOOK_PAGERDUTY_ROUTING_KEY"
URL = "RUNBOOK_PAGERDUTY_URL"
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
CHANNEL = "pagerduty"
INTEGRATION_KEY = re.compile(r"[A-Za-z0-9]{32}")
DRILL = "drill: not sent (a drill reaches a real pager only when declared live)"
DONE = {"acknowledge": "acknowledged", "resolve": "resolved"}
log = logging.getLogger("runbook.plugins.pagerduty")


def routing_keys(recipients, default: str) -> list[str]:
    """Where a page goes: each recipient's own integration key (roster `pager:`), else the default."""
    keys: list[str] = []
    for person in recipients:
        key = person.pager if INTEGRATION_KEY.fullmatch(person.pager or "") else default
        if key not in keys:
            keys.append(key)
    return keys or [default]


def trigger(notice, routing_key: str, incident_url: str | None) -> dict:
    prefix = "[DRILL] " if notice.drill else ""
    event = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": notice.dedup_key,
        "payload": {
            "summary": f"{prefix}{notice.severity}: {notice.summary or notice.title}"[:1024],
            "severity": notice.pager_severity,
            "source": notice.service or "runbook",
            "custom_details": {"incident": notice.incident, "playbook": notice.playbook, "level": notice.level,
                               "round": notice.round + 1, "severity": notice.severity,
                               "recipients": [r.name for r in notice.recipients], "drill": notice.drill,
                               "urgency": notice.urgency},
        },
        "client": "runbook",
    }
    if notice.playbook:
        event["payload"]["component"] = notice.playbook
    if incident_url:
        event["client_url"] = incident_url
        event["links"] = [{"href": incident_url, "text": f"{notice.incident} in runbook"}]
    return event


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _reason(body: bytes) -> str:
    """PagerDuty's own words on a refusal ({"message": ..., "errors": [...]}), made safe to show."""
    try:
        data = json.loads(body)
        words = "; ".join([str(data.get("message", ""))] + [str(e) for e in data.get("errors", [])])
    except (ValueError, AttributeError, TypeError):
        return ""
    return one_line(words.strip("; "))[:200]


def post(url: str, event: dict, timeout: float) -> tuple[bool, bool, str]:
    """Send one event: (accepted, retryable, what happened)."""
    import urllib.error  # here, not at the top: every runbook command imports its plugins
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return True, False, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        reason = _reason(exc.read() or b"") if exc.code < 500 else ""
        return False, exc.code == 429 or exc.code >= 500, f"HTTP {exc.code}" + (f": {reason}" if reason else "")
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out: may pass
        return False, True, f"cannot reach {_where(url)}: {one_line(str(getattr(exc, 'reason', exc)))}"


def send(settings, events: list[dict], what: str) -> tuple[bool, bool, str]:
    """Post every event; (all accepted, worth retrying, a summary naming no key)."""
    url = os.environ.get(URL) or DEFAULT_URL
    timeout = max(1.0, settings.notify_timeout * 0.8 / len(events))  # within the host's limit for the call
    failed = []
    for event in events:
        ok, retryable, detail = post(url, event, timeout)
        if not ok:
            failed.append((retryable, detail))
    if not failed:
        log.info("%s: %d event(s) accepted by %s", what, len(events), _where(url))
        return True, False, what
    retryable = any(r for r, _ in failed)
    detail = failed[0][1] + (f", {len(failed)} of {len(events)} events" if len(events) > 1 else "")
    log.warning("%s refused by %s: %s", what, _where(url), detail)
    return False, retryable, detail


@hookimpl
def notify(settings, notice):
    default = os.environ.get(ROUTING_KEY)
    if not default:
        return None
    if notice.sandboxed:
        return NotifyResult(CHANNEL, False, DRILL, skipped=True)
    url = settings.incident_url(notice.incident)
    events = [trigger(notice, key, url) for key in routing_keys(notice.recipients, default)]
    ok, retryable, detail = send(settings, events, f"triggered {notice.dedup_key}")
    return NotifyResult(CHANNEL, ok, detail, retryable=retryable, dedup_key=notice.dedup_key)


@hookimpl
def notify_update(settings, update):
    default = os.environ.get(ROUTING_KEY)
    if not default:
        return None
    if update.sandboxed:
        return NotifyResult(CHANNEL, False, DRILL, skipped=True)
    pairs = []
    for alert in update.alerts:  # every service each alert was triggered on
        pairs += [(key, alert.dedup_key) for key in routing_keys(alert.recipients, default)
                  if (key, alert.dedup_key) not in pairs]
    if not pairs:
        return NotifyResult(CHANNEL, True, f"no alert to {update.action}")
    events = [{"routing_key": key, "event_action": update.action, "dedup_key": dedup} for key, dedup in pairs]
    keys = ", ".join(dict.fromkeys(dedup for _, dedup in pairs))
    ok, retryable, detail = send(settings, events, f"{DONE.get(update.action, update.action)} {keys}")
    return NotifyResult(CHANNEL, ok, detail, retryable=retryable)
