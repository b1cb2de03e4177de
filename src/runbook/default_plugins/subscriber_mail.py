"""Built-in delivery to the public page's subscribers (`notify_subscriber`): email through the
SMTP server of the settings (RUNBOOK_SMTP, RUNBOOK_MAIL_FROM), and webhooks posted as JSON with
an HMAC-SHA256 signature of the body. A failure that may pass (the server down or busy, a 5xx,
a timeout) is retryable; runbook tries again with backoff (serve/subscriptions.py)."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

from runbook.pluginapi import NotifyResult, hookimpl

TIMEOUT = 10  # seconds for one SMTP conversation or webhook post


@hookimpl
def notify_subscriber(settings, message):
    if message.kind == "email":
        return _email(settings, message)
    if message.kind == "webhook":
        return _webhook(message)
    return None


def _email(settings, message) -> NotifyResult:
    if not settings.smtp or not settings.mail_from:
        return NotifyResult("email", False, "no mail server: set RUNBOOK_SMTP and RUNBOOK_MAIL_FROM")
    host, _, port = settings.smtp.rpartition(":")
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = settings.mail_from, message.address, message.subject
    if message.unsubscribe:
        email["List-Unsubscribe"] = f"<{message.unsubscribe}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(message.text)
    try:
        with smtplib.SMTP(host.strip("[]"), int(port), timeout=TIMEOUT) as smtp:
            smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        return NotifyResult("email", False, f"the mail server refused {message.address}: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return NotifyResult("email", False, f"{type(exc).__name__}: {exc}", retryable=True)
    return NotifyResult("email", True, f"sent to {message.address}")


def _webhook(message) -> NotifyResult:
    signature = hmac.new(message.secret.encode(), message.body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(message.address, data=message.body, method="POST", headers={
        "Content-Type": "application/json", "X-Runbook-Signature": f"sha256={signature}",
        "User-Agent": "runbook-status"})
    try:
        # the address an operator gave (`runbook subscribers webhook`), never one from the public
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            reply.read()
    except urllib.error.HTTPError as exc:
        return NotifyResult("webhook", False, f"HTTP {exc.code}", retryable=exc.code == 429 or exc.code >= 500)
    except OSError as exc:
        return NotifyResult("webhook", False, f"{type(exc).__name__}: {exc}", retryable=True)
    return NotifyResult("webhook", True, f"posted to {message.address}")
