"""A well-behaved plugin: records events it observes and adds a CLI command."""

import click

from runbook.pluginapi import hookimpl

SEEN = []


@hookimpl
def event_appended(settings, event):
    SEEN.append(event)


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("name", default="responder")
    def hello(name):
        """Say hello (added by the recorder test plugin)."""
        click.echo(f"hello, {name}")
