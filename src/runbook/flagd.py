"""Flags in a file in flagd's JSON format (OpenFeature's standard), changed safely.

    {"$schema": "https://flagd.dev/schema/v0/flags.json",
     "flags": {"rtc.video.enabled": {"state": "ENABLED", "variants": {"on": true, "off": false},
                                     "defaultVariant": "on"}}}

Setting a flag flips its `defaultVariant` (adding a variant for a new value, creating the flag
if needed). Every change is a locked read-modify-write and an atomic replace (temp file,
fsync, rename, fsync of the directory), so a service polling the file with the flagd
provider never sees half a file, and two writers never lose each other's flags. Everything
else in the file (other flags, targeting, metadata, $evaluators) is kept as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from runbook.errors import RunbookError
from runbook.pluginapi import FlagState

SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
RESTORE_KEY = "runbook.restore"
SHARE_KEY = "runbook.share"  # on a flag runbook staged: the share its fractional rule gives the staged value
_TYPES = {bool: "boolean", str: "string", int: "number", float: "number", dict: "object"}


class FlagFileError(RunbookError):
    """The flag file cannot be read, is not valid flagd JSON, or a value does not fit a flag."""

    exit_code = 1


def _type(value) -> str | None:
    return _TYPES.get(type(value))


def empty() -> dict:
    return {"$schema": SCHEMA_URL, "flags": {}}


def read(path: str) -> dict:
    """The parsed and checked flag file; an empty flag set when the file does not exist yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlagFileError(f"{path}: cannot read flag file: {exc}") from None
    if not text.strip():
        return empty()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    problems = check(data)
    if problems:
        raise FlagFileError(f"{path}: not a valid flagd flag file:\n" + "\n".join(f"  {p}" for p in problems))
    return data


def check(data) -> list[str]:
    """flagd's schema rules, as readable problems (empty list when the file is valid)."""
    if not isinstance(data, dict):
        return ["the top level must be a JSON object with a 'flags' object"]
    flags = data.get("flags")
    if not isinstance(flags, dict):
        return ["'flags' must be an object mapping flag keys to flag definitions"]
    problems = []
    for key in ("$evaluators", "metadata"):
        if key in data and not isinstance(data[key], dict):
            problems.append(f"'{key}' must be an object")
    for name, flag in flags.items():
        where = f"flags[{name!r}]"
        if not isinstance(flag, dict):
            problems.append(f"{where}: must be an object with state, variants and defaultVariant")
            continue
        if flag.get("state") not in ("ENABLED", "DISABLED"):
            problems.append(f"{where}.state: must be \"ENABLED\" or \"DISABLED\", got {json.dumps(flag.get('state'))}")
        variants = flag.get("variants")
        if not isinstance(variants, dict) or not variants:
            problems.append(f"{where}.variants: must be a non-empty object of variant name to value")
            continue
        kinds = {_type(v) for v in variants.values()}
        if None in kinds:
            problems.append(f"{where}.variants: values must be booleans, strings, numbers or objects")
        elif len(kinds) > 1:
            problems.append(f"{where}.variants: all variants must have one type, found {', '.join(sorted(kinds))}")
        default = flag.get("defaultVariant")
        if default is not None and default not in variants:
            problems.append(f"{where}.defaultVariant: {json.dumps(default)} is not one of its variants "
                            f"({', '.join(variants)})")
        if "targeting" in flag and not isinstance(flag["targeting"], dict):
            problems.append(f"{where}.targeting: must be an object (a JsonLogic rule)")
        metadata = flag.get("metadata", {})
        if not isinstance(metadata, dict) or any(_type(v) not in ("boolean", "string", "number")
                                                 for v in metadata.values()):
            problems.append(f"{where}.metadata: must be an object of strings, numbers or booleans")
    return problems


def state(data: dict, name: str) -> FlagState:
    """The flag as a context without targeting sees it; a staged share runbook wrote is reported
    as that share of the staged value (`share`)."""
    flag = data.get("flags", {}).get(name)
    if flag is None:
        return FlagState(exists=False)
    staged = _staged(flag)
    if staged is not None:
        variant, share = staged
        return FlagState(True, flag["variants"][variant], variant, flag.get("state") == "ENABLED", share)
    variant = flag.get("defaultVariant")
    value = flag["variants"].get(variant) if variant is not None else None
    return FlagState(True, value, variant, flag.get("state") == "ENABLED")


def _staged(flag: dict) -> tuple[str, int] | None:
    """(variant, share) of the fractional rule runbook wrote on the flag, if it wrote one."""
    raw = flag.get("metadata", {}).get(SHARE_KEY)
    rule = (flag.get("targeting") or {}).get("fractional")
    if raw is None or not isinstance(rule, list) or len(rule) < 2:
        return None
    try:
        variant, share = rule[1][0], int(rule[1][1])
    except (TypeError, ValueError, IndexError):
        return None
    return (variant, share) if variant in flag.get("variants", {}) else None


def set_share(data: dict, name: str, value, share: int, by: str,
              normal=None) -> tuple[FlagState, FlagState, list[str]]:
    """One stage of a staged degradation: `share` percent of contexts get `value`, bucketed by the
    context key `by` with flagd's `fractional` operation, the others keep the default variant (or,
    when every context had `value`, get `normal` back: the playbook's restore: value, else the one
    runbook recorded before it first changed the flag).
    share 100 is set_value (and drops the rule). A flag with targeting rules runbook did not write
    is refused: a fractional rule would replace them."""
    if not isinstance(share, int) or not 0 < share <= 100:
        raise FlagFileError(f"flag {name}: a share is a whole percentage from 1 to 100, got {share!r}")
    flag = data.get("flags", {}).get(name)
    if flag is not None and flag.get("targeting") and _staged(flag) is None:
        raise FlagFileError(f"flag {name} has targeting rules of its own; a staged degradation would replace "
                            "them (stage another flag, or apply this one whole)")
    previous = state(data, name)
    if share == 100:
        if flag is not None:
            _drop_share(flag)
        _before, current, notes = set_value(data, name, value)
        return previous, current, notes
    if (flag is None or flag.get("defaultVariant") is None) and normal is not None:
        # not in the file yet: its normal value (the playbook's restore:) for the others
        set_value(data, name, normal)
        flag = data["flags"][name]
        flag["metadata"][RESTORE_KEY] = json.dumps(previous.to_dict(), sort_keys=True)
    if flag is None or flag.get("defaultVariant") is None:
        raise FlagFileError(f"flag {name} is not in the flag file, so there is no value for the other "
                            f"{100 - share}% to keep; add the flag with its normal value first")
    if _type(value) not in {_type(v) for v in flag["variants"].values()}:
        raise FlagFileError(f"flag {name} holds {'/'.join(sorted({_type(v) for v in flag['variants'].values()}))} "
                            f"values; cannot stage {json.dumps(value)} ({_type(value)})")
    metadata = flag.setdefault("metadata", {})
    metadata.setdefault(RESTORE_KEY, json.dumps(previous.to_dict(), sort_keys=True))  # as before the first stage
    notes = []
    if flag.get("state") != "ENABLED":
        flag["state"] = "ENABLED"
        notes.append("the flag was DISABLED; it is ENABLED now so the share takes effect")
    staged = next((k for k, v in flag["variants"].items() if _same(v, value)), None)
    if staged is None:
        staged = _variant_name(value, flag["variants"])
        flag["variants"][staged] = value
    default = flag["defaultVariant"]
    if staged == default:
        others = normal if normal is not None else _value_before(data, name)
        if others is None or _same(others, value):
            return previous, state(data, name), ["every context already gets this value"]
        # a share narrowed from every user (a rollback from the last stage): the others get their
        # normal value back
        default = next((k for k, v in flag["variants"].items() if _same(v, others)), None)
        if default is None:
            default = _variant_name(others, flag["variants"])
            flag["variants"][default] = others
        flag["defaultVariant"] = default
    flag["targeting"] = {"fractional": [{"var": by}, [staged, share], [default, 100 - share]]}
    metadata[SHARE_KEY] = share
    return previous, state(data, name), notes


def _value_before(data: dict, name: str):
    """The flag's value before runbook first changed it, if runbook recorded one."""
    before = recorded_previous(data, name)
    return before.value if before is not None and before.exists else None


def _drop_share(flag: dict) -> None:
    if _staged(flag) is not None:
        flag.pop("targeting", None)
    flag.get("metadata", {}).pop(SHARE_KEY, None)


def _same(a, b) -> bool:
    return _type(a) == _type(b) and a == b


def _variant_name(value, variants: dict) -> str:
    if isinstance(value, bool):
        base = "on" if value else "off"
    elif isinstance(value, (str, int, float)):
        base = str(value)
    else:
        base = "variant"
    name, n = base, 2
    while name in variants:
        name, n = f"{base}-{n}", n + 1
    return name


def set_value(data: dict, name: str, value) -> tuple[FlagState, FlagState, list[str]]:
    """Point flag `name` at `value` in `data` (in place); return (previous, current, notes)."""
    if _type(value) is None:
        raise FlagFileError(f"flag {name}: {value!r} is not a flag value, expected a boolean, string, number "
                            "or object")
    previous = state(data, name)
    flags = data.setdefault("flags", {})
    notes = []
    flag = flags.get(name)
    if flag is None:
        variants = {"on": True, "off": False} if isinstance(value, bool) else {_variant_name(value, {}): value}
        flag = flags[name] = {"state": "ENABLED", "variants": variants, "defaultVariant": None}
    else:
        kinds = {_type(v) for v in flag["variants"].values()}
        if _type(value) not in kinds:
            raise FlagFileError(f"flag {name} holds {'/'.join(sorted(kinds))} values; cannot set it to "
                                f"{json.dumps(value)} ({_type(value)})")
        if flag.get("state") != "ENABLED":
            flag["state"] = "ENABLED"
            notes.append("the flag was DISABLED; it is ENABLED now so the value takes effect")
        staged = _staged(flag)
        if staged is not None:
            notes.append(f"the flag was staged at {staged[1]}% by an incident's degradation; every context "
                         "gets this value now (see `runbook incident show` of that incident)")
        _drop_share(flag)  # a staged share runbook wrote gives way to the value for everyone
        if flag.get("targeting"):
            notes.append("the flag has targeting rules; contexts they match may still get another variant")
    variant = next((k for k, v in flag["variants"].items() if _same(v, value)), None)
    if variant is None:
        variant = _variant_name(value, flag["variants"])
        flag["variants"][variant] = value
    flag["defaultVariant"] = variant
    metadata = flag.setdefault("metadata", {})
    # Remember the state before runbook first touched the flag, so `flags restore` can undo it.
    metadata.setdefault(RESTORE_KEY, json.dumps(previous.to_dict(), sort_keys=True))
    return previous, state(data, name), notes


def recorded_previous(data: dict, name: str) -> FlagState | None:
    """The state recorded before runbook first changed the flag, if runbook changed it."""
    flag = data.get("flags", {}).get(name)
    raw = flag.get("metadata", {}).get(RESTORE_KEY) if flag else None
    if raw is None:
        return None
    try:
        return FlagState.from_dict(json.loads(raw))
    except (ValueError, TypeError, AttributeError):
        return None


def restore_value(data: dict, name: str, previous: FlagState) -> tuple[FlagState, FlagState]:
    """Put flag `name` back to `previous` (remove it if it did not exist); return (replaced, current)."""
    replaced = state(data, name)
    flags = data.setdefault("flags", {})
    if not previous.exists:
        flags.pop(name, None)
        return replaced, state(data, name)
    flag = flags.get(name)
    if flag is not None:
        _drop_share(flag)  # a staged share goes with the restore
    if flag is None or previous.variant not in flag.get("variants", {}):
        set_value(data, name, previous.value)
        flag = flags[name]
    else:
        flag["defaultVariant"] = previous.variant
    flag["state"] = "ENABLED" if previous.enabled else "DISABLED"
    metadata = flag.get("metadata", {})
    metadata.pop(RESTORE_KEY, None)
    if not metadata:
        flag.pop("metadata", None)
    return replaced, state(data, name)


@contextmanager
def locked(path: str):
    """An exclusive lock for a read-modify-write of `path` (a sibling .lock file, never replaced)."""
    lock_path = f"{path}.lock"
    Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_atomic(path: str, data: dict) -> None:
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        mode = os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update(path: str, change):
    """Locked read-modify-write: `change(data)` edits the data in place and returns a result."""
    with locked(path):
        data = read(path)
        result = change(data)
        problems = check(data)
        if problems:  # never write a file flagd would refuse
            raise FlagFileError(f"{path}: refusing to write an invalid flag file: {'; '.join(problems)}")
        write_atomic(path, data)
        return result
