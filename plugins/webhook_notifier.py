"""Example plugin: post escalations to a webhook as generic JSON.

Configuration (environment; secrets are read at call time and never logged or returned):
  RUNBOOK_WEBHOOK_URL              where to post
  RUNBOOK_WEBHOOK_TOKEN            optional bearer token (secret)

Without RUNBOOK_WEBHOOK_URL the plugin stays quiet. PagerDuty is built in
(runbook.default_plugins.pagerduty, RUNBOOK_PAGERDUTY_ROUTING_KEY), with acknowledge, resolve
and retries.
"""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlsplit

from runbook.pluginapi import NotifyResult, hookimpl

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


def _where(url: str) -> str:
    """The part of a URL that is safe to show: webhook paths and queries often embed tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


@hookimpl
def notify(settings, notice):
    url = os.environ.get("RUNBOOK_WEBHOOK_URL")
    if not url:
        return None
    body, headers = generic_payload(notice), {}
    token = os.environ.get("RUNBOOK_WEBHOOK_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    channel = "webhook:json"
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
