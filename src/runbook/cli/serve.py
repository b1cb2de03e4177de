"""`runbook serve` (the alert intake server) and `runbook alerts` (what it received)."""

from __future__ import annotations

import errno
import os
import socket

import click

from runbook.cli.context import Context
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo
from runbook.errors import UsageError
from runbook.text import one_line


def _size(text: str) -> int:
    units = {"k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2}
    raw = text.strip().lower()
    for unit, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if raw.endswith(unit) and raw[: -len(unit)].strip().isdigit():
            return int(raw[: -len(unit)]) * factor
    if raw.isdigit():
        return int(raw)
    raise click.BadParameter(f"{text!r} is not a size like 1048576, 512KiB or 1MiB")


@click.command(short_help="Run the server: Alertmanager alerts in (POST /alertmanager).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface: put TLS in front).")
@click.option("--port", default=9393, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the intake bearer token (mode 600). Default: $RUNBOOK_SERVE_TOKEN.")
@click.option("--view-token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the status page's viewer token (mode 600). Default: $RUNBOOK_VIEW_TOKEN; "
                   "neither: the status page is off.")
@click.option("--max-body", default="1MiB", show_default=True, help="Largest request body taken (bytes, KiB, MiB).")
@click.option("--tick", "tick_every", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="Seconds between timer passes (escalations, reminders, page retries) over open incidents.")
@click.option("--max-viewers", default=1000, show_default=True, type=click.IntRange(1, None),
              help="Live status-page streams at once (each a connection); 503 beyond.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="How much to log to stderr.")
@click.pass_obj
def serve(ctx: Context, host, port, token_file, view_token_file, max_body, tick_every, max_viewers, log_level):
    """Run runbook as a long-running server until interrupted (Ctrl-C or SIGTERM).

    \b
    POST /alertmanager  Alertmanager webhook (payload version 4): each firing
                        alert opens one incident on the playbook its labels
                        match (severity and parameters from the labels);
                        repeats add nothing; resolved alerts are recorded;
                        alerts no playbook matches are kept (runbook alerts).
    GET  /api/alerts    the alerts received, as JSON
    GET  /              the status page (read-only, live): open incidents,
                        recently resolved ones; /incidents/ID for one. Needs
                        the viewer token (RUNBOOK_VIEW_TOKEN or
                        --view-token-file): give people the link
                        http://HOST:PORT/?token=VIEWER-TOKEN once
    GET  /healthz       "ok" while the incident database answers
    It also fires timers (escalations, reminders, the checks and stages of
    staged degradations) of open incidents.

    \b
    Database: runbook --db FILE|URL serve, or RUNBOOK_DB (a SQLite file,
    or postgresql://... for a team database that several servers and
    responders share).
    Metrics for checks: RUNBOOK_PROMETHEUS_URL. Pages: RUNBOOK_PAGERDUTY_*.

    \b
    The intake needs its bearer token: RUNBOOK_SERVE_TOKEN or --token-file.
    Alertmanager sends it with:
      receivers:
        - name: runbook
          webhook_configs:
            - url: http://127.0.0.1:9393/alertmanager
              http_config:
                authorization: {credentials_file: /etc/runbook/serve-token}

    \b
    Exit codes: 2 no or weak token, bad option; 7 database unusable;
    8 cannot listen on HOST:PORT (in use, not allowed).
    """
    import logging

    import uvicorn

    from runbook.serve import ServeError, read_token
    from runbook.serve.app import ServeConfig, Server, build_app

    token = read_token("RUNBOOK_SERVE_TOKEN", token_file, "intake token")
    view_token = None
    if view_token_file or os.environ.get("RUNBOOK_VIEW_TOKEN", "").strip():
        view_token = read_token("RUNBOOK_VIEW_TOKEN", view_token_file, "viewer token")
        if view_token == token:
            raise UsageError("the viewer token is the intake token; give the status page a token of its own "
                             "(whoever may look must not be able to post alerts)")
    limit = _size(max_body)
    service = ctx.engine_service(catalog=True, lanes=True)  # the catalog and the database checked before listening
    errors = service.read(lambda engine: engine.catalog.errors)
    if errors:
        echo(f"runbook serve: warning: the catalog has {len(errors)} error(s); invalid documents "
             "are left out and match no alert (run `runbook validate`)", err=True)
    sock = _listen(host, port, ServeError)
    where = sock.getsockname()
    logging.basicConfig(level=log_level.upper(), format="runbook serve: %(message)s")
    page = f"status page http://{_hostport(where)}/" if view_token else "status page off (no RUNBOOK_VIEW_TOKEN)"
    echo(f"runbook serve: listening on http://{_hostport(where)} (POST /alertmanager; {page}); Ctrl-C stops",
         err=True)
    app = build_app(service, ServeConfig(token, limit, tick_every, tuple(ctx.catalog_paths()), view_token, max_viewers))
    server = Server(uvicorn.Config(app, log_level=log_level, access_log=log_level == "debug", lifespan="on",
                                   timeout_graceful_shutdown=5), service)
    server.run(sockets=[sock])


def _listen(host: str, port: int, error) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise error(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(512)
    except OSError as exc:
        sock.close()
        why = "the address is in use (another runbook serve?)" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise error(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def _hostport(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command("alerts", short_help="List the alerts runbook serve received (unmatched first to look at).")
@click.option("--unmatched", is_flag=True, help="Only alerts no playbook took (unmatched or failed to open).")
@click.option("--incident", "incident_id", default=None, help="Only the alerts linked to this incident.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@json_option()
@click.pass_obj
def alerts(ctx: Context, unmatched, incident_id, limit, as_json):
    """List the alerts `runbook serve` received, the latest first: each alert's name, labels,
    status (firing, resolved) and what became of it: opened INC-…, attached to an open incident,
    unmatched (no playbook symptom matches its labels), failed (the playbook could not open from
    these labels, with why), resolved (runbook heard of it only once resolved).

    \b
    Examples:
      runbook alerts --unmatched
      runbook alerts --incident INC-854ABC --json
    """
    from runbook.read_models import alert_rows

    service = ctx.engine_service()
    if incident_id:
        incident_id = service.query("resolve_id", incident_id)
    rows = service.read(alert_rows, incident=incident_id, limit=None if unmatched else limit)
    if unmatched:
        rows = [r for r in rows if r["outcome"] in ("unmatched", "failed")][:limit]
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no alerts" + (" without a playbook" if unmatched else "") + " received (runbook serve takes them)")
        return
    for row in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(row["labels"].items()) if k != "alertname")
        became = row["outcome"] + (f" {row['incident']}" if row["incident"] else "")
        echo(f"{row['last_seen'][:19]}  {row['status']:<8} {one_line(row['alertname'] or row['fingerprint'])}"
             f"  {became}" + (f"  ({row['playbook']})" if row["playbook"] and row["incident"] else "")
             + f"  fingerprint {one_line(row['fingerprint'])}")
        if labels:
            echo(f"    {one_line(labels)}")
        if row["reason"]:
            echo(f"    {one_line(row['reason'])}")
