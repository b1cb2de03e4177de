"""Example plugin: post escalations to a webhook, as generic JSON or as a PagerDuty Events API v2 event.

Configuration (environment; secrets are read at call time and never logged or returned):
  RUNBOOK_WEBHOOK_URL              where to post (for PagerDuty defaults to the Events API v2 endpoint)
  RUNBOOK_WEBHOOK_FORMAT           json (default) or pagerduty
  RUNBOOK_WEBHOOK_TOKEN            optional bearer token for the generic JSON format (secret)
  RUNBOOK_PAGERDUTY_ROUTING_KEY    integration key of the PagerDuty service (secret)

Without RUNBOOK_WEBHOOK_URL (or, for PagerDuty, a routing key) the plugin stays quiet.
"""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlsplit

from runbook.pluginapi import NotifyResult, hookimpl

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"SEV1": "critical", "SEV2": "error", "SEV3": "warning", "SEV4": "info"}
log = logging.getLogger("runbook.plugins.webhook_notifier")


def generic_payload(notice) -> dict:
    return {
        "type": "runbook.escalation",
        "incident": notice.incident,
        "title": notice.title,
        "severity": notice.severity,
        "level": notice.level,
        "playbook": notice.playbook,
        "service": notice.service,
        "summary": notice.summary,
        "drill": notice.drill,
        "recipients": [{"id": r.id, "name": r.name, "email": r.email, "chat": r.chat, "pager": r.pager,
                        "via": r.via} for r in notice.recipients],
    }


def pagerduty_payload(notice, routing_key: str) -> dict:
    prefix = "[DRILL] " if notice.drill else ""
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": notice.dedup_key or f"runbook-{notice.incident}",
        "payload": {
            "summary": f"{prefix}{notice.severity} {notice.title} (escalation level {notice.level})"[:1024],
            "severity": PAGERDUTY_SEVERITY.get(notice.severity, "error"),
            "source": notice.service or "runbook",
            "custom_details": {"incident": notice.incident, "playbook": notice.playbook, "level": notice.level,
                               "recipients": [r.name for r in notice.recipients], "drill": notice.drill},
        },
    }


def _where(url: str) -> str:
    """The part of a URL that is safe to show: webhook paths and queries often embed tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


@hookimpl
def notify(settings, notice):
    fmt = os.environ.get("RUNBOOK_WEBHOOK_FORMAT", "json").lower()
    if fmt == "pagerduty":
        key = os.environ.get("RUNBOOK_PAGERDUTY_ROUTING_KEY")
        if not key:
            return None
        url = os.environ.get("RUNBOOK_WEBHOOK_URL") or PAGERDUTY_URL
        body, headers = pagerduty_payload(notice, key), {}
    elif fmt == "json":
        url = os.environ.get("RUNBOOK_WEBHOOK_URL")
        if not url:
            return None
        body, headers = generic_payload(notice), {}
        token = os.environ.get("RUNBOOK_WEBHOOK_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
    else:
        return NotifyResult("webhook", False, f"RUNBOOK_WEBHOOK_FORMAT={fmt!r} is not json or pagerduty")
    channel = f"webhook:{fmt}"
    import urllib.error  # here, not at the top: every runbook command imports its plugins
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=settings.notify_timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        log.warning("escalation post to %s refused: HTTP %s", _where(url), exc.code)
        return NotifyResult(channel, False, f"{_where(url)} answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        log.warning("escalation post to %s failed: %s", _where(url), reason)
        return NotifyResult(channel, False, f"cannot reach {_where(url)}: {reason}")
    log.info("escalation level %s of %s posted to %s", notice.level, notice.incident, _where(url))
    return NotifyResult(channel, True, f"posted level {notice.level} to {_where(url)} (HTTP {status})")
