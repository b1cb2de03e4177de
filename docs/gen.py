"""Generators for the reference pages, run by cog (`cog -r docs/reference/*.md`).

The test command runs `cog --check` on the same files, so a command, option or hook that
changes without its page failing the suite.
"""

from __future__ import annotations

import inspect

import click


def _usage(cmd: click.Command, path: str) -> str:
    ctx = click.Context(cmd, info_name=path)
    pieces = cmd.collect_usage_pieces(ctx)
    return " ".join([path, *pieces])


def _walk(cmd: click.Command, path: str):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(click.Context(cmd))):
            sub = cmd.get_command(click.Context(cmd), name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, f"{path} {name}")


def commands() -> list[str]:
    """Every command path of the CLI, `runbook` first."""
    from runbook.cli import cli

    return [path for path, _ in _walk(cli, "runbook")]


def cli_reference() -> str:
    """The CLI reference: each command's usage, help and options, from click itself."""
    from runbook.cli import cli

    out: list[str] = []
    for path, cmd in _walk(cli, "runbook"):
        depth = min(path.count(" ") + 2, 4)
        out.append(f"{'#' * depth} `{path}`\n")
        text = inspect.cleandoc(cmd.help or "").split("\f")[0].replace("\b\n", "").strip()
        out.append(f"```text\nUsage: {_usage(cmd, path)}\n\n{text}\n```\n".replace("\n\n\n```", "\n```"))
        rows = []
        for param in cmd.get_params(click.Context(cmd)):
            record = param.get_help_record(click.Context(cmd))
            if record is None or isinstance(param, click.Argument):
                continue
            names, text = (part.replace("|", "\\|").replace("\n", " ") for part in record)
            rows.append(f"| `{names}` | {text} |")
        if rows:
            out.append("| option | meaning |\n|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(out)


def hooks_reference() -> str:
    """Every plugin hook: its signature, whether the first result wins, and its docstring."""
    from runbook import hookspecs

    out: list[str] = []
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        opts = getattr(fn, "runbook_spec", None)
        if opts is None:
            continue
        sig = str(inspect.signature(fn))
        first = " (first result wins)" if opts.get("firstresult") else ""
        out.append(f"### `{name}`{first}\n")
        out.append(f"```python\ndef {name}{sig}: ...\n```\n")
        out.append(inspect.cleandoc(fn.__doc__ or "") + "\n")
    return "\n".join(out)
