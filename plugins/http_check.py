"""Example plugin: the `http-check` action, for wait and verify steps.

    - kind: wait
      title: Wait until the region's health endpoint is green
      uses: http-check
      with: {url: "https://rtc-admin.internal/regions/eu-west-1/health", expect_status: 200, contains: '"ok"'}
      every: 30s
      timeout: 10m

Parameters: url (required), expect_status (a number or a list, default 200), contains (text the
body must contain), method (default GET).
"""

from __future__ import annotations

import time

from runbook.pluginapi import ActionResult, hookimpl

ACTION = "http-check"


@hookimpl
def register_actions(register):
    register(ACTION, "request a URL; succeed when the status (and optionally the body text) is as expected")


@hookimpl
def run_action(settings, request):
    if request.action != ACTION:
        return None
    params = request.params
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return ActionResult(False, "http-check needs with: {url: http(s)://...}", handler=ACTION)
    expected = params.get("expect_status", 200)
    expected = {int(s) for s in expected} if isinstance(expected, list) else {int(expected)}
    method = str(params.get("method", "GET")).upper()
    import urllib.error  # here, not at the top: every runbook command imports its plugins
    import urllib.request

    start = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=request.timeout) as response:
            status, body = response.status, response.read(64 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(64 * 1024).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return ActionResult(False, f"{method} {url} failed: {getattr(exc, 'reason', exc)}", None, "",
                            time.monotonic() - start, ACTION)
    elapsed = time.monotonic() - start
    problems = []
    if status not in expected:
        problems.append(f"status {status}, expected {' or '.join(map(str, sorted(expected)))}")
    needle = params.get("contains")
    if needle is not None and str(needle) not in body:
        problems.append(f"body does not contain {str(needle)!r}")
    summary = f"{method} {url} → {status} in {elapsed * 1000:.0f} ms"
    if problems:
        summary += ": " + "; ".join(problems)
    return ActionResult(not problems, summary, status, body[:2000], elapsed, ACTION)
