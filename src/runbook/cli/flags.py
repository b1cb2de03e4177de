"""`runbook flags ...`: read and flip degradation flags through the plugin host's flag backend."""

from __future__ import annotations

import json

import click

from runbook import flagd
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo
from runbook.errors import UsageError
from runbook.text import one_line

FILE_HELP = "Flag file in flagd JSON format. Env: RUNBOOK_FLAGS. Default: ./flags.json."
SANDBOX_HELP = "Use the drill sandbox file beside it (flags.sandbox.json, or RUNBOOK_SANDBOX_FLAGS)."


def _show(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _flag_options(function):
    function = json_option()(function)
    function = click.option("--sandbox", is_flag=True, help=SANDBOX_HELP)(function)
    function = click.option("--file", "flags_file", metavar="PATH", envvar="RUNBOOK_FLAGS", help=FILE_HELP)(function)
    return click.pass_obj(function)


def parse_value(text: str, kind: str):
    """A command-line value as the flag type asked for; `auto` reads true/false, numbers and JSON objects."""
    if kind == "string":
        return text
    if kind in ("auto", "bool") and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "bool":
        raise UsageError(f"'{text}' is not a boolean, expected true or false")
    if kind in ("auto", "number"):
        for convert in (int, float):
            try:
                return convert(text)
            except ValueError:
                pass
        if kind == "number":
            raise UsageError(f"'{text}' is not a number")
    if kind == "json" or (kind == "auto" and text.lstrip().startswith("{")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"'{text}' is not valid JSON: {exc.msg}") from None
        if not isinstance(value, (dict, bool, int, float, str)):
            raise UsageError("a flag value must be a boolean, string, number or JSON object")
        return value
    return text


def _change_line(change) -> str:
    before = _show(change.previous.value) if change.previous.exists else "(absent)"
    after = _show(change.current.value) if change.current.exists else "(absent)"
    return one_line(f"{change.name}: {before} → {after}") + f"  ({change.location or change.backend})"


@click.group("flags", short_help="Read and flip degradation flags (flagd flag file).")
def group():
    """Read and change feature flags through the flag backend (by default a flagd JSON file).

    \b
    Examples:
      runbook flags list
      runbook flags set rtc.video.enabled false     # degrade: video off
      runbook flags restore rtc.video.enabled       # back to the value before runbook changed it
      runbook flags set --sandbox rtc.video.enabled false   # drills never touch the real file
    """


@group.command("list")
@_flag_options
def flags_list(ctx, flags_file, sandbox, as_json):
    """List the flags in the flag file with their current value."""
    settings = ctx.settings(flags_file=flags_file)
    path = settings.flag_file(sandbox)
    data = flagd.read(path)
    rows = []
    for name in data.get("flags", {}):
        state = flagd.state(data, name)
        recorded = flagd.recorded_previous(data, name)
        rows.append({"name": name, "value": state.value, "variant": state.variant, "enabled": state.enabled,
                     "share": state.share, "changed_by_runbook": recorded is not None,
                     "previous": recorded.to_dict() if recorded else None})
    if as_json:
        dump({"file": path, "flags": rows})
        return
    if not rows:
        echo(f"no flags in {path}")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "  (changed by runbook; `runbook flags restore` undoes it)" if r["changed_by_runbook"] else ""
        state = "" if r["enabled"] else "  DISABLED"
        share = f" for {r['share']}% of users (staged)" if r["share"] is not None else ""
        echo(f"{one_line(r['name']):<{width}}  {_show(r['value'])} [{one_line(str(r['variant']))}]{share}{state}{mark}")


@group.command("get")
@click.argument("name")
@_flag_options
def flags_get(ctx, name, flags_file, sandbox, as_json):
    """Print the current value of flag NAME."""
    state, failures = ctx.host(flags_file=flags_file).get_flag(name, drill=sandbox)
    _warn(failures)
    if as_json:
        dump({"name": name, **state.to_dict()})
    elif not state.exists:
        echo(f"{name}: (absent)")
    else:
        share = f" for {state.share}% of users (staged)" if state.share is not None else ""
        echo(f"{name}: {_show(state.value)} [{state.variant}]{share}" + ("" if state.enabled else " DISABLED"))


@group.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--type", "kind", type=click.Choice(["auto", "bool", "string", "number", "json"]), default="auto",
              show_default=True, help="How to read VALUE; auto reads true/false, numbers and {JSON objects}.")
@_flag_options
def flags_set(ctx, name, value, kind, flags_file, sandbox, as_json):
    """Set flag NAME to VALUE (flips the flag's default variant; creates the flag if needed)."""
    change, failures = ctx.host(flags_file=flags_file).set_flag(name, parse_value(value, kind), drill=sandbox)
    _warn(failures)
    if as_json:
        dump(change.to_dict())
        return
    echo(_change_line(change))
    for note in change.notes:
        echo(f"  note: {note}")


@group.command("restore")
@click.argument("name")
@_flag_options
def flags_restore(ctx, name, flags_file, sandbox, as_json):
    """Put flag NAME back to its value before runbook first changed it (removes flags runbook created)."""
    change, failures = ctx.host(flags_file=flags_file).restore_flag(name, None, drill=sandbox)
    _warn(failures)
    if as_json:
        dump(change.to_dict())
    else:
        echo(_change_line(change))


def _warn(failures) -> None:
    for failure in failures:
        echo(f"runbook: warning: {failure.format()}", err=True)
