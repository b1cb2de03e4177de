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
@click.option("--public", is_flag=True,
              help="Also serve the public status page without a token: /status, /api/v2/*.json (Statuspage's "
                   "shapes), /history.atom and /history.rss, from the catalog's StatusPage document.")
@click.option("--status-page", "status_page_id", default=None, metavar="ID",
              help="With --public: the StatusPage document to serve (needed when the catalog has several).")
@click.option("--max-body", default="1MiB", show_default=True, help="Largest request body taken (bytes, KiB, MiB).")
@click.option("--tick", "tick_every", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="Seconds between timer passes (escalations, reminders, page retries) over open incidents.")
@click.option("--alert-retention", default="30d", show_default=True, metavar="DURATION|off",
              help="Forget alerts last heard of longer ago than this (checked hourly); off keeps them.")
@click.option("--request-timeout", default=10.0, show_default=True, type=click.FloatRange(0.5, 300),
              help="Seconds a client has to send a whole request (headers and body) after connecting or "
                   "after its previous answer; then the connection is closed (408 when a body was due).")
@click.option("--lease", default=10.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds this server's lease on the work it owns (pending alerts, flag changes in flight, the "
                   "timers of the incidents it ticks) lasts unrenewed; renewed every third of it. Another server "
                   "takes the work over when it ends.")
@click.option("--max-viewers", default=1000, show_default=True, type=click.IntRange(1, None),
              help="Live status-page streams at once (each a connection); 503 beyond.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="How much to log to stderr.")
@click.pass_obj
def serve(ctx: Context, host, port, token_file, view_token_file, public, status_page_id, max_body, tick_every,
          alert_retention, request_timeout, lease, max_viewers, log_level):
    """Run runbook as a long-running server until interrupted (Ctrl-C or SIGTERM).

    \b
    POST /alertmanager  Alertmanager webhook (payload version 4): each firing
                        alert opens one incident on the playbook its labels
                        match (severity and parameters from the labels);
                        repeats add nothing; resolved alerts are recorded;
                        alerts no playbook matches are kept (runbook alerts),
                        and so are malformed ones (rejected, with why)
    GET  /api/alerts    the alerts received, as JSON, a page at a time
                        (?limit=N; the next page in the Link header)
    GET  /              the status page (read-only, live): open incidents,
                        recently resolved ones; /incidents/ID for one. Needs
                        the viewer token (RUNBOOK_VIEW_TOKEN or
                        --view-token-file): give people the link
                        http://HOST:PORT/?token=VIEWER-TOKEN once
    GET  /healthz       "ok" while the incident database could take an alert
    POST /pagerduty     PagerDuty V3 webhooks: an acknowledgement made in
                        PagerDuty acknowledges the incident (as the roster
                        person with that pagerduty: user id); resolves and
                        reassignments are recorded. Signed with
                        RUNBOOK_PAGERDUTY_WEBHOOK_SECRET; off without it.
    GET  /status        with --public, no token: the public status page
                        (components, updates posted for customers, 90 days
                        of history); /api/v2/summary.json and the other
                        Statuspage-shaped JSON; /history.atom, /history.rss;
                        POST /subscribe (email updates, with RUNBOOK_SMTP
                        and RUNBOOK_MAIL_FROM)
    It also fires timers (escalations, reminders, the checks and stages of
    staged degradations) of open incidents.

    \b
    Several servers may share one database (on one host or several): each
    holds a lease on the work it owns, renewed while it runs; when a server
    dies, another takes its pending alerts, flag changes in flight and its
    incidents' timers over when the lease ends (--lease; on PostgreSQL on
    the database's clock). One server at a time fires an incident's timers.
    The host recorded as owner is RUNBOOK_HOSTNAME, else the machine's host
    name.

    \b
    Database: runbook --db FILE|URL serve, or RUNBOOK_DB (a SQLite file,
    or postgresql://... for a team database that several servers and
    responders share).
    Metrics for checks: RUNBOOK_PROMETHEUS_URL. Pages: RUNBOOK_PAGERDUTY_*.
    Chat on Matrix (announcements, a thread per incident, !ack, !note,
    !approve, !degrade, !resolve, !status, !help): RUNBOOK_MATRIX_HOMESERVER,
    RUNBOOK_MATRIX_USER, RUNBOOK_MATRIX_TOKEN_FILE (mode 600),
    RUNBOOK_MATRIX_ROOM.

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

    from runbook.serve import ServeError, deadlines, read_token
    from runbook.serve.app import ServeConfig, Server, build_app

    token = read_token("RUNBOOK_SERVE_TOKEN", token_file, "intake token")
    view_token = None
    if view_token_file or os.environ.get("RUNBOOK_VIEW_TOKEN", "").strip():
        view_token = read_token("RUNBOOK_VIEW_TOKEN", view_token_file, "viewer token")
        if view_token == token:
            raise UsageError("the viewer token is the intake token; give the status page a token of its own "
                             "(whoever may look must not be able to post alerts)")
    pd_secret = os.environ.get("RUNBOOK_PAGERDUTY_WEBHOOK_SECRET", "").strip() or None
    if pd_secret is not None and len(pd_secret) < 16:
        raise UsageError("RUNBOOK_PAGERDUTY_WEBHOOK_SECRET is under 16 characters: give it the secret PagerDuty "
                         "made for the webhook subscription")
    from runbook.default_plugins import matrix

    chat_room = matrix.check_configuration()
    limit = _size(max_body)
    retention = _retention(alert_retention)
    service = ctx.engine_service(catalog=True, lanes=True)  # the catalog and the database checked before listening
    errors = service.read(lambda engine: engine.catalog.errors)
    if errors:
        echo(f"runbook serve: warning: the catalog has {len(errors)} error(s); invalid documents "
             "are left out and match no alert (run `runbook validate`)", err=True)
    page_model = service.read(lambda engine: _status_page(engine.catalog, status_page_id)) if public else None
    if status_page_id and not public:
        raise UsageError("--status-page goes with --public")
    email = public and _mail_settings(ctx.settings())
    sock = _listen(host, port, ServeError)
    where = sock.getsockname()
    logging.basicConfig(level=log_level.upper(), format="runbook serve: %(message)s")
    logging.getLogger("asyncio").addFilter(deadlines.AcceptFailures())
    page = f"status page http://{_hostport(where)}/" if view_token else "status page off (no RUNBOOK_VIEW_TOKEN)"
    if chat_room:
        page += f"; chat in {one_line(chat_room)}"
    if page_model is not None:
        page += f"; public page http://{_hostport(where)}/status"
    echo(f"runbook serve: listening on http://{_hostport(where)} (POST /alertmanager; {page}); Ctrl-C stops",
         err=True)
    app = build_app(service, ServeConfig(token, limit, tick_every, tuple(ctx.catalog_paths()), view_token,
                                         pagerduty_secret=pd_secret, chat_every=0.25 if chat_room else 0.0,
                                         alert_retention=retention, lease=lease, public=page_model, email=email,
                                         max_viewers=max_viewers))
    server = Server(uvicorn.Config(app, log_level=log_level, access_log=log_level == "debug", lifespan="on",
                                   timeout_graceful_shutdown=5, http=deadlines.protocol(request_timeout)), service)
    keep_startup_out_of_collections()
    server.run(sockets=[sock])


def keep_startup_out_of_collections() -> int:
    """Move what start-up made (modules, the catalog, the schemas: about 125,000 objects) out of
    the garbage collector's full collections, which otherwise walk it all again each time, holding
    the GIL for the whole walk: 120 ms at the first, where intake answers in 1.5 ms. What serve
    makes later is collected as usual. The number of objects moved (gc.freeze)."""
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _retention(text: str) -> float:
    from runbook.catalog.durations import parse_duration

    if text.strip().lower() == "off":
        return 0
    try:
        seconds = parse_duration(text.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{exc}, or off", param_hint="--alert-retention") from None
    if seconds <= 0:
        raise click.BadParameter("expected a duration longer than 0s (like 30d), or off",
                                 param_hint="--alert-retention")
    return seconds


def _mail_settings(settings) -> bool:
    """Whether subscribers' email can be sent (RUNBOOK_SMTP and RUNBOOK_MAIL_FROM), refusing a
    half or malformed setting."""
    if not settings.smtp:
        return False
    host, _, port = settings.smtp.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"RUNBOOK_SMTP={settings.smtp!r}: expected HOST:PORT, like localhost:25")
    if not settings.mail_from or "@" not in settings.mail_from:
        raise UsageError("RUNBOOK_SMTP needs RUNBOOK_MAIL_FROM=ADDRESS: the From of subscribers' email")
    return True


def _status_page(catalog, wanted: str | None):
    """The StatusPage model --public serves: the one named, or the catalog's only one."""
    pages = catalog.models("StatusPage")
    if wanted:
        if wanted not in pages:
            known = f" (it has {', '.join(sorted(pages))})" if pages else "; add one (runbook schema StatusPage)"
            raise UsageError(f"no StatusPage {wanted!r} in the catalog{known}")
        return pages[wanted]
    if not pages:
        raise UsageError("--public needs a StatusPage document in the catalog (kind: StatusPage; see "
                         "`runbook schema StatusPage` and playbooks/status-page.yaml)")
    if len(pages) > 1:
        raise UsageError(f"the catalog has {len(pages)} StatusPage documents ({', '.join(sorted(pages))}); "
                         "choose one with --status-page ID")
    return next(iter(pages.values()))


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


@click.group("alerts", invoke_without_command=True,
             short_help="List the alerts runbook serve received (unmatched first to look at); prune old ones.")
@click.option("--unmatched", is_flag=True,
              help="Only alerts no playbook took (unmatched, failed to open, or rejected as malformed).")
@click.option("--incident", "incident_id", default=None, help="Only the alerts linked to this incident.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@json_option()
@click.pass_obj
@click.pass_context
def alerts(click_ctx, ctx: Context, unmatched, incident_id, limit, as_json):
    """List the alerts `runbook serve` received, the latest first: each alert's name, labels,
    status (firing, resolved) and what became of it: opened INC-…, attached to an open incident,
    unmatched (no playbook symptom matches its labels), failed (the playbook could not open from
    these labels, with why), resolved (runbook heard of it only once resolved), rejected (malformed:
    where and why; fix the sender).

    \b
    Examples:
      runbook alerts --unmatched
      runbook alerts --incident INC-854ABC --json
      runbook alerts prune --older-than 30d --dry-run
    """
    from runbook.read_models import alert_rows

    if click_ctx.invoked_subcommand is not None:
        return
    service = ctx.engine_service()
    if incident_id:
        incident_id = service.query("resolve_id", incident_id)
    rows = service.read(alert_rows, incident=incident_id, limit=None if unmatched else limit)
    if unmatched:
        rows = [r for r in rows if r["outcome"] in ("unmatched", "failed", "rejected")][:limit]
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


@alerts.command("prune", short_help="Forget alerts last heard of long ago.")
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Forget alerts last heard of more than this long ago (30d, 12h, 1w).")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@json_option(help='Print {"pruned": N, "older_than": ..., "before": ..., "dry_run": ...}.')
@click.pass_obj
def prune(ctx: Context, older_than, dry_run, as_json):
    """Forget the alerts `runbook serve` last heard of more than DURATION ago. An alert still
    pending (its incident is being opened) or linked to an incident still open is kept whatever
    its age: its resolved delivery must find it. `runbook serve` does the same once an hour with
    --alert-retention (30d by default).

    Choose DURATION longer than Alertmanager's repeat_interval: a firing alert is heard of again
    at every repeat, but one forgotten and then repeated is taken as new (a new incident when no
    open incident has it).

    On PostgreSQL, forgetting needs DELETE on the alerts table (the database owner's role).

    \b
    Examples:
      runbook alerts prune --older-than 30d --dry-run
      runbook alerts prune --older-than 90d --json
    """
    from runbook.catalog.durations import parse_duration

    try:
        seconds = parse_duration(older_than.strip())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    if seconds <= 0:
        raise click.BadParameter("expected a duration longer than 0s, like 30d", param_hint="--older-than")
    service = ctx.engine_service()
    count, before = service.command("prune_alerts", seconds, dry_run=dry_run)
    if as_json:
        dump({"pruned": count, "older_than": older_than.strip(), "before": before, "dry_run": dry_run})
        return
    verb = "would forget" if dry_run else "forgot"
    echo(f"{verb} {count} alert(s) last heard of over {older_than.strip()} ago")
