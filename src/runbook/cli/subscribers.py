"""`runbook subscribers list|webhook|remove`: who gets the public page's updates (engine/subscriptions.py)."""

from __future__ import annotations

import click

from runbook.cli.context import Context
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo
from runbook.text import one_line


@click.group("subscribers", short_help="Who gets the public page's updates: email subscribers, webhooks.")
def group():
    """Subscribers to the public status page (`runbook serve --public`). People subscribe by
    email on the page (double opt-in); webhooks are added here, each with a secret that signs
    its deliveries (X-Runbook-Signature: sha256=HMAC of the body)."""


@group.command("list")
@json_option()
@click.pass_obj
def list_subscribers(ctx: Context, as_json):
    """Every subscriber: kind, address, components, confirmed or not, unsubscribed or not."""
    from runbook.engine import subscriptions

    rows = ctx.engine_service().read(subscriptions.listing)
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no subscribers")
        return
    for s in rows:
        state = ("unsubscribed" if s["unsubscribed_at"] else "active" if s["confirmed_at"]
                 else "waiting for confirmation")
        echo(f"{s['id']:>4}  {s['kind']:<7} {one_line(s['address'])}  "
             f"[{', '.join(s['components']) or 'every component'}]  {state}")


@group.command("webhook")
@click.argument("url")
@click.option("--component", "components", multiple=True, metavar="ID",
              help="Only updates about this component (repeat; default every component).")
@click.pass_obj
def webhook(ctx: Context, url, components):
    """Post each public update to URL as JSON (the page, the incident in Statuspage's shape),
    signed with a secret printed once, here."""
    from runbook.engine import subscriptions

    row = ctx.engine_service(catalog=True).commands.call(subscriptions.add_webhook, url, components)
    echo(f"webhook subscriber {row['id']}: {one_line(row['address'])}")
    echo(f"secret (verify X-Runbook-Signature: sha256=HMAC-SHA256(secret, body)): {row['secret']}")


@group.command("remove")
@click.argument("subscriber", type=int)
@click.pass_obj
def remove(ctx: Context, subscriber):
    """Stop sending to SUBSCRIBER (its number from `runbook subscribers list`)."""
    from runbook.engine import subscriptions

    row = ctx.engine_service().commands.call(subscriptions.remove, subscriber)
    echo(f"subscriber {row['id']} removed: {one_line(row['address'])}")
